use chacha20poly1305::aead::stream::{DecryptorBE32, EncryptorBE32};
use chacha20poly1305::aead::KeyInit;
use chacha20poly1305::XChaCha20Poly1305;
use rand::RngCore;
use serde::{Deserialize, Serialize};

use crate::domain::ErrorCode;

/// Plaintext bytes per encrypted chunk.
pub const CHUNK: usize = 64 * 1024;
/// Poly1305 tag added to every chunk.
pub const TAG: usize = 16;
/// STREAM nonce prefix for XChaCha20 with a 32-bit big-endian counter.
pub const NONCE_PREFIX: usize = 19;
const MAGIC: &[u8; 4] = b"PEV1";

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EvidenceKind {
    ApologyLetter,
    DirectMail,
    CallLog,
    Other,
}

impl EvidenceKind {
    pub const ALL: [EvidenceKind; 4] =
        [EvidenceKind::ApologyLetter, EvidenceKind::DirectMail, EvidenceKind::CallLog, EvidenceKind::Other];
    pub fn as_str(self) -> &'static str {
        match self {
            EvidenceKind::ApologyLetter => "apology_letter",
            EvidenceKind::DirectMail => "direct_mail",
            EvidenceKind::CallLog => "call_log",
            EvidenceKind::Other => "other",
        }
    }
    pub fn parse(raw: &str) -> Result<Self, ErrorCode> {
        crate::domain::parse_code(raw, &Self::ALL, Self::as_str)
    }
}

/// An allowed content type, decided from the first bytes of the file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SniffedType {
    Jpeg,
    Png,
    Heic,
    Webp,
    Pdf,
}

impl SniffedType {
    pub fn mime(self) -> &'static str {
        match self {
            SniffedType::Jpeg => "image/jpeg",
            SniffedType::Png => "image/png",
            SniffedType::Heic => "image/heic",
            SniffedType::Webp => "image/webp",
            SniffedType::Pdf => "application/pdf",
        }
    }
    pub fn extension(mime: &str) -> &'static str {
        match mime {
            "image/jpeg" => "jpg",
            "image/png" => "png",
            "image/heic" => "heic",
            "image/webp" => "webp",
            "application/pdf" => "pdf",
            _ => "bin",
        }
    }
}

/// Magic-byte sniffing against the allow-list (JPEG, PNG, HEIC/HEIF, WebP,
/// PDF). Anything else — HTML or a script renamed `.jpg` included — is `None`.
pub fn sniff(head: &[u8]) -> Option<SniffedType> {
    if head.starts_with(&[0xFF, 0xD8, 0xFF]) {
        return Some(SniffedType::Jpeg);
    }
    if head.starts_with(&[0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A]) {
        return Some(SniffedType::Png);
    }
    if head.len() >= 12 && &head[0..4] == b"RIFF" && &head[8..12] == b"WEBP" {
        return Some(SniffedType::Webp);
    }
    if head.starts_with(b"%PDF-") {
        return Some(SniffedType::Pdf);
    }
    // ISO-BMFF: size (4) "ftyp" brand (4).
    if head.len() >= 12 && &head[4..8] == b"ftyp" {
        let brand = &head[8..12];
        if [b"heic", b"heix", b"hevc", b"heim", b"heis", b"mif1", b"msf1"].iter().any(|b| brand == *b) {
            return Some(SniffedType::Heic);
        }
    }
    None
}

/// Encrypts a byte stream chunk by chunk. The output starts with a header
/// (magic + nonce prefix); each chunk carries its own tag and position, so
/// truncation, reordering and tampering are detected on decryption.
pub struct ChunkSealer {
    encryptor: Option<EncryptorBE32<XChaCha20Poly1305>>,
    header: Vec<u8>,
}

impl ChunkSealer {
    pub fn new(key: &[u8; 32]) -> Self {
        let mut prefix = [0u8; NONCE_PREFIX];
        rand::rngs::OsRng.fill_bytes(&mut prefix);
        let aead = XChaCha20Poly1305::new(key.into());
        let mut header = MAGIC.to_vec();
        header.extend_from_slice(&prefix);
        Self { encryptor: Some(EncryptorBE32::from_aead(aead, (&prefix).into())), header }
    }
    pub fn header(&self) -> &[u8] {
        &self.header
    }
    /// Seal a chunk in place (its tag is appended): one full chunk that is
    /// not the last, or the last one (0 to `CHUNK` bytes) when `last`.
    pub fn seal_in_place(&mut self, buf: &mut Vec<u8>, last: bool) -> Result<(), crate::crypto::CryptoError> {
        let sealed = if last {
            self.encryptor.take().ok_or(crate::crypto::CryptoError::Decode)?.encrypt_last_in_place(b"", buf)
        } else {
            self.encryptor.as_mut().ok_or(crate::crypto::CryptoError::Decode)?.encrypt_next_in_place(b"", buf)
        };
        sealed.map_err(|_| crate::crypto::CryptoError::Decode)
    }
}

/// The reverse of `ChunkSealer`.
pub struct ChunkOpener {
    decryptor: Option<DecryptorBE32<XChaCha20Poly1305>>,
}

impl ChunkOpener {
    pub const HEADER: usize = 4 + NONCE_PREFIX;

