//! The Merkle tree of RFC 9162 (Certificate Transparency 2.0), §2.1: leaf
//! hashes `SHA-256(0x00 || entry)`, interior nodes `SHA-256(0x01 || left ||
//! right)`, split at the largest power of two below the size. Pure
//! functions over hashes; where the nodes live is the caller's business.
use sha2::{Digest, Sha256};

pub type Hash = [u8; 32];

pub fn leaf_hash(entry: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(entry);
    h.finalize().into()
}

pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// The root of the empty tree.
pub fn empty_root() -> Hash {
    Sha256::digest([]).into()
}

/// The largest power of two smaller than `n` (n ≥ 2).
fn split(n: u64) -> u64 {
    1 << (63 - (n - 1).leading_zeros())
}

/// A perfect subtree: `level` (it covers 2^level leaves) and `idx` (it
/// starts at leaf `idx` * 2^level). Level 0 is a leaf.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId {
    pub level: u8,
    pub idx: u64,
}

/// The perfect subtrees a tree of `size` leaves is made of, largest first
/// (one per bit set in `size`): what a new leaf is added beside.
pub fn frontier(size: u64) -> Vec<NodeId> {
    let mut out = Vec::new();
    let mut start = 0u64;
    for level in (0..64u8).rev() {
        if size & (1 << level) != 0 {
            out.push(NodeId { level, idx: start >> level });
            start += 1 << level;
        }
    }
    out
}

/// A tree grown one leaf at a time, keeping only its frontier: each leaf
/// added yields the nodes it completes, for storing.
#[derive(Clone, Debug, Default)]
pub struct Builder {
    size: u64,
    /// Hashes of `frontier(size)`, largest subtree first.
    stack: Vec<Hash>,
}

