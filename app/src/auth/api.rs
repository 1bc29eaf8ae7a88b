//! `/api/v1/auth…` and `/api/v1/me`.
use rocket::http::Status;
use rocket::serde::json::Json;
use rocket::State;
use serde::{Deserialize, Serialize};

use super::service::{self, Account};
use super::{ClientIp, CurrentUser};
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
) -> AppResult<(Status, Json<Registered>)> {
    let (email, password) = service::parse_credentials(&body.email, &body.password)?;
    super::registration::register(state, ip.0, &email, &password, lang).await?;
    Ok((Status::Accepted, Json(Registered { next: "check_your_mail" })))
}

/// What registration says, for a new address and a known one alike.
#[derive(Serialize)]
pub struct Registered {
    pub next: &'static str,
}

#[derive(Deserialize)]
pub struct ConfirmBody {
    #[serde(default)]
    pub token: String,
}

/// Open the link from the confirmation mail (its `token`).
#[rocket::post("/auth/confirm", data = "<body>")]
pub async fn confirm(state: &State<AppState>, body: JsonBody<ConfirmBody>) -> AppResult<Status> {
    super::registration::confirm(state, &body.token).await?;
    Ok(Status::NoContent)
}

#[derive(Deserialize)]
pub struct PasswordChange {
    #[serde(default)]
    pub current_password: String,
    #[serde(default)]
    pub new_password: String,
}

/// Change the caller's password; every other session of the account ends.
#[rocket::put("/me/password", data = "<body>")]
pub async fn change_password(
    user: CurrentUser,
    state: &State<AppState>,
    body: JsonBody<PasswordChange>,
) -> AppResult<Status> {
    super::lifecycle::change_password(state, &user, &body.current_password, &body.new_password).await?;
    Ok(Status::NoContent)
}

#[derive(Deserialize)]
pub struct Disabled {
    pub disabled: bool,
}

/// Disable or enable another account (disabling ends its sessions).
#[rocket::put("/admin/users/<id>/disabled", data = "<body>")]
pub async fn set_disabled(
    admin: super::AdminUser,
    state: &State<AppState>,
    id: &str,
    body: JsonBody<Disabled>,
) -> AppResult<Status> {
    let id = id.parse().map_err(|_| crate::error::AppError::NotFound)?;
    super::lifecycle::set_disabled(state, &admin.0, id, body.disabled).await?;
    Ok(Status::NoContent)
}

#[derive(Serialize)]
pub struct Ended {
    pub sessions_ended: u64,
}

/// End every session of another account.
#[rocket::post("/admin/users/<id>/sessions/end")]
pub async fn end_sessions(admin: super::AdminUser, state: &State<AppState>, id: &str) -> AppResult<Json<Ended>> {
    let id = id.parse().map_err(|_| crate::error::AppError::NotFound)?;
    let sessions_ended = super::lifecycle::end_sessions(state, &admin.0, id).await?;
    Ok(Json(Ended { sessions_ended }))
}

/// Send the confirmation link again.
#[rocket::post("/me/confirmation")]
pub async fn resend_confirmation(user: CurrentUser, state: &State<AppState>) -> AppResult<Status> {
    super::registration::resend(state, &user).await?;
    Ok(Status::Accepted)
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
    /// Whether the owner opened the link sent to the address (needed to submit a claim).
    pub email_confirmed: bool,
    pub second_factor: super::totp::SecondFactor,
}

#[rocket::get("/me")]
pub async fn me(user: CurrentUser, state: &State<AppState>) -> AppResult<Json<Me>> {
    Ok(Json(Me {
        account: service::account_by_id(state, user.id).await?,
        email_confirmed: super::registration::confirmed(state, user.id).await?,
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
    rocket::routes![
        register,
        confirm,
        resend_confirmation,
        login,
        logout,
        me,
        totp_setup,
        totp_verify,
        reauth,
        change_password,
        set_disabled,
        end_sessions
    ]
}
