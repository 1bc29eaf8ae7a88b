//! `/api/v1/admin/…rounds…`: thin JSON handlers over `rounds::service`.
use rocket::http::Status;
use rocket::serde::json::Json;
use rocket::State;

use super::export::{self, ExportView};
use super::service::{self, MemberView, PolicyView, Preview, RoundInput, RoundView};
use crate::auth::AdminUser;
use crate::body::JsonBody;
use crate::error::AppResult;
use crate::evidence::api::Attachment;
use crate::{parse_id, AppState};

#[rocket::post("/admin/cases/<slug>/rounds", data = "<body>")]
pub async fn create(
    admin: AdminUser,
    state: &State<AppState>,
    slug: &str,
    body: JsonBody<RoundInput>,
) -> AppResult<(Status, Json<RoundView>)> {
    Ok((Status::Created, Json(service::create(state, &admin.0, slug, &body).await?)))
}

#[rocket::get("/admin/cases/<slug>/rounds")]
pub async fn list(admin: AdminUser, state: &State<AppState>, slug: &str) -> AppResult<Json<Vec<RoundView>>> {
    Ok(Json(service::list(state, &admin.0, slug).await?))
}

#[rocket::get("/admin/rounds/<id>")]
pub async fn get(admin: AdminUser, state: &State<AppState>, id: &str) -> AppResult<Json<RoundView>> {
    Ok(Json(service::get(state, &admin.0, parse_id(id)?).await?))
}

#[rocket::put("/admin/rounds/<id>/policy", data = "<body>")]
pub async fn set_policy(
    admin: AdminUser,
    state: &State<AppState>,
    id: &str,
    body: JsonBody<serde_json::Value>,
) -> AppResult<(Status, Json<PolicyView>)> {
    Ok((Status::Created, Json(service::set_policy(state, &admin.0, parse_id(id)?, &body).await?)))
}

#[rocket::post("/admin/rounds/<id>/compute")]
pub async fn compute(admin: AdminUser, state: &State<AppState>, id: &str) -> AppResult<Json<Preview>> {
    Ok(Json(service::compute(state, &admin.0, parse_id(id)?).await?))
}

#[rocket::post("/admin/rounds/<id>/freeze")]
pub async fn freeze(admin: AdminUser, state: &State<AppState>, id: &str) -> AppResult<Json<Preview>> {
    Ok(Json(service::freeze(state, &admin.0, parse_id(id)?).await?))
}

/// The round was filed with the court.
#[rocket::post("/admin/rounds/<id>/filed")]
pub async fn filed(admin: AdminUser, state: &State<AppState>, id: &str) -> AppResult<Json<RoundView>> {
    Ok(Json(service::mark_filed(state, &admin.0, parse_id(id)?).await?))
}

#[rocket::get("/admin/rounds/<id>/members")]
pub async fn members(admin: AdminUser, state: &State<AppState>, id: &str) -> AppResult<Json<Vec<MemberView>>> {
    Ok(Json(service::members(state, &admin.0, parse_id(id)?).await?))
}

#[rocket::post("/admin/rounds/<id>/exports")]
pub async fn start_export(
    admin: AdminUser,
    state: &State<AppState>,
    id: &str,
) -> AppResult<(Status, Json<ExportView>)> {
    Ok((Status::Accepted, Json(export::start(state, &admin.0, parse_id(id)?).await?)))
}

#[rocket::get("/admin/rounds/<id>/exports")]
pub async fn exports(admin: AdminUser, state: &State<AppState>, id: &str) -> AppResult<Json<Vec<ExportView>>> {
    Ok(Json(export::list(state, &admin.0, parse_id(id)?).await?))
}

#[rocket::get("/admin/exports/<id>")]
pub async fn export_status(admin: AdminUser, state: &State<AppState>, id: &str) -> AppResult<Json<ExportView>> {
    Ok(Json(export::status(state, &admin.0, parse_id(id)?).await?))
}

/// The bundle: only shortly after `POST /auth/reauth` in the same session.
#[rocket::get("/admin/exports/<id>/download")]
pub async fn download(admin: AdminUser, state: &State<AppState>, id: &str) -> AppResult<Attachment> {
    Ok(Attachment(export::download(state, &admin.0, parse_id(id)?).await?))
}

pub fn routes() -> Vec<rocket::Route> {
    rocket::routes![
        create,
        list,
        get,
        set_policy,
        compute,
        freeze,
        filed,
        members,
        start_export,
        exports,
        export_status,
        download
    ]
}
