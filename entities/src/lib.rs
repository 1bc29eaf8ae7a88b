//! SeaORM entity definitions only: no behaviour, no web framework.
//! Columns named `sealed` hold AEAD ciphertext; columns named `*_index` hold
//! keyed hashes (blind indexes). Neither is ever plaintext personal data.
pub mod audit_event;
pub mod case;
pub mod claim;
pub mod consent;
pub mod consent_document;
pub mod evidence;
pub mod harm;
pub mod notification;
pub mod person;
pub mod roster_entry;
pub mod roster_import;
pub mod session;
pub mod user;
