//! The claimant's rights over their own data (APPI Arts. 33–35, S20, S22):
//! who accessed it, a download of everything held (JSON + files), and
//! erasure by crypto-shredding.
pub mod api;
pub mod pages;
pub mod service;

/// This capability's routes, mounted by its own fairing.
pub fn stage() -> rocket::fairing::AdHoc {
    crate::web::mount("My data", pages::routes(), api::routes())
}
