//! The defendant's notice roster: streamed CSV import that keeps only keyed
//! hashes (HMAC with the blind-index key) of normalised values, and the
//! lookups that verification signals use.
pub mod domain;
pub mod service;
#[cfg(feature = "dev")]
pub mod synthetic;
