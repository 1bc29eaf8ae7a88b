//! The claimant's rights over their own data (APPI Arts. 33–35, S20, S22):
//! who accessed it, a download of everything held (JSON + files), and
//! erasure by crypto-shredding.
pub mod api;
pub mod pages;
pub mod service;
