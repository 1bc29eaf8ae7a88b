//! `/api/v1/me/…`: the claimant's own data.
use rocket::http::{ContentType, Header};
use rocket::request::Request;
use rocket::response::{self, Responder};
use rocket::serde::json::Json;
use rocket::State;
use serde::Deserialize;

use super::service::{self, AccessEntry, ErasureReport, Export, Preferences};
use crate::auth::{ClaimantUser, CurrentUser};
use crate::body::JsonBody;
use crate::error::{AppError, AppResult};
use crate::AppState;

/// How the caller wants to hear from the portal.
#[rocket::get("/me/preferences")]
pub async fn preferences(user: CurrentUser, state: &State<AppState>) -> AppResult<Json<Preferences>> {
    Ok(Json(service::preferences(state, &user).await?))
}

#[rocket::put("/me/preferences", data = "<body>")]
pub async fn set_preferences(
    user: CurrentUser,
    state: &State<AppState>,
    body: JsonBody<Preferences>,
) -> AppResult<Json<Preferences>> {
    Ok(Json(service::set_preferences(state, &user, &body).await?))
}

/// That an access-log entry is in the signed audit log: an RFC 9162
/// inclusion proof against the latest checkpoint.
#[rocket::get("/me/access-log/<seq>/proof")]
pub async fn access_proof(
    user: ClaimantUser,
    state: &State<AppState>,
    seq: i64,
) -> AppResult<Json<crate::audit::Inclusion>> {
    Ok(Json(service::access_proof(state, &user, seq).await?))
}

#[rocket::get("/me/access-log")]
pub async fn access_log(user: ClaimantUser, state: &State<AppState>) -> AppResult<Json<Vec<AccessEntry>>> {
    Ok(Json(service::access_log(state, &user).await?))
}

#[rocket::get("/me/export")]
pub async fn export(user: ClaimantUser, state: &State<AppState>) -> AppResult<Json<Export>> {
    Ok(Json(service::export(state, &user).await?))
}

/// A finished ZIP in an unlinked temporary file, sent as an attachment.
pub struct ZipDownload {
    file: rocket::tokio::fs::File,
    name: String,
}

impl<'r> Responder<'r, 'static> for ZipDownload {
    fn respond_to(self, req: &'r Request<'_>) -> response::Result<'static> {
        let mut res = self.file.respond_to(req)?;
        res.set_header(ContentType::ZIP);
        res.set_header(Header::new("Content-Disposition", format!("attachment; filename=\"{}\"", self.name)));
        res.set_header(Header::new("X-Content-Type-Options", "nosniff"));
        Ok(res)
    }
}

/// Build the claimant's ZIP (export.json + files) on disk, never whole in memory.
pub async fn zip_download(state: &AppState, user: &CurrentUser) -> AppResult<ZipDownload> {
    let io = |e: std::io::Error| AppError::caused_by("export file", e);
    let file = rocket::tokio::task::spawn_blocking(tempfile::tempfile)
        .await
        .map_err(|e| AppError::caused_by("export file task", e))?
        .map_err(io)?;
    let file = service::export_zip(state, user, file).await?;
    let mut file = rocket::tokio::fs::File::from_std(file);
    rocket::tokio::io::AsyncSeekExt::rewind(&mut file).await.map_err(io)?;
    Ok(ZipDownload { file, name: format!("my-data-{}.zip", state.clock.today().format("%Y%m%d")) })
}

#[rocket::get("/me/export.zip")]
pub async fn export_zip(user: ClaimantUser, state: &State<AppState>) -> AppResult<ZipDownload> {
    zip_download(state, &user).await
}

#[derive(Deserialize)]
pub struct EraseBody {
    #[serde(default)]
    pub password: String,
}

#[rocket::post("/me/erase", data = "<body>")]
pub async fn erase(
    user: ClaimantUser,
    state: &State<AppState>,
    body: JsonBody<EraseBody>,
) -> AppResult<Json<ErasureReport>> {
    Ok(Json(service::erase(state, &user, &body.password).await?))
}

pub fn routes() -> Vec<rocket::Route> {
    rocket::routes![preferences, set_preferences, access_log, access_proof, export, export_zip, erase]
}
