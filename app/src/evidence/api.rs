//! `/api/v1/claims/{id}/evidence`, `/api/v1/evidence/{id}…`.
use rocket::data::Capped;
use rocket::form::Form;
use rocket::fs::TempFile;
use rocket::http::{ContentType, Header, Status};
use rocket::request::{FromRequest, Outcome, Request};
use rocket::response::stream::ByteStream;
use rocket::response::{self, Responder};
use rocket::serde::json::Json;
use rocket::State;

use super::domain::EvidenceKind;
use super::service::{self, Download, EvidenceView};
use crate::auth::CurrentUser;
use crate::domain::FieldErrors;
use crate::error::{AppError, AppResult};
use crate::{parse_id, AppState};

/// `Idempotency-Key`: a retried upload with the same key is one file.
pub struct IdempotencyKey(pub Option<String>);

#[rocket::async_trait]
impl<'r> FromRequest<'r> for IdempotencyKey {
    type Error = ();
    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, ()> {
        match req.headers().get_one("Idempotency-Key") {
            None => Outcome::Success(IdempotencyKey(None)),
            Some(k)
                if !k.is_empty()
                    && k.len() <= 64
                    && k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') =>
            {
                Outcome::Success(IdempotencyKey(Some(k.to_string())))
            }
            Some(_) => Outcome::Error((Status::BadRequest, ())),
        }
    }
}

#[derive(rocket::FromForm)]
pub struct UploadForm<'r> {
    kind: String,
    file: Capped<TempFile<'r>>,
}

/// How much of the temporary file is read at a time.
const READ_BUFFER: usize = 256 * 1024;

/// Parse the kind and take the uploaded file's bytes from the temporary
/// file Rocket streamed them into (never whole in memory).
pub async fn upload_from_form(
    state: &AppState,
    user: &CurrentUser,
    claim_id: uuid::Uuid,
    form: &UploadForm<'_>,
    key: Option<String>,
) -> AppResult<(EvidenceView, bool)> {
    let mut errors = FieldErrors::new();
    let kind = errors.check("kind", EvidenceKind::parse(&form.kind));
    let kind = errors.into_result(kind)?.ok_or(AppError::Malformed)?;
    if !form.file.is_complete() {
        return Err(AppError::TooLarge);
    }
    let size = form.file.len();
    let reader = form.file.open().await.map_err(|e| AppError::Internal(e.to_string()))?;
    // Large reads: each read of the temporary file is a trip to the blocking pool.
    let mut reader = Box::pin(rocket::tokio::io::BufReader::with_capacity(READ_BUFFER, reader));
    service::upload(state, user, claim_id, kind, size, &mut reader, key).await
}

#[rocket::post("/claims/<id>/evidence", data = "<form>")]
pub async fn upload(
    user: CurrentUser,
    state: &State<AppState>,
    id: &str,
    key: IdempotencyKey,
    form: Form<UploadForm<'_>>,
) -> AppResult<(Status, Json<EvidenceView>)> {
    let (view, created) = upload_from_form(state, &user, parse_id(id)?, &form, key.0).await?;
    Ok((if created { Status::Created } else { Status::Ok }, Json(view)))
}

#[rocket::get("/claims/<id>/evidence")]
pub async fn list(user: CurrentUser, state: &State<AppState>, id: &str) -> AppResult<Json<Vec<EvidenceView>>> {
    Ok(Json(service::list(state, &user, parse_id(id)?).await?))
}

/// A download: `Content-Disposition: attachment`, `nosniff`, streamed and
/// decrypted chunk by chunk.
pub struct Attachment(pub Download);

impl<'r> Responder<'r, 'r> for Attachment {
    fn respond_to(self, req: &'r Request<'_>) -> response::Result<'r> {
        let Attachment(mut download) = self;
        let file_name = download.file_name.clone();
        let content_type = ContentType::parse_flexible(&download.content_type).unwrap_or(ContentType::Binary);
        let stream = ByteStream! {
            loop {
                match download.next_chunk().await {
                    Ok(Some(chunk)) => yield chunk,
                    Ok(None) => break,
                    Err(e) => {
                        // Headers are gone already: end the body early so the
                        // client sees a short read, and log why.
                        tracing::error!(error = %e, "evidence download interrupted");
                        break;
                    }
                }
            }
        };
        let mut res = stream.respond_to(req)?;
        res.set_header(content_type);
        res.set_header(Header::new(
            "Content-Disposition",
            format!("attachment; filename=\"{file_name}\"; filename*=UTF-8''{file_name}"),
        ));
        res.set_header(Header::new("X-Content-Type-Options", "nosniff"));
        Ok(res)
    }
}

#[rocket::get("/evidence/<id>/content")]
pub async fn content(user: CurrentUser, state: &State<AppState>, id: &str) -> AppResult<Attachment> {
    Ok(Attachment(service::download(state, &user, parse_id(id)?).await?))
}

#[rocket::delete("/evidence/<id>")]
pub async fn delete(user: CurrentUser, state: &State<AppState>, id: &str) -> AppResult<Status> {
    service::delete(state, &user, parse_id(id)?).await?;
    Ok(Status::NoContent)
}

pub fn routes() -> Vec<rocket::Route> {
    rocket::routes![upload, list, content, delete]
}
