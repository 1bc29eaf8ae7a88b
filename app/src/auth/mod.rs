//! Accounts and sessions: registration, login with throttling and lockout,
//! JWT sessions that the server can revoke, request guards, CSRF tokens.
//! Must never reveal whether an e-mail address has an account at login.
pub mod api;
mod domain;
mod guard;
pub mod lifecycle;
pub mod pages;
pub mod registration;
pub mod second_factor;
pub mod service;
pub mod sessions;
pub mod totp;

pub use domain::{Password, Role};
pub use guard::{
    client_ip, cookie_name, AdminUser, ClaimantUser, ClientIp, Csrf, CurrentUser, GuardRefusal, MaybeUser,
    StaffSigningIn, StaffUser, SESSION_COOKIE,
};

/// This capability's routes, mounted by its own fairing.
pub fn stage() -> rocket::fairing::AdHoc {
    crate::web::mount("Accounts", [pages::routes(), second_factor::routes()].concat(), api::routes())
}
