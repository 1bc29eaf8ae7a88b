//! Encryption at rest and keyed hashing. Owns every use of key material:
//! sealing personal data with a claim's data key, wrapping data keys with the
//! master key, and blind indexes. Must never log or return key bytes.
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::config::SecretKeys;

const NONCE_LEN: usize = 24;

#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    #[error("ciphertext could not be opened (wrong key, tampered, or erased)")]
    Open,
    #[error("plaintext is not valid for its type")]
    Decode,
}

/// Seal `plaintext` with XChaCha20-Poly1305 under `key`, binding `aad`
/// (typically the owning row's id) so ciphertext cannot be moved between rows.
/// Output: nonce (24 bytes) || ciphertext+tag.
pub fn seal(key: &[u8; 32], plaintext: &[u8], aad: &[u8]) -> Vec<u8> {
    let cipher = XChaCha20Poly1305::new(key.into());
    let mut nonce = [0u8; NONCE_LEN];
    rand::rngs::OsRng.fill_bytes(&mut nonce);
    let ciphertext = cipher
        .encrypt(XNonce::from_slice(&nonce), Payload { msg: plaintext, aad })
        // Encryption only fails for inputs beyond 256 GiB, which we never build.
        .unwrap_or_default();
    let mut out = Vec::with_capacity(NONCE_LEN + ciphertext.len());
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&ciphertext);
    out
}

pub fn open(key: &[u8; 32], sealed: &[u8], aad: &[u8]) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    if sealed.len() < NONCE_LEN + 16 {
        return Err(CryptoError::Open);
    }
    let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
    let cipher = XChaCha20Poly1305::new(key.into());
    cipher
        .decrypt(XNonce::from_slice(nonce), Payload { msg: ciphertext, aad })
        .map(Zeroizing::new)
        .map_err(|_| CryptoError::Open)
}

/// Seal a serialisable value as JSON.
pub fn seal_json<T: serde::Serialize>(key: &[u8; 32], value: &T, aad: &[u8]) -> Vec<u8> {
    let json = Zeroizing::new(serde_json::to_vec(value).unwrap_or_default());
    seal(key, &json, aad)
}

pub fn open_json<T: serde::de::DeserializeOwned>(key: &[u8; 32], sealed: &[u8], aad: &[u8]) -> Result<T, CryptoError> {
    let bytes = open(key, sealed, aad)?;
    serde_json::from_slice(&bytes).map_err(|_| CryptoError::Decode)
}

/// A claim's data key. Destroying its wrapped copy erases the claim.
pub struct DataKey(Zeroizing<[u8; 32]>);

impl DataKey {
    pub fn generate() -> Self {
        let mut key = Zeroizing::new([0u8; 32]);
        rand::rngs::OsRng.fill_bytes(&mut key[..]);
        Self(key)
    }
    pub fn bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

fn hmac(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable_hmac());
    for part in parts {
        mac.update(&(part.len() as u64).to_be_bytes());
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

// HMAC accepts keys of any length; this cannot happen.
fn unreachable_hmac() -> Hmac<Sha256> {
    unreachable!("HMAC-SHA256 accepts any key length")
}

/// Every key the app derives from its configured secrets.
#[derive(Clone)]
pub struct Keyring {
    master: Zeroizing<[u8; 32]>,
    /// HMAC-SHA256 keyed with the blind-index key, its key schedule done
    /// once: each blind index clones it (two compressions fewer per hash).
    blind: Hmac<Sha256>,
    account: Zeroizing<[u8; 32]>,
    csrf: Zeroizing<[u8; 32]>,
    jwt: Zeroizing<Vec<u8>>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Keyring([redacted])")
    }
}

impl Keyring {
    pub fn new(keys: &SecretKeys) -> Self {
        let master = keys.master.expose().clone();
        // Sub-keys are separated by purpose so one never stands in for another.
        let account = Zeroizing::new(hmac(&master[..], &[b"account-email-key/v1"]));
        let csrf = Zeroizing::new(hmac(keys.jwt.expose(), &[b"csrf-key/v1"]));
        let blind = <Hmac<Sha256> as Mac>::new_from_slice(&keys.blind_index.expose()[..])
            .unwrap_or_else(|_| unreachable_hmac());
        Self { master, blind, account, csrf, jwt: keys.jwt.expose().clone() }
    }

    pub fn jwt_secret(&self) -> &[u8] {
        &self.jwt
    }

    pub fn wrap_data_key(&self, key: &DataKey, claim_id: &uuid::Uuid) -> Vec<u8> {
        seal(&self.master, key.bytes(), claim_id.as_bytes())
    }

    pub fn unwrap_data_key(&self, wrapped: &[u8], claim_id: &uuid::Uuid) -> Result<DataKey, CryptoError> {
        let bytes = open(&self.master, wrapped, claim_id.as_bytes())?;
        if bytes.len() != 32 {
            return Err(CryptoError::Decode);
        }
        let mut key = Zeroizing::new([0u8; 32]);
        key.copy_from_slice(&bytes);
        Ok(DataKey(key))
    }

    /// Keyed hash of an already-normalised value, separated by `purpose`.
    pub fn blind_index(&self, purpose: &str, normalised: &str) -> String {
        let mac = self.blind_mac(purpose, &[normalised]);
        let mut out = [0u8; 64];
        // Lower-case hex, as `hex::encode` writes it, without a per-character iterator.
        match hex::encode_to_slice(mac, &mut out) {
            Ok(()) => String::from_utf8_lossy(&out).into_owned(),
            Err(_) => hex::encode(mac),
        }
    }

