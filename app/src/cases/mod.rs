//! Cases: the configuration that makes the portal serve a particular leak
//! (leaked-item catalogue, services, apology options, intake window), the
//! idempotent seed of the shipped case, and read access for claimants.
pub mod api;
mod catalogue;
pub mod seed;
pub mod service;

pub use catalogue::{Catalogue, List, Localized, Option as CatalogueOption, ReminderSchedule, TIMELINE_KEYS};
