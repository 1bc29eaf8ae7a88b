//! Verification of affected parties: the signals computed for a claim, each
//! with a reason a person can read. (The lawyers' review desk builds on it.)
pub mod domain;
pub mod service;
