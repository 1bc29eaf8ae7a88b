//! Cases: the configuration that makes the portal serve a particular leak
//! (leaked-item catalogue, services, apology options, intake window), the
//! idempotent seed of the shipped case, and read access for claimants.
pub mod api;
mod catalogue;
pub mod seed;
pub mod service;

pub use catalogue::{Catalogue, List, Localized, Option as CatalogueOption, ReminderSchedule, TIMELINE_KEYS};

/// This capability's routes, mounted by its own fairing.
pub fn stage() -> rocket::fairing::AdHoc {
    crate::web::mount("Cases", vec![], api::routes())
}
