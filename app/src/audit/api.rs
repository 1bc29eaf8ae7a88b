//! Administrators' audit endpoints.
use rocket::serde::json::Json;
use rocket::State;

use super::ChainReport;
use crate::auth::{CurrentUser, Role};
use crate::error::{AppError, AppResult};
use crate::AppState;

#[rocket::get("/admin/audit/verify")]
pub async fn verify(user: CurrentUser, state: &State<AppState>) -> AppResult<Json<ChainReport>> {
    user.require(Role::Admin)?;
    Ok(Json(super::verify_chain(state.db.conn()).await.map_err(AppError::from)?))
}

pub fn routes() -> Vec<rocket::Route> {
    rocket::routes![verify]
}
