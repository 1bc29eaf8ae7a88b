//! Evidence files (apology letters, direct-mail samples, call logs): upload
//! streamed through a temporary file, type decided by magic bytes, SHA-256
//! of the plaintext, content encrypted with the claim's data key (STREAM
//! construction, 64 KiB chunks) before it reaches the store, object written
//! and verified before the database row commits. Downloads only through the
//! authorised route. Never trusts a client's file name or content type.
pub mod api;
pub mod domain;
pub mod jpeg;
pub mod pages;
pub mod s3;
pub mod service;
pub mod source;
pub mod store;
pub mod strip;

/// This capability's routes, mounted by its own fairing.
pub fn stage() -> rocket::fairing::AdHoc {
    crate::web::mount("Evidence", pages::routes(), api::routes())
}
