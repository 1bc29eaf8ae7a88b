//! Consent: versioned retainer, fee terms and privacy notice per case;
//! signatures by the claimant and, for each minor, as 法定代理人; what
//! joining means in yen; the receipt. A claim is submitted only with
//! current consent, and a new version asks every signer to sign again.
pub mod api;
pub mod domain;
pub mod pages;
pub mod seed;
pub mod service;

/// This capability's routes, mounted by its own fairing.
pub fn stage() -> rocket::fairing::AdHoc {
    crate::web::mount("Consent", pages::routes(), api::routes())
}
