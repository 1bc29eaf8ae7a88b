//! The claimant's side of a claim: starting one, filling in the draft
//! (persons, contact, what leaked, apology letter and option, harm diary)
//! step by step, submission, correction and withdrawal. The draft's types,
//! the status rules and the sealed storage are `claims`'; only the claimant
//! who owns a claim can see it here.
pub mod api;
pub mod pages;
pub mod service;

/// This capability's routes, mounted by its own fairing.
pub fn stage() -> rocket::fairing::AdHoc {
    crate::web::mount("Intake", pages::routes(), api::routes())
}
