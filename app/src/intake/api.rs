//! `/api/v1/claims…`: thin JSON handlers over `intake::service`.
use rocket::http::Status;
use rocket::serde::json::Json;
use rocket::State;
use serde::{Deserialize, Serialize};

use super::service::{self, ClaimDetail};
use crate::auth::ClaimantUser;
use crate::body::JsonBody;
use crate::claims::domain::{ClaimStatus, DraftInput};
use crate::claims::store::ClaimSummary;
use crate::error::AppResult;
use crate::{parse_id, AppState};

#[derive(Deserialize)]
pub struct NewClaim {
    pub case: String,
}

#[derive(Serialize)]
pub struct Created {
    pub id: uuid::Uuid,
    pub number: String,
    pub status: ClaimStatus,
}

#[rocket::post("/claims", data = "<body>")]
pub async fn create(
    user: ClaimantUser,
    state: &State<AppState>,
    body: JsonBody<NewClaim>,
) -> AppResult<(Status, Json<Created>)> {
    let claim = service::create_claim(state, &user, &body.case).await?;
    Ok((Status::Created, Json(Created { id: claim.id, number: claim.number, status: claim.status })))
}

#[rocket::get("/claims")]
pub async fn list(user: ClaimantUser, state: &State<AppState>) -> AppResult<Json<Vec<ClaimSummary>>> {
    Ok(Json(service::list_own(state, &user).await?))
}

#[rocket::get("/claims/<id>")]
pub async fn get(user: ClaimantUser, state: &State<AppState>, id: &str) -> AppResult<Json<ClaimDetail>> {
    Ok(Json(service::get_own(state, &user, parse_id(id)?).await?.0))
}

#[rocket::put("/claims/<id>", data = "<body>")]
pub async fn replace(
    user: ClaimantUser,
    state: &State<AppState>,
    id: &str,
    body: JsonBody<DraftInput>,
) -> AppResult<Json<ClaimDetail>> {
    Ok(Json(service::replace_draft(state, &user, parse_id(id)?, &body).await?))
}

#[rocket::put("/claims/<id>/identity", data = "<body>")]
pub async fn correct_identity(
    user: ClaimantUser,
    state: &State<AppState>,
    id: &str,
    body: JsonBody<crate::claims::domain::IdentityInput>,
) -> AppResult<Json<ClaimDetail>> {
    Ok(Json(service::correct_identity(state, &user, parse_id(id)?, &body).await?))
}

#[rocket::post("/claims/<id>/submit")]
pub async fn submit(user: ClaimantUser, state: &State<AppState>, id: &str) -> AppResult<Json<ClaimSummary>> {
    Ok(Json(service::submit(state, &user, parse_id(id)?).await?))
}

#[rocket::post("/claims/<id>/withdraw")]
pub async fn withdraw(user: ClaimantUser, state: &State<AppState>, id: &str) -> AppResult<Json<ClaimSummary>> {
    Ok(Json(service::withdraw(state, &user, parse_id(id)?).await?))
}

pub fn routes() -> Vec<rocket::Route> {
    rocket::routes![create, list, get, replace, correct_identity, submit, withdraw]
}
