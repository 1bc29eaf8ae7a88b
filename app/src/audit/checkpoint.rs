//! Signed checkpoints of the audit tree in the C2SP `tlog-checkpoint`
//! format: a signed note (C2SP `signed-note`) whose text is the log's
//! origin, the tree size, the root hash in base64, and one extension line
//! with the time; signed with Ed25519 by a key derived from the master key.
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use chrono::{DateTime, Utc};
use ed25519_dalek::{Signer, SigningKey, Verifier, VerifyingKey};
use sha2::{Digest, Sha256};

use super::tree::Hash;

/// The log's signer: its name (the checkpoint's origin) and key.
pub struct LogKey {
    origin: String,
    key: SigningKey,
}

/// What a checkpoint says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    pub origin: String,
    pub size: u64,
    pub root: Hash,
    pub time: Option<DateTime<Utc>>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum NoteError {
    #[error("not a checkpoint note")]
    Malformed,
    #[error("the checkpoint is of another log ({0})")]
    OtherLog(String),
    #[error("no valid signature by this portal's audit key")]
    BadSignature,
}

impl LogKey {
    pub fn new(origin: String, seed: &[u8; 32]) -> Self {
        Self { origin, key: SigningKey::from_bytes(seed) }
    }

    /// The checkpoint's origin line, from the portal's public address.
    pub fn origin_for(public_url: &str) -> String {
        let host = public_url.split("://").nth(1).unwrap_or(public_url).trim_end_matches('/');
        format!("{host}/audit")
    }

    fn key_id(&self) -> [u8; 4] {
        let mut h = Sha256::new();
        h.update(self.origin.as_bytes());
        h.update(b"\n\x01");
        h.update(self.key.verifying_key().as_bytes());
        let digest = h.finalize();
        [digest[0], digest[1], digest[2], digest[3]]
    }

    /// The verifier key in the signed-note format (`name+id+key`), for
    /// anyone who wants to check checkpoints without the portal.
    pub fn verifier_key(&self) -> String {
        let mut key = vec![1u8];
        key.extend_from_slice(self.key.verifying_key().as_bytes());
        format!("{}+{}+{}", self.origin, hex::encode(self.key_id()), B64.encode(key))
    }

    /// Sign a checkpoint of `size` leaves with root `root`.
    pub fn sign(&self, size: u64, root: &Hash, time: DateTime<Utc>) -> String {
        let text = format!("{}\n{size}\n{}\ntime {}\n", self.origin, B64.encode(root), time.timestamp());
        let mut sig = self.key_id().to_vec();
        sig.extend_from_slice(&self.key.sign(text.as_bytes()).to_bytes());
        format!("{text}\n\u{2014} {} {}\n", self.origin, B64.encode(sig))
    }

    /// Read a note and check it is this log's, signed with this log's key.
    pub fn open(&self, note: &str) -> Result<Checkpoint, NoteError> {
        let split = note.rfind("\n\n").ok_or(NoteError::Malformed)?;
        let (text, signatures) = (&note[..=split], &note[split + 2..]);
        let checkpoint = parse_text(text)?;
        if checkpoint.origin != self.origin {
            return Err(NoteError::OtherLog(checkpoint.origin));
        }
        let verifying: VerifyingKey = self.key.verifying_key();
        let signed = signatures.lines().any(|line| {
            let Some(rest) = line.strip_prefix("\u{2014} ") else {
                return false;
            };
            let Some((name, sig)) = rest.split_once(' ') else {
                return false;
            };
            let Ok(sig) = B64.decode(sig) else {
                return false;
            };
            if name != self.origin || sig.len() != 68 || sig[..4] != self.key_id() {
                return false;
            }
            let Ok(sig) = ed25519_dalek::Signature::from_slice(&sig[4..]) else {
                return false;
            };
            verifying.verify(text.as_bytes(), &sig).is_ok()
        });
        if signed {
            Ok(checkpoint)
        } else {
            Err(NoteError::BadSignature)
        }
    }
}

fn parse_text(text: &str) -> Result<Checkpoint, NoteError> {
    let mut lines = text.lines();
    let origin = lines.next().filter(|o| !o.is_empty()).ok_or(NoteError::Malformed)?.to_string();
    let size = lines.next().and_then(|s| s.parse().ok()).ok_or(NoteError::Malformed)?;
    let root: Hash =
        lines.next().and_then(|r| B64.decode(r).ok()).and_then(|r| r.try_into().ok()).ok_or(NoteError::Malformed)?;
    let time = lines
        .filter_map(|l| l.strip_prefix("time "))
        .find_map(|t| t.parse::<i64>().ok())
        .and_then(|t| DateTime::from_timestamp(t, 0));
    Ok(Checkpoint { origin, size, root, time })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signer() -> LogKey {
        LogKey::new(LogKey::origin_for("https://portal.example.jp/"), &[7u8; 32])
    }

    #[test]
    fn a_signed_checkpoint_opens_with_its_size_root_and_time() {
        let s = signer();
        let at = DateTime::from_timestamp(1_764_700_000, 0).unwrap();
        let note = s.sign(42, &[9u8; 32], at);
        assert!(note.starts_with("portal.example.jp/audit\n42\n"), "{note}");
        assert!(note.contains("\n\n\u{2014} portal.example.jp/audit "), "{note}");
        let c = s.open(&note).unwrap();
        assert_eq!((c.size, c.root, c.time), (42, [9u8; 32], Some(at)));
        assert!(s.verifier_key().starts_with("portal.example.jp/audit+"));
    }

    #[test]
    fn an_altered_or_foreign_checkpoint_is_refused() {
        let s = signer();
        let note = s.sign(42, &[9u8; 32], Utc::now());
        assert_eq!(s.open(&note.replacen("\n42\n", "\n41\n", 1)), Err(NoteError::BadSignature));
        let other = LogKey::new(LogKey::origin_for("https://portal.example.jp"), &[8u8; 32]);
        assert_eq!(s.open(&other.sign(42, &[9u8; 32], Utc::now())), Err(NoteError::BadSignature));
        let elsewhere = LogKey::new("elsewhere/audit".into(), &[7u8; 32]);
        assert_eq!(
            s.open(&elsewhere.sign(1, &[0u8; 32], Utc::now())),
            Err(NoteError::OtherLog("elsewhere/audit".into()))
        );
        assert_eq!(s.open("garbage"), Err(NoteError::Malformed));
    }
}
