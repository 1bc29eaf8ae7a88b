//! SeaORM entity definitions only: no behaviour, no web framework.
//! Columns named `sealed` hold AEAD ciphertext; columns named `*_index` hold
//! keyed hashes (blind indexes). Neither is ever plaintext personal data.
pub mod alert;
pub mod audit_checkpoint;
pub mod audit_event;
pub mod audit_node;
pub mod case;
pub mod case_member;
pub mod claim;
pub mod consent;
pub mod consent_document;
pub mod evidence;
pub mod export;
pub mod filing_round;
pub mod harm;
pub mod job;
pub mod lease;
pub mod notification;
pub mod outbox;
pub mod person;
pub mod read_counter;
pub mod review_decision;
pub mod review_note;
pub mod roster_bucket;
pub mod roster_import;
pub mod round_member;
pub mod session;
pub mod session_change;
pub mod tier_policy;
pub mod user;
