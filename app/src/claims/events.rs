//! What a claim's storage and the capabilities beside it tell the ones
//! above (events instead of upward calls). The crate root fills the
//! listeners in when it builds the application's state.
use entities::claim;
use rocket::futures::future::BoxFuture;

use crate::error::AppResult;
use crate::AppState;

/// A claim was submitted and committed. Returns whether the listener moved
/// it on (the case's policy verified it), so the claimant's answer says so.
pub type Submitted = for<'a> fn(&'a AppState, &'a claim::Model) -> BoxFuture<'a, AppResult<bool>>;

#[derive(Clone, Copy)]
pub struct Listeners {
    pub submitted: Submitted,
}
