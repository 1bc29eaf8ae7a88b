//! Filing rounds (第1次, 第2次 … 提訴): who is in a round, each plaintiff's
//! tier and claimed amount with reasons, and the limitation-period warning.
//! `domain` holds the pure rules (the tier policy document and the
//! deterministic computation); `service` keeps rounds, versioned policies and
//! frozen members in the database. The filing bundle comes next.
pub mod api;
pub mod bundle;
pub mod domain;
pub mod export;
pub mod pages;
pub mod service;
#[cfg(feature = "dev")]
pub mod synthetic;

/// This capability's routes, mounted by its own fairing.
pub fn stage() -> rocket::fairing::AdHoc {
    crate::web::mount("Filing rounds", pages::routes(), api::routes())
}
