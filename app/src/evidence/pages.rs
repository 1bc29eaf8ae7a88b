//! The claimant's evidence pages: upload (works without JavaScript; with it,
//! a progress bar), download through the authorised route, delete in a draft.
use crate::body::NoFields;
use rocket::State;

use rocket::data::Data;

use super::api::{upload_streamed, Attachment, StreamedUpload, UploadHeaders};
use super::service;
use crate::auth::{ClaimantUser, CurrentUser};
use crate::error::{AppError, AppResult};
use crate::intake::pages::render_claim_step;
use crate::web::{Page, PageForm, PageResponse};
use crate::{parse_id, AppState};
use uuid::Uuid;

#[rocket::post("/claims/<id>/evidence", data = "<data>")]
pub async fn upload(
    id: &str,
    headers: UploadHeaders,
    data: Data<'_>,
    page: Page<ClaimantUser>,
    state: &State<AppState>,
) -> AppResult<PageResponse> {
    let claim_id = parse_id(id)?;
    let streamed = async {
        let upload = StreamedUpload::open(&headers, data, "upload.file").await?;
        // The page's token comes before the file: nothing is stored without it.
        page.csrf.verify(upload.field(crate::body::TOKEN_FIELD).unwrap_or_default())?;
        upload_streamed(state, &page.caller, claim_id, upload, "upload.kind", None).await
    };
    match streamed.await {
        Ok(_) => Ok(PageResponse::redirect(format!("/claims/{claim_id}/evidence"))),
        Err(e) => refused(state, &page, claim_id, e).await,
    }
}

/// An upload refused for what was sent shows the step again with why;
/// anything else is the error it is.
async fn refused(state: &AppState, page: &Page<ClaimantUser>, claim_id: Uuid, e: AppError) -> AppResult<PageResponse> {
    match e {
        AppError::TooLarge
        | AppError::UnsupportedType
        | AppError::Conflict(_)
        | AppError::Invalid(_)
        | AppError::Malformed => {
            let mut errors = e.field_messages(page.lang);
            if errors.is_empty() {
                errors.insert("file".into(), e.message(page.lang));
            }
            let view = render_claim_step(state, page, claim_id, "evidence", errors).await?;
            Ok(PageResponse::refused(e.status(), view))
        }
        AppError::WrongState(_) => Ok(PageResponse::redirect(format!("/claims/{claim_id}"))),
        e => Err(e),
    }
}

#[rocket::get("/claims/<_id>/evidence/<evidence>")]
pub async fn download(_id: &str, evidence: &str, user: CurrentUser, state: &State<AppState>) -> AppResult<Attachment> {
    Ok(Attachment(service::download(state, &user, parse_id(evidence)?).await?))
}

#[rocket::post("/claims/<id>/evidence/<evidence>/delete", data = "<_token>")]
pub async fn delete(
    id: &str,
    evidence: &str,
    _token: PageForm<NoFields>,
    user: ClaimantUser,
    state: &State<AppState>,
) -> AppResult<PageResponse> {
    let claim_id = parse_id(id)?;
    match service::delete(state, &user, parse_id(evidence)?).await {
        Ok(()) | Err(AppError::WrongState(_)) => Ok(PageResponse::redirect(format!("/claims/{claim_id}/evidence"))),
        Err(e) => Err(e),
    }
}

pub fn routes() -> Vec<rocket::Route> {
    rocket::routes![upload, download, delete]
}
