//! Verification of affected parties and the lawyers' review desk: signals
//! computed for a claim (each with a reason a person can read), staff
//! access (case membership, second factor, audited and capped reads), the
//! queue, decisions with deficiency notices, notes, assignment, bulk and
//! policy verification, and the alerts administrators watch.
pub mod access;
pub mod admin;
pub mod api;
pub mod desk;
pub mod domain;
pub mod pages;
pub mod service;
