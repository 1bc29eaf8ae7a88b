//! Verification of affected parties and the lawyers' review desk: signals
//! computed for a claim (each with a reason a person can read), the
//! queue (staff access and its capped reads are `claims::access`), decisions with deficiency notices, notes, assignment, bulk and
//! policy verification, and the alerts administrators watch.
pub mod admin;
pub mod api;
pub mod desk;
pub mod domain;
pub mod pages;
pub mod service;

/// This capability's routes, mounted by its own fairing.
pub fn stage() -> rocket::fairing::AdHoc {
    crate::web::mount("Review", pages::routes(), api::routes())
}
