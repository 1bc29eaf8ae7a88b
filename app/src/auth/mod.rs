//! Accounts and sessions: registration, login with throttling and lockout,
//! JWT sessions that the server can revoke, request guards, CSRF tokens.
//! Must never reveal whether an e-mail address has an account at login.
pub mod api;
mod domain;
mod guard;
pub mod pages;
pub mod service;
pub mod totp;

pub use domain::{Password, Role};
pub use guard::{client_ip, AdminUser, ClientIp, Csrf, CurrentUser, MaybeUser, StaffUser, SESSION_COOKIE};
