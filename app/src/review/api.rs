//! `/api/v1/review…` (lawyers and administrators) and the administration
//! of case membership, the auto-verification policy and alerts: thin JSON
//! handlers over `desk` and `admin`.
use rocket::http::Status;
use rocket::serde::json::Json;
use rocket::State;
use serde::Deserialize;
use uuid::Uuid;

use super::admin::{self, AlertView};
use super::desk::{self, BulkReport, Decided, MemberView, NoteView, QueuePage, QueueQuery, ReviewDetail};
use super::domain::DecisionInput;
use crate::auth::{AdminUser, StaffUser};
use crate::body::JsonBody;
use crate::error::AppResult;
use crate::i18n::Lang;
use crate::{parse_id, AppState};

#[rocket::get("/review/claims?<q..>")]
pub async fn queue(
    staff: StaffUser,
    state: &State<AppState>,
    lang: Lang,
    q: QueueQuery<'_>,
) -> AppResult<Json<QueuePage>> {
    let filter = q.filter()?;
    Ok(Json(desk::queue(state, &staff.0, &filter, lang).await?))
}

#[rocket::get("/review/claims/<id>")]
pub async fn detail(staff: StaffUser, state: &State<AppState>, lang: Lang, id: &str) -> AppResult<Json<ReviewDetail>> {
    Ok(Json(desk::detail(state, &staff.0, parse_id(id)?, lang).await?))
}

#[rocket::post("/review/claims/<id>/decision", data = "<body>")]
pub async fn decide(
    staff: StaffUser,
    state: &State<AppState>,
    id: &str,
    body: JsonBody<DecisionInput>,
) -> AppResult<Json<Decided>> {
    Ok(Json(desk::decide(state, &staff.0, parse_id(id)?, &body).await?))
}

#[derive(Deserialize)]
pub struct NoteBody {
    #[serde(default)]
    pub body: String,
}

#[rocket::post("/review/claims/<id>/notes", data = "<body>")]
pub async fn add_note(
    staff: StaffUser,
    state: &State<AppState>,
    id: &str,
    body: JsonBody<NoteBody>,
) -> AppResult<(Status, Json<NoteView>)> {
    Ok((Status::Created, Json(desk::add_note(state, &staff.0, parse_id(id)?, &body.body).await?)))
}

#[derive(Deserialize)]
pub struct AssigneeBody {
    pub assignee_id: Option<Uuid>,
}

#[rocket::put("/review/claims/<id>/assignee", data = "<body>")]
pub async fn assign(
    staff: StaffUser,
    state: &State<AppState>,
    id: &str,
    body: JsonBody<AssigneeBody>,
) -> AppResult<Status> {
    desk::assign(state, &staff.0, parse_id(id)?, body.assignee_id).await?;
    Ok(Status::NoContent)
}

#[derive(Deserialize)]
pub struct BulkBody {
    pub case: String,
}

#[rocket::post("/review/bulk-verify", data = "<body>")]
pub async fn bulk_verify(
    staff: StaffUser,
    state: &State<AppState>,
    body: JsonBody<BulkBody>,
) -> AppResult<Json<BulkReport>> {
    Ok(Json(desk::bulk_verify(state, &staff.0, &body.case).await?))
}

#[rocket::get("/admin/cases/<slug>/members")]
pub async fn members(admin: AdminUser, state: &State<AppState>, slug: &str) -> AppResult<Json<Vec<MemberView>>> {
    Ok(Json(admin::members(state, &admin.0, slug).await?))
}

#[derive(Deserialize)]
pub struct MemberBody {
    #[serde(default)]
    pub email: String,
}

#[rocket::post("/admin/cases/<slug>/members", data = "<body>")]
pub async fn add_member(
    admin: AdminUser,
    state: &State<AppState>,
    slug: &str,
    body: JsonBody<MemberBody>,
) -> AppResult<(Status, Json<MemberView>)> {
    Ok((Status::Created, Json(admin::add_member(state, &admin.0, slug, &body.email).await?)))
}

#[rocket::delete("/admin/cases/<slug>/members/<user_id>")]
pub async fn remove_member(admin: AdminUser, state: &State<AppState>, slug: &str, user_id: &str) -> AppResult<Status> {
    admin::remove_member(state, &admin.0, slug, parse_id(user_id)?).await?;
    Ok(Status::NoContent)
}

#[derive(Deserialize)]
pub struct PolicyBody {
    pub auto_verify: bool,
}

#[rocket::put("/admin/cases/<slug>/policy", data = "<body>")]
pub async fn set_policy(
    admin: AdminUser,
    state: &State<AppState>,
    slug: &str,
    body: JsonBody<PolicyBody>,
) -> AppResult<Status> {
    admin::set_auto_verify(state, &admin.0, slug, body.auto_verify).await?;
    Ok(Status::NoContent)
}

#[rocket::get("/admin/alerts")]
pub async fn alerts(admin: AdminUser, state: &State<AppState>) -> AppResult<Json<Vec<AlertView>>> {
    Ok(Json(admin::alerts(state, &admin.0).await?))
}

#[rocket::post("/admin/alerts/<id>/acknowledge")]
pub async fn acknowledge(admin: AdminUser, state: &State<AppState>, id: &str) -> AppResult<Status> {
    admin::acknowledge_alert(state, &admin.0, parse_id(id)?).await?;
    Ok(Status::NoContent)
}

pub fn routes() -> Vec<rocket::Route> {
    rocket::routes![
        queue,
        detail,
        decide,
        add_note,
        assign,
        bulk_verify,
        members,
        add_member,
        remove_member,
        set_policy,
        alerts,
        acknowledge
    ]
}
