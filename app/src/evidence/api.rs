//! `/api/v1/claims/{id}/evidence`, `/api/v1/evidence/{id}…`.
use std::pin::Pin;
use std::task::{Context, Poll};

use rocket::data::{Data, Limits};
use rocket::futures::{Stream, TryStreamExt};
use rocket::http::{ContentType, Header, Status};
use rocket::request::{FromRequest, Outcome, Request};
use rocket::response::stream::ByteStream;
use rocket::response::{self, Responder};
use rocket::serde::json::Json;
use rocket::State;
use tokio_util::io::{ReaderStream, StreamReader};

use super::domain::EvidenceKind;
use super::service::{self, Download, EvidenceView};
use crate::auth::{ClaimantUser, CurrentUser};
use crate::domain::{ErrorCode, FieldErrors};
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

/// How much of the request body is read at a time.
const READ_CHUNK: usize = 64 * 1024;
/// The text fields before the file (`kind`, and `csrf` from a page) are short.
const TEXT_FIELD_LIMIT: usize = 4 * 1024;
const TEXT_FIELDS_MAX: usize = 8;

/// multer reads its input until it would block, so a fast client could fill
/// its buffer with megabytes the pipeline has not asked for yet (sixteen
/// uploads to a slower store, each holding the socket's worth). This hands it
/// one chunk per poll and wakes the task at once for the next, so an upload
/// buffers about a chunk and TCP holds the rest back at the client.
struct OneChunkAtATime<S> {
    inner: S,
    yielded: bool,
}

impl<S: Stream + Unpin> Stream for OneChunkAtATime<S> {
    type Item = S::Item;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<S::Item>> {
        if self.yielded {
            self.yielded = false;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        let next = Pin::new(&mut self.inner).poll_next(cx);
        self.yielded = matches!(next, Poll::Ready(Some(_)));
        next
    }
}

/// What an upload's headers say before its body is read: the multipart
/// boundary, the declared length, and the `data-form` limit it must fit.
pub struct UploadHeaders {
    boundary: Option<String>,
    length: Option<u64>,
    limit: rocket::data::ByteUnit,
}

#[rocket::async_trait]
impl<'r> FromRequest<'r> for UploadHeaders {
    type Error = ();
    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, ()> {
        let boundary = req
            .content_type()
            .filter(|ct| ct.is_form_data())
            .and_then(|ct| ct.params().find(|(k, _)| *k == "boundary").map(|(_, v)| v.to_string()));
        Outcome::Success(UploadHeaders {
            boundary,
            length: req.headers().get_one("Content-Length").and_then(|v| v.parse().ok()),
            limit: req.limits().get("data-form").unwrap_or(Limits::DATA_FORM),
        })
    }
}

/// An upload as it arrives: the short text fields sent before the file
/// part, then the file part, read straight from the request body as the
/// pipeline asks for it — no temporary file, never whole in memory.
pub struct StreamedUpload<'r> {
    fields: Vec<(String, String)>,
    file: multer::Field<'r>,
}

impl<'r> StreamedUpload<'r> {
    /// Read the multipart body up to the part named `file_field`. The
    /// body is capped at Rocket's `data-form` limit (the evidence size
    /// limit and 64 KiB); a body declared larger is refused at once.
    pub async fn open(headers: &UploadHeaders, data: Data<'r>, file_field: &str) -> AppResult<StreamedUpload<'r>> {
        let limit = headers.limit;
        if headers.length.is_some_and(|n| n > limit.as_u64()) {
            return Err(AppError::TooLarge);
        }
        let boundary = headers.boundary.clone().ok_or(AppError::Malformed)?;
        let body = OneChunkAtATime { inner: ReaderStream::with_capacity(data.open(limit), READ_CHUNK), yielded: false };
        let mut multipart = multer::Multipart::new(body, boundary);
        let mut fields = Vec::new();
        while let Some(mut field) = multipart.next_field().await.map_err(|_| AppError::Malformed)? {
            let name = field.name().unwrap_or_default().to_string();
            if name == file_field {
                return Ok(StreamedUpload { fields, file: field });
            }
            if fields.len() == TEXT_FIELDS_MAX {
                return Err(AppError::Malformed);
            }
            let mut text = Vec::new();
            while let Some(chunk) = field.chunk().await.map_err(|_| AppError::Malformed)? {
                text.extend_from_slice(&chunk);
                if text.len() > TEXT_FIELD_LIMIT {
                    return Err(AppError::Malformed);
                }
            }
            fields.push((name, String::from_utf8(text).map_err(|_| AppError::Malformed)?));
        }
        // No file part at all: say so beside the field.
        let mut errors = FieldErrors::new();
        errors.add("file", ErrorCode::Required);
        Err(errors.into())
    }

    /// A text field sent before the file.
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

/// Parse the kind (sent before the file) and stream the file into the
/// evidence pipeline. `kind_field` is `kind` in the API, `upload.kind` on the page.
pub async fn upload_streamed(
    state: &AppState,
    user: &CurrentUser,
    claim_id: uuid::Uuid,
    upload: StreamedUpload<'_>,
    kind_field: &str,
    key: Option<String>,
) -> AppResult<(EvidenceView, bool)> {
    let mut errors = FieldErrors::new();
    let kind = errors.check("kind", EvidenceKind::parse(upload.field(kind_field).unwrap_or_default()));
    let kind = errors.into_result(kind)?.ok_or(AppError::Malformed)?;
    let file = upload.file.map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e));
    let mut reader = Box::pin(StreamReader::new(file));
    service::upload(state, user, claim_id, kind, None, &mut reader, key).await
}

#[rocket::post("/claims/<id>/evidence", data = "<data>")]
pub async fn upload(
    user: ClaimantUser,
    state: &State<AppState>,
    id: &str,
    key: IdempotencyKey,
    headers: UploadHeaders,
    data: Data<'_>,
) -> AppResult<(Status, Json<EvidenceView>)> {
    let claim_id = parse_id(id)?;
    let upload = StreamedUpload::open(&headers, data, "file").await?;
    let (view, created) = upload_streamed(state, &user, claim_id, upload, "kind", key.0).await?;
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
pub async fn delete(user: ClaimantUser, state: &State<AppState>, id: &str) -> AppResult<Status> {
    service::delete(state, &user, parse_id(id)?).await?;
    Ok(Status::NoContent)
}

pub fn routes() -> Vec<rocket::Route> {
    rocket::routes![upload, list, content, delete]
}
