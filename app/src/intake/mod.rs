//! The claimant's claim: the draft (persons, contact, what leaked, apology
//! letter and option, harm diary), its status machine, submission and
//! withdrawal. Personal data is sealed with the claim's data key before it
//! reaches the database; only the claimant who owns a claim can see it here.
pub mod api;
pub mod domain;
pub mod pages;
pub mod service;
