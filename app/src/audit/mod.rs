//! The audit log: append-only and hash-chained (each event's hash covers the
//! previous event's hash, as in Certificate Transparency), so an edited,
//! deleted or reordered row is detected by `verify_chain`. Events record who
//! did what to whose data — never the data itself.
pub mod api;
mod service;

pub use service::{access_log_for, append, verify_chain, Actor, ChainReport, Event, CHAIN_LOCK_KEY};
