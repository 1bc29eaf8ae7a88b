//! `/api/v1` consent routes: a case's current documents, signing, a
//! claim's consent state, and publishing new versions (administrators).
use rocket::http::Status;
use rocket::request::{FromRequest, Outcome, Request};
use rocket::serde::json::Json;
use rocket::State;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::domain::DocumentInput;
use super::service::{self, ConsentState, DocumentView, Signature, SigningContext};
use crate::auth::{AdminUser, ClaimantUser};
use crate::body::JsonBody;
use crate::error::AppResult;
use crate::{parse_id, AppState};

#[rocket::async_trait]
impl<'r> FromRequest<'r> for SigningContext {
    type Error = std::convert::Infallible;
    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, Self::Error> {
        Outcome::Success(SigningContext {
            ip: crate::auth::client_ip(req).map(|i| i.to_string()),
            user_agent: req.headers().get_one("User-Agent").map(str::to_string),
        })
    }
}

#[rocket::get("/cases/<slug>/documents")]
pub async fn documents(state: &State<AppState>, slug: &str) -> AppResult<Json<Vec<DocumentView>>> {
    let case = state.cases.by_slug(state.db.conn(), slug).await?;
    Ok(Json(service::current_documents(state.db.conn(), case.model.id).await?))
}

#[derive(Deserialize)]
pub struct SignBody {
    pub document_id: Uuid,
    #[serde(default)]
    pub signer_name: String,
}

#[rocket::post("/claims/<id>/consents", data = "<body>")]
pub async fn sign(
    user: ClaimantUser,
    state: &State<AppState>,
    context: SigningContext,
    id: &str,
    body: JsonBody<SignBody>,
) -> AppResult<(Status, Json<Vec<Signature>>)> {
    let signed = service::sign(state, &user, parse_id(id)?, body.document_id, &body.signer_name, context).await?;
    Ok((Status::Created, Json(signed)))
}

#[derive(Serialize)]
pub struct ClaimConsents {
    #[serde(flatten)]
    pub state: ConsentState,
    pub signatures: Vec<Signature>,
}

#[rocket::get("/claims/<id>/consents")]
pub async fn claim_consents(user: ClaimantUser, state: &State<AppState>, id: &str) -> AppResult<Json<ClaimConsents>> {
    let (consent, signatures) = service::for_claim(state, &user, parse_id(id)?).await?;
    Ok(Json(ClaimConsents { state: consent, signatures }))
}

#[rocket::post("/admin/cases/<slug>/documents", data = "<body>")]
pub async fn publish(
    admin: AdminUser,
    state: &State<AppState>,
    slug: &str,
    body: JsonBody<DocumentInput>,
) -> AppResult<(Status, Json<DocumentView>)> {
    Ok((Status::Created, Json(service::publish(state, &admin.0, slug, &body).await?)))
}

#[rocket::get("/admin/cases/<slug>/documents")]
pub async fn history(_admin: AdminUser, state: &State<AppState>, slug: &str) -> AppResult<Json<Vec<DocumentView>>> {
    let case = crate::cases::service::by_slug(state.db.conn(), slug).await?;
    Ok(Json(service::history(state.db.conn(), case.model.id).await?))
}

pub fn routes() -> Vec<rocket::Route> {
    rocket::routes![documents, sign, claim_consents, publish, history]
}