    /// The MAC behind `blind_index`, over the normalised value given as
    /// pieces that are hashed as if joined (no allocation for the join).
    pub fn blind_mac(&self, purpose: &str, pieces: &[&str]) -> [u8; 32] {
        let mut state = self.blind.clone();
        state.update(&(purpose.len() as u64).to_be_bytes());
        state.update(purpose.as_bytes());
        let len: usize = pieces.iter().map(|p| p.len()).sum();
        state.update(&(len as u64).to_be_bytes());
        for piece in pieces {
            state.update(piece.as_bytes());
        }
        state.finalize().into_bytes().into()
    }

    pub fn seal_account_email(&self, user_id: &uuid::Uuid, email: &str) -> Vec<u8> {
        seal(&self.account, email.as_bytes(), user_id.as_bytes())
    }

    pub fn open_account_email(&self, user_id: &uuid::Uuid, sealed: &[u8]) -> Result<String, CryptoError> {
        let bytes = open(&self.account, sealed, user_id.as_bytes())?;
        String::from_utf8(bytes.to_vec()).map_err(|_| CryptoError::Decode)
    }

    /// CSRF token bound to a browser's anti-forgery cookie.
    /// A staff member's TOTP secret, sealed with the account key.
    pub fn seal_totp_secret(&self, user_id: &uuid::Uuid, secret: &[u8]) -> Vec<u8> {
        seal(&self.account, secret, &[b"totp:".as_slice(), user_id.as_bytes()].concat())
    }

    pub fn open_totp_secret(&self, user_id: &uuid::Uuid, sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        open(&self.account, sealed, &[b"totp:".as_slice(), user_id.as_bytes()].concat())
    }

    /// The seed of the Ed25519 key that signs audit checkpoints.
    pub fn audit_signing_seed(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(hmac(&self.master[..], &[b"audit-checkpoint-key/v1"]))
    }

    pub fn csrf_token(&self, seed: &str) -> String {
        hex::encode(hmac(&self.csrf[..], &[b"csrf", seed.as_bytes()]))
    }
}

/// Constant-time comparison for tokens.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

/// A random URL-safe token of `bytes` bytes of entropy.
pub fn random_token(bytes: usize) -> String {
    use base64::Engine;
    let mut buf = vec![0u8; bytes];
    rand::rngs::OsRng.fill_bytes(&mut buf);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(buf)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[test]
    fn sealed_data_round_trips_and_is_bound_to_its_row() {
        let key = [7u8; 32];
        let sealed = seal(&key, b"yamada taro", b"row-1");
        assert!(!sealed.windows(5).any(|w| w == b"yamad"));
        assert_eq!(&open(&key, &sealed, b"row-1").unwrap()[..], b"yamada taro");
        assert!(open(&key, &sealed, b"row-2").is_err());
        assert!(open(&[8u8; 32], &sealed, b"row-1").is_err());
    }

    #[test]
    fn two_seals_of_the_same_text_differ() {
        let key = [1u8; 32];
        assert_ne!(seal(&key, b"x", b""), seal(&key, b"x", b""));
    }

    #[test]
    fn blind_indexes_are_deterministic_and_purpose_separated() {
        let keys = test_keyring();
        assert_eq!(keys.blind_index("a", "v"), keys.blind_index("a", "v"));
        assert_ne!(keys.blind_index("a", "v"), keys.blind_index("b", "v"));
        // Length-prefixing keeps ("ab","c") and ("a","bc") apart.
        assert_ne!(keys.blind_index("ab", "c"), keys.blind_index("a", "bc"));
        // Pieces hash as their join.
        assert_eq!(keys.blind_mac("p", &["ヤマダ", "|", "1980-05-05"]), keys.blind_mac("p", &["ヤマダ|1980-05-05"]));
        assert_eq!(hex::encode(keys.blind_mac("p", &["ab", "c"])), keys.blind_index("p", "abc"));
        // The precomputed key schedule gives the same HMAC as keying each time
        // (indexes stored before it still match).
        assert_eq!(keys.blind_index("person-identity", "ヤマダ|1980-05-05"), {
            hex::encode(hmac(&[5u8; 32], &["person-identity".as_bytes(), "ヤマダ|1980-05-05".as_bytes()]))
        });
    }

    #[test]
    fn a_data_key_unwraps_only_for_its_claim() {
        let keys = test_keyring();
        let (a, b) = (uuid::Uuid::new_v4(), uuid::Uuid::new_v4());
        let dk = DataKey::generate();
        let wrapped = keys.wrap_data_key(&dk, &a);
        assert_eq!(keys.unwrap_data_key(&wrapped, &a).unwrap().bytes(), dk.bytes());
        assert!(keys.unwrap_data_key(&wrapped, &b).is_err());
    }

    pub(crate) fn test_keyring() -> Keyring {
        use crate::config::Secret;
        Keyring::new(&SecretKeys {
            jwt: Secret::new(Zeroizing::new(vec![3u8; 32])),
            master: Secret::new(Zeroizing::new([4u8; 32])),
            blind_index: Secret::new(Zeroizing::new([5u8; 32])),
        })
    }
}
