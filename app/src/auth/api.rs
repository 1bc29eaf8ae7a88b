//! `/api/v1/auth…` and `/api/v1/me`.
use rocket::http::Status;
use rocket::serde::json::Json;
use rocket::State;
use serde::{Deserialize, Serialize};

use super::service::{self, Account};
use super::{ClientIp, CurrentUser, Role};
use crate::audit::Actor;
use crate::body::JsonBody;
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
    lang: crate::i18n::Lang,
    body: JsonBody<Credentials>,
) -> AppResult<(Status, Json<Account>)> {
    let (email, password) = service::parse_credentials(&body.email, &body.password)?;
    let actor = Actor { ip: ip.0.map(|i| i.to_string()), ..Default::default() };
    let account = service::create_account(state, &actor, &email, &password, Role::Claimant, lang).await?;
    Ok((Status::Created, Json(account)))
}

#[rocket::post("/auth/login", data = "<body>")]
pub async fn login(
    state: &State<AppState>,
    ip: ClientIp,
    body: JsonBody<Credentials>,
) -> AppResult<Json<TokenResponse>> {
    let session = service::login(state, ip.0, &body.email, &body.password).await?;
    Ok(Json(TokenResponse { token: session.token, expires_at: session.expires_at }))
}

#[rocket::post("/auth/logout")]
pub async fn logout(user: CurrentUser, state: &State<AppState>) -> AppResult<Status> {
    service::logout(state, &user.actor(), user.session_id).await?;
    Ok(Status::NoContent)
}

#[derive(Serialize)]
pub struct Me {
    #[serde(flatten)]
    pub account: Account,
    pub second_factor: super::totp::SecondFactor,
}

#[rocket::get("/me")]
pub async fn me(user: CurrentUser, state: &State<AppState>) -> AppResult<Json<Me>> {
    Ok(Json(Me {
        account: service::account_by_id(state, user.id).await?,
        second_factor: super::totp::status(state, &user).await?,
    }))
}

#[rocket::post("/auth/totp/setup")]
pub async fn totp_setup(
    user: CurrentUser,
    state: &State<AppState>,
) -> AppResult<(Status, Json<super::totp::TotpSetup>)> {
    Ok((Status::Created, Json(super::totp::setup(state, &user).await?)))
}

#[derive(Deserialize)]
pub struct CodeBody {
    #[serde(default)]
    pub code: String,
}

#[rocket::post("/auth/totp/verify", data = "<body>")]
pub async fn totp_verify(user: CurrentUser, state: &State<AppState>, body: JsonBody<CodeBody>) -> AppResult<Status> {
    super::totp::verify(state, &user, &body.code).await?;
    Ok(Status::NoContent)
}

#[derive(serde::Deserialize)]
pub struct PasswordBody {
    #[serde(default)]
    pub password: String,
}

/// Re-enter the password: needed shortly before downloading a filing bundle.
#[rocket::post("/auth/reauth", data = "<body>")]
pub async fn reauth(user: CurrentUser, state: &State<AppState>, body: JsonBody<PasswordBody>) -> AppResult<Status> {
    service::reauthenticate(state, &user, &body.password).await?;
    Ok(Status::NoContent)
}

pub fn routes() -> Vec<rocket::Route> {
    rocket::routes![register, login, logout, me, totp_setup, totp_verify, reauth]
}
