//! Claims: the record below every capability that works on one. Owning a
//! claim, its data key and its sealed draft (`store`), the draft's two
//! layouts and the data steps between them (`documents`), the draft's types and
//! the status rules (`domain`), who on the staff may read a claim and the
//! watch on their reads (`access`), what the lawyers decided as the
//! claimant sees it (`notices`), and the events it tells the capabilities
//! above (`events`).
pub mod access;
pub mod documents;
pub mod domain;
pub mod events;
pub mod notices;
pub mod store;

pub use events::Listeners;
