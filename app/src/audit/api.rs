//! Administrators' audit endpoints.
use rocket::serde::json::Json;
use rocket::State;

use super::TreeReport;
use crate::auth::{CurrentUser, Role};
use crate::error::{AppError, AppResult};
use crate::AppState;

/// Sequence what is pending (when this server may), then verify the whole
/// log against every checkpoint known.
#[rocket::get("/admin/audit/verify")]
pub async fn verify(user: CurrentUser, state: &State<AppState>) -> AppResult<Json<TreeReport>> {
    user.require(Role::Admin)?;
    if let Err(e) = state.audit.pass().await {
        // The report that follows says what is wrong with the log.
        tracing::warn!(error = %e, "audit sequencing pass failed");
    }
    Ok(Json(state.audit.verify(&[]).await.map_err(AppError::from)?))
}

pub fn routes() -> Vec<rocket::Route> {
    rocket::routes![verify]
}
