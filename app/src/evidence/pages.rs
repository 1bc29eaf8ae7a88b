//! The claimant's evidence pages: upload (works without JavaScript; with it,
//! a progress bar), download through the authorised route, delete in a draft.
use crate::body::FormBody;
use rocket::State;

use rocket::data::{Data, Limits};
use rocket::http::ContentType;

use super::api::{upload_streamed, Attachment, BodyLength, StreamedUpload};
use super::service;
use crate::auth::{ClaimantUser, Csrf, CurrentUser};
use crate::error::{AppError, AppResult};
use crate::i18n::Lang;
use crate::intake::pages::render_claim_step;
use crate::web::PageResponse;
use crate::{parse_id, AppState};

#[rocket::post("/claims/<id>/evidence", data = "<data>")]
#[allow(clippy::too_many_arguments)]
pub async fn upload(
    id: &str,
    content_type: Option<&ContentType>,
    length: BodyLength,
    limits: &Limits,
    data: Data<'_>,
    lang: Lang,
    csrf: Csrf,
    user: ClaimantUser,
    state: &State<AppState>,
) -> AppResult<PageResponse> {
    let claim_id = parse_id(id)?;
    let streamed = async {
        let upload = StreamedUpload::open(content_type, &length, limits, data, "upload.file").await?;
        // The page's token comes before the file: nothing is stored without it.
        csrf.verify(upload.field("csrf").unwrap_or_default())?;
        upload_streamed(state, &user, claim_id, upload, "upload.kind", None).await
    };
    match streamed.await {
        Ok(_) => Ok(PageResponse::redirect(format!("/claims/{claim_id}/evidence"))),
        Err(
            e @ (AppError::TooLarge
            | AppError::UnsupportedType
            | AppError::Conflict(_)
            | AppError::Invalid(_)
            | AppError::Malformed),
        ) => {
            let status = e.status();
            let mut errors = e.field_messages(lang);
            if errors.is_empty() {
                errors.insert("file".into(), e.message(lang));
            }
            let page = render_claim_step(state, lang, &csrf, &user, claim_id, "evidence", errors).await?;
            Ok(PageResponse::refused(status, page))
        }
        Err(AppError::WrongState(_)) => Ok(PageResponse::redirect(format!("/claims/{claim_id}"))),
        Err(e) => Err(e),
    }
}

#[rocket::get("/claims/<_id>/evidence/<evidence>")]
pub async fn download(_id: &str, evidence: &str, user: CurrentUser, state: &State<AppState>) -> AppResult<Attachment> {
    Ok(Attachment(service::download(state, &user, parse_id(evidence)?).await?))
}

#[derive(rocket::FromForm)]
pub struct CsrfForm {
    csrf: String,
}

#[rocket::post("/claims/<id>/evidence/<evidence>/delete", data = "<form>")]
pub async fn delete(
    id: &str,
    evidence: &str,
    form: FormBody<CsrfForm>,
    csrf: Csrf,
    user: ClaimantUser,
    state: &State<AppState>,
) -> AppResult<PageResponse> {
    csrf.verify(&form.csrf)?;
    let claim_id = parse_id(id)?;
    match service::delete(state, &user, parse_id(evidence)?).await {
        Ok(()) | Err(AppError::WrongState(_)) => Ok(PageResponse::redirect(format!("/claims/{claim_id}/evidence"))),
        Err(e) => Err(e),
    }
}

pub fn routes() -> Vec<rocket::Route> {
    rocket::routes![upload, download, delete]
}