    pub fn new(key: &[u8; 32], header: &[u8]) -> Result<Self, crate::crypto::CryptoError> {
        if header.len() != Self::HEADER || &header[..4] != MAGIC {
            return Err(crate::crypto::CryptoError::Decode);
        }
        let aead = XChaCha20Poly1305::new(key.into());
        let prefix: [u8; NONCE_PREFIX] = header[4..].try_into().map_err(|_| crate::crypto::CryptoError::Decode)?;
        Ok(Self { decryptor: Some(DecryptorBE32::from_aead(aead, (&prefix).into())) })
    }
    /// Open a sealed chunk in place (its tag is removed); `last` as sealed.
    pub fn open_in_place(&mut self, buf: &mut Vec<u8>, last: bool) -> Result<(), crate::crypto::CryptoError> {
        let opened = if last {
            self.decryptor.take().ok_or(crate::crypto::CryptoError::Open)?.decrypt_last_in_place(b"", buf)
        } else {
            self.decryptor.as_mut().ok_or(crate::crypto::CryptoError::Open)?.decrypt_next_in_place(b"", buf)
        };
        opened.map_err(|_| crate::crypto::CryptoError::Open)
    }
}

/// Number of encrypted chunks for a plaintext of `size` bytes (an empty
/// file is one empty last chunk).
pub fn chunk_count(size: u64) -> u64 {
    size.div_ceil(CHUNK as u64).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allowed_types_are_recognised_by_their_bytes() {
        assert_eq!(sniff(&[0xFF, 0xD8, 0xFF, 0xE0, 0, 0]), Some(SniffedType::Jpeg));
        assert_eq!(sniff(b"\x89PNG\r\n\x1a\n...."), Some(SniffedType::Png));
        assert_eq!(sniff(b"RIFF\x00\x00\x00\x00WEBPVP8 "), Some(SniffedType::Webp));
        assert_eq!(sniff(b"%PDF-1.7\n"), Some(SniffedType::Pdf));
        assert_eq!(sniff(b"\x00\x00\x00\x18ftypheic\x00\x00"), Some(SniffedType::Heic));
    }

    #[test]
    fn html_scripts_and_unknown_bytes_are_refused() {
        assert_eq!(sniff(b"<!DOCTYPE html><script>alert(1)</script>"), None);
        assert_eq!(sniff(b"#!/bin/sh\nrm -rf /"), None);
        assert_eq!(sniff(b"GIF89a"), None);
        assert_eq!(sniff(b"\x00\x00\x00\x18ftypmp42"), None, "an MP4 is not an image");
        assert_eq!(sniff(b""), None);
    }

    /// A sealed chunk opened into a new buffer.
    fn open(opener: &mut ChunkOpener, sealed: &[u8], last: bool) -> Result<Vec<u8>, crate::crypto::CryptoError> {
        let mut buf = sealed.to_vec();
        opener.open_in_place(&mut buf, last)?;
        Ok(buf)
    }

    #[test]
    fn sealed_chunks_round_trip_and_detect_tampering() {
        let key = [9u8; 32];
        let mut sealer = ChunkSealer::new(&key);
        let header = sealer.header().to_vec();
        let mut a = vec![1u8; CHUNK];
        sealer.seal_in_place(&mut a, false).unwrap();
        let mut b = b"tail".to_vec();
        sealer.seal_in_place(&mut b, true).unwrap();
        assert_eq!(a.len(), CHUNK + TAG);
        let mut opener = ChunkOpener::new(&key, &header).unwrap();
        assert_eq!(open(&mut opener, &a, false).unwrap(), vec![1u8; CHUNK]);
        assert_eq!(open(&mut opener, &b, true).unwrap(), b"tail");
        // Out of order, or the last chunk presented as a middle one: refused.
        let mut opener = ChunkOpener::new(&key, &header).unwrap();
        assert!(open(&mut opener, &b, false).is_err());
        let mut flipped = a.clone();
        flipped[10] ^= 1;
        let mut opener = ChunkOpener::new(&key, &header).unwrap();
        assert!(open(&mut opener, &flipped, false).is_err());
        assert!(open(&mut ChunkOpener::new(&[8u8; 32], &header).unwrap(), &a, false).is_err());
    }

    #[test]
    fn chunks_sealed_in_place_open_in_place_and_refuse_tampering() {
        let key = [3u8; 32];
        let mut sealer = ChunkSealer::new(&key);
        let header = sealer.header().to_vec();
        let first = vec![1u8; CHUNK];
        let mut in_place = first.clone();
        sealer.seal_in_place(&mut in_place, false).unwrap();
        let mut last = b"tail".to_vec();
        sealer.seal_in_place(&mut last, true).unwrap();
        assert_eq!(in_place.len(), CHUNK + TAG);
        assert_ne!(&in_place[..CHUNK], &first[..]);
        let mut opener = ChunkOpener::new(&key, &header).unwrap();
        assert_eq!(open(&mut opener, &in_place, false).unwrap(), first);
        let mut opened = last.clone();
        opener.open_in_place(&mut opened, true).unwrap();
        assert_eq!(opened, b"tail");
        // Out of order or tampered: refused in place too.
        let mut opener = ChunkOpener::new(&key, &header).unwrap();
        let mut wrong = last.clone();
        assert!(opener.open_in_place(&mut wrong, false).is_err());
        let mut opener = ChunkOpener::new(&key, &header).unwrap();
        let mut tampered = in_place.clone();
        tampered[0] ^= 1;
        assert!(opener.open_in_place(&mut tampered, false).is_err());
    }

    #[test]
    fn chunk_counts() {
        assert_eq!(chunk_count(0), 1);
        assert_eq!(chunk_count(1), 1);
        assert_eq!(chunk_count(CHUNK as u64), 1);
        assert_eq!(chunk_count(CHUNK as u64 + 1), 2);
    }
}
