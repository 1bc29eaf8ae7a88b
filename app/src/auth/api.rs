//! `/api/v1/auth…` and `/api/v1/me`.
use rocket::http::Status;
use rocket::serde::json::Json;
use rocket::State;
use serde::{Deserialize, Serialize};

use super::service::{self, Account};
use super::{ClientIp, CurrentUser, Role};
use crate::audit::Actor;
use crate::error::AppResult;
use crate::AppState;

#[derive(Deserialize)]
pub struct Credentials {
    #[serde(default)]
    pub email: String,
    #[serde(default)]
    pub password: String,
}

#[derive(Serialize)]
pub struct TokenResponse {
    pub token: String,
    pub expires_at: chrono::DateTime<chrono::Utc>,
}

#[rocket::post("/auth/register", data = "<body>")]
pub async fn register(
    state: &State<AppState>,
    ip: ClientIp,
    body: Json<Credentials>,
) -> AppResult<(Status, Json<Account>)> {
    let (email, password) = service::parse_credentials(&body.email, &body.password)?;
    let actor = Actor { ip: ip.0.map(|i| i.to_string()), ..Default::default() };
    let account = service::create_account(state, &actor, &email, &password, Role::Claimant).await?;
    Ok((Status::Created, Json(account)))
}

#[rocket::post("/auth/login", data = "<body>")]
pub async fn login(state: &State<AppState>, ip: ClientIp, body: Json<Credentials>) -> AppResult<Json<TokenResponse>> {
    let session = service::login(state, ip.0, &body.email, &body.password).await?;
    Ok(Json(TokenResponse { token: session.token, expires_at: session.expires_at }))
}

#[rocket::post("/auth/logout")]
pub async fn logout(user: CurrentUser, state: &State<AppState>) -> AppResult<Status> {
    service::logout(state, &user.actor(), user.session_id).await?;
    Ok(Status::NoContent)
}

#[rocket::get("/me")]
pub async fn me(user: CurrentUser, state: &State<AppState>) -> AppResult<Json<Account>> {
    Ok(Json(service::account_by_id(state, user.id).await?))
}

pub fn routes() -> Vec<rocket::Route> {
    rocket::routes![register, login, logout, me]
}