impl Builder {
    /// Continue a tree of `size` leaves from its frontier's hashes.
    pub fn resume(size: u64, frontier_hashes: Vec<Hash>) -> Option<Self> {
        (frontier(size).len() == frontier_hashes.len()).then_some(Self { size, stack: frontier_hashes })
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    /// Add a leaf; returns every node it completes, the leaf first.
    pub fn push(&mut self, leaf: Hash) -> Vec<(NodeId, Hash)> {
        let index = self.size;
        let mut made = vec![(NodeId { level: 0, idx: index }, leaf)];
        let mut hash = leaf;
        let mut level = 0u8;
        while index & (1 << level) != 0 {
            let left = self.stack.pop().unwrap_or_else(empty_root);
            hash = node_hash(&left, &hash);
            level += 1;
            made.push((NodeId { level, idx: index >> level }, hash));
        }
        self.stack.push(hash);
        self.size += 1;
        made
    }

    /// The tree head: MTH of all leaves so far.
    pub fn root(&self) -> Hash {
        let mut hashes = self.stack.iter().rev();
        let Some(last) = hashes.next() else {
            return empty_root();
        };
        hashes.fold(*last, |right, left| node_hash(left, &right))
    }
}

/// The perfect subtrees whose hashes give MTH(D[start:end]), for a range
/// that starts on a boundary of its own size's split (as every range in
/// RFC 9162's proofs does).
fn pieces(start: u64, end: u64, out: &mut Vec<NodeId>) {
    let n = end - start;
    if n.is_power_of_two() && start.is_multiple_of(n) {
        out.push(NodeId { level: n.trailing_zeros() as u8, idx: start / n });
    } else {
        let k = split(n);
        pieces(start, start + k, out);
        pieces(start + k, end, out);
    }
}

fn range_hash(start: u64, end: u64, node: &impl Fn(NodeId) -> Option<Hash>) -> Option<Hash> {
    let n = end - start;
    if n.is_power_of_two() && start.is_multiple_of(n) {
        node(NodeId { level: n.trailing_zeros() as u8, idx: start / n })
    } else {
        let k = split(n);
        Some(node_hash(&range_hash(start, start + k, node)?, &range_hash(start + k, end, node)?))
    }
}

/// The nodes an inclusion proof of leaf `m` in a tree of `n` leaves needs.
pub fn proof_nodes(m: u64, n: u64) -> Vec<NodeId> {
    let mut out = Vec::new();
    let (mut start, mut end) = (0u64, n);
    while end - start > 1 {
        let k = split(end - start);
        if m < start + k {
            pieces(start + k, end, &mut out);
            end = start + k;
        } else {
            pieces(start, start + k, &mut out);
            start += k;
        }
    }
    out
}

/// PATH(m, D[0:n]) of RFC 9162 §2.1.3.1, from stored nodes; `None` when a
/// node is missing.
pub fn inclusion_proof(m: u64, n: u64, node: impl Fn(NodeId) -> Option<Hash>) -> Option<Vec<Hash>> {
    let mut path = Vec::new();
    let (mut start, mut end) = (0u64, n);
    while end - start > 1 {
        let k = split(end - start);
        if m < start + k {
            path.push(range_hash(start + k, end, &node)?);
            end = start + k;
        } else {
            path.push(range_hash(start, start + k, &node)?);
            start += k;
        }
    }
    // PATH lists the siblings from the leaf up.
    path.reverse();
    Some(path)
}

/// Check an inclusion proof (RFC 9162 §2.1.3.2).
pub fn verify_inclusion(m: u64, n: u64, leaf: &Hash, proof: &[Hash], root: &Hash) -> bool {
    if m >= n {
        return false;
    }
    let (mut f_n, mut s_n) = (m, n - 1);
    let mut r = *leaf;
    for p in proof {
        if s_n == 0 {
            return false;
        }
        if f_n & 1 == 1 || f_n == s_n {
            r = node_hash(p, &r);
            if f_n & 1 == 0 {
                while f_n & 1 == 0 && f_n != 0 {
                    f_n >>= 1;
                    s_n >>= 1;
                }
            }
        } else {
            r = node_hash(&r, p);
        }
        f_n >>= 1;
        s_n >>= 1;
    }
    s_n == 0 && &r == root
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// MTH straight from the RFC's recursive definition.
    fn mth(leaves: &[Hash]) -> Hash {
        match leaves.len() {
            0 => empty_root(),
            1 => leaves[0],
            n => {
                let k = split(n as u64) as usize;
                node_hash(&mth(&leaves[..k]), &mth(&leaves[k..]))
            }
        }
    }

    fn leaves(n: usize) -> Vec<Hash> {
        (0..n).map(|i| leaf_hash(format!("event {i}").as_bytes())).collect()
    }

    #[test]
    fn the_empty_tree_and_a_leaf_hash_match_rfc_9162() {
        assert_eq!(hex::encode(empty_root()), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
        // The leaf hash of the empty entry: SHA-256 of the single byte 0x00.
        assert_eq!(hex::encode(leaf_hash(b"")), "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d");
    }

    #[test]
    fn a_tree_grown_leaf_by_leaf_has_the_root_of_the_definition_and_can_resume_from_its_frontier() {
        let all = leaves(70);
        let mut nodes = HashMap::new();
        let mut b = Builder::default();
        for (i, leaf) in all.iter().enumerate() {
            nodes.extend(b.push(*leaf));
            assert_eq!(b.root(), mth(&all[..=i]), "size {}", i + 1);
            let size = b.size();
            let resumed = Builder::resume(size, frontier(size).iter().map(|id| nodes[id]).collect()).unwrap();
            assert_eq!(resumed.root(), b.root());
        }
    }

    #[test]
    fn inclusion_proofs_from_stored_nodes_verify_and_a_wrong_leaf_does_not() {
        let all = leaves(37);
        let mut nodes = HashMap::new();
        let mut b = Builder::default();
        for leaf in &all {
            nodes.extend(b.push(*leaf));
        }
        for n in 1..=37u64 {
            let root = mth(&all[..n as usize]);
            for m in 0..n {
                // The nodes `proof_nodes` names are all the proof needs.
                let needed: std::collections::HashSet<NodeId> = proof_nodes(m, n).into_iter().collect();
                let proof = inclusion_proof(m, n, |id| needed.contains(&id).then(|| nodes[&id])).unwrap();
                assert!(verify_inclusion(m, n, &all[m as usize], &proof, &root), "m {m} n {n}");
                let other = all[(m as usize + 1) % all.len()];
                assert!(!verify_inclusion(m, n, &other, &proof, &root), "m {m} n {n}");
            }
        }
    }
}
