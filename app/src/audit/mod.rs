//! The audit log, after Certificate Transparency: a request records its
//! events unsequenced in the transaction of the change they describe; one
//! sequencer (elected by lease) numbers them in batches, adds them to a
//! Merkle tree (RFC 9162) and signs a checkpoint (C2SP tlog-checkpoint),
//! kept in the database, in a file under the data directory and in the
//! evidence store. `verify` rebuilds the tree and compares it with every
//! checkpoint, so an edited, deleted, renumbered or cut-off event is found.
//! Events record who did what to whose data, never the data itself.
pub mod api;
pub mod checkpoint;
pub mod sequencer;
mod service;
pub mod tree;
mod verify;

pub use sequencer::{inclusion, latest_checkpoint, CheckpointCopy, Inclusion, Pass, Sequencer};
pub use service::{access_log_for, append, leaf_entry, Actor, Event};
pub use verify::{verify, TreeReport};

/// This capability's routes, mounted by its own fairing.
pub fn stage() -> rocket::fairing::AdHoc {
    crate::web::mount("Audit log", vec![], api::routes())
}
