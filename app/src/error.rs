//! One error type for every handler. 4xx carry text safe to show, in the
//! user's language; 5xx log the whole chain and show a generic message.
//! API paths (`/api/…`) answer JSON `{"error": {code, message, fields}}`;
//! pages answer an HTML error page.
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::io::Cursor;

use rocket::http::{ContentType, Header, Status};
use rocket::request::Request;
use rocket::response::{self, Responder, Response};
use rocket_dyn_templates::{context, Template};
use sea_orm::{DbErr, SqlErr};
use serde_json::json;

use crate::domain::{ErrorCode, FieldErrors};
use crate::i18n::Lang;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("not found")]
    NotFound,
    #[error("authentication required")]
    Unauthenticated,
    #[error("forbidden")]
    Forbidden,
    /// Staff must pass the TOTP second factor in this session first (S5).
    #[error("second factor required")]
    SecondFactorRequired,
    /// The account's password was generated: a new one first.
    #[error("password change required")]
    PasswordChangeRequired,
    /// Re-enter the password first (S5: before an export download).
    #[error("reauthentication required")]
    ReauthenticationRequired,
    #[error("login failed")]
    LoginFailed,
    #[error("wrong state: {0}")]
    WrongState(&'static str),
    #[error("conflict: {0}")]
    Conflict(&'static str),
    #[error("invalid fields")]
    Invalid(FieldErrors),
    #[error("claim incomplete")]
    Incomplete(Vec<String>),
    #[error("too many requests")]
    TooManyRequests,
    #[error("request body too large")]
    TooLarge,
    #[error("unsupported media type")]
    UnsupportedType,
    #[error("malformed request")]
    Malformed,
    #[error("csrf check failed")]
    Csrf,
    #[error("a dependency is unavailable: {0}")]
    Unavailable(String),
    /// Something failed inside: `context` says what was being done; the
    /// cause, when there is one, stays attached so that the 5xx log line
    /// shows the whole chain.
    #[error("internal error: {context}")]
    Internal {
        context: Cow<'static, str>,
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
}

pub type AppResult<T> = Result<T, AppError>;

impl From<DbErr> for AppError {
    fn from(err: DbErr) -> Self {
        if let Some(SqlErr::UniqueConstraintViolation(_)) = err.sql_err() {
            return AppError::Conflict("conflict");
        }
        match err {
            DbErr::ConnectionAcquire(_) | DbErr::Conn(_) => AppError::Unavailable(err.to_string()),
            other => AppError::caused_by("database", other),
        }
    }
}

impl From<FieldErrors> for AppError {
    fn from(errors: FieldErrors) -> Self {
        AppError::Invalid(errors)
    }
}

impl From<crate::crypto::CryptoError> for AppError {
    fn from(err: crate::crypto::CryptoError) -> Self {
        AppError::caused_by("crypto", err)
    }
}

impl AppError {
    /// An internal failure with no error behind it (a stored value that no
    /// longer parses, a broken invariant).
    pub fn internal(context: impl Into<Cow<'static, str>>) -> Self {
        AppError::Internal { context: context.into(), source: None }
    }

    /// An internal failure caused by `source`, which the 5xx log shows.
    pub fn caused_by(context: &'static str, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        AppError::Internal { context: Cow::Borrowed(context), source: Some(Box::new(source)) }
    }

    /// This error and every cause under it, as one line.
    pub fn chain(&self) -> String {
        let mut line = self.to_string();
        let mut cause = std::error::Error::source(self);
        while let Some(c) = cause {
            line.push_str(": ");
            line.push_str(&c.to_string());
            cause = c.source();
        }
        line
    }

    pub fn status(&self) -> Status {
        match self {
            AppError::NotFound => Status::NotFound,
            AppError::Unauthenticated | AppError::LoginFailed => Status::Unauthorized,
            AppError::Forbidden
            | AppError::Csrf
            | AppError::SecondFactorRequired
            | AppError::PasswordChangeRequired
            | AppError::ReauthenticationRequired => Status::Forbidden,
            AppError::WrongState(_) | AppError::Conflict(_) => Status::Conflict,
            AppError::Invalid(_) | AppError::Incomplete(_) => Status::UnprocessableEntity,
            AppError::TooManyRequests => Status::TooManyRequests,
            AppError::TooLarge => Status::PayloadTooLarge,
            AppError::UnsupportedType => Status::UnsupportedMediaType,
            AppError::Malformed => Status::BadRequest,
            AppError::Unavailable(_) => Status::ServiceUnavailable,
            AppError::Internal { .. } => Status::InternalServerError,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            AppError::NotFound => "not_found",
            AppError::Unauthenticated => "unauthenticated",
            AppError::Forbidden => "forbidden",
            AppError::SecondFactorRequired => "second_factor_required",
            AppError::PasswordChangeRequired => "password_change_required",
            AppError::ReauthenticationRequired => "reauthentication_required",
            AppError::LoginFailed => "login_failed",
            AppError::WrongState(code) | AppError::Conflict(code) => code,
            AppError::Invalid(_) => "invalid",
            AppError::Incomplete(_) => "incomplete",
            AppError::TooManyRequests => "too_many_requests",
            AppError::TooLarge => "too_large",
            AppError::UnsupportedType => "unsupported_type",
            AppError::Malformed => "malformed",
            AppError::Csrf => "csrf",
            AppError::Unavailable(_) => "unavailable",
            AppError::Internal { .. } => "internal",
        }
    }

    /// The message a person reads, in their language.
    pub fn message(&self, lang: Lang) -> String {
        let key = match self {
            AppError::WrongState(code) | AppError::Conflict(code) => {
                format!("error-{}", code.replace('_', "-"))
            }
            other => format!("error-{}", other.code().replace('_', "-")),
        };
        lang.t(&key)
    }

    /// Field path → translated message.
    pub fn field_messages(&self, lang: Lang) -> BTreeMap<String, String> {
        match self {
            AppError::Invalid(errors) => translate_fields(errors, lang),
            AppError::Incomplete(missing) => {
                missing.iter().map(|f| (f.clone(), lang.t(&missing_message(f).message_key()))).collect()
            }
            _ => BTreeMap::new(),
        }
    }
}

/// The page where staff give their second factor; a page request refused
/// for the lack of it is sent there.
pub const SECOND_FACTOR_PAGE: &str = "/staff/second-factor";
/// The page where a password is changed; a page request refused because
/// the password must change first is sent there.
pub const PASSWORD_PAGE: &str = "/account/password";
/// The missing item a claim lists while its account's address is unproven.
pub const EMAIL_CONFIRMATION: &str = "email_confirmation";

/// What a missing item needs: a value, or a signature.
pub fn missing_message(field: &str) -> ErrorCode {
    if field.starts_with("consent.") {
        ErrorCode::ConsentRequired
    } else if field == EMAIL_CONFIRMATION {
        ErrorCode::AddressUnconfirmed
    } else {
        ErrorCode::Required
    }
}

pub fn translate_fields(errors: &FieldErrors, lang: Lang) -> BTreeMap<String, String> {
    errors.0.iter().map(|(f, c)| (f.clone(), lang.t(&c.message_key()))).collect()
}

pub fn is_api(req: &Request<'_>) -> bool {
    req.uri().path().as_str().starts_with("/api/")
}

impl<'r> Responder<'r, 'static> for AppError {
    fn respond_to(self, req: &'r Request<'_>) -> response::Result<'static> {
        let status = self.status();
        if status.code >= 500 {
            tracing::error!(error = %self.chain(), path = %req.uri().path(), "request failed");
        } else {
            tracing::info!(code = self.code(), status = status.code, path = %req.uri().path(), "request refused");
        }
        if matches!(self, AppError::SecondFactorRequired) && !is_api(req) {
            // A page asks for the code and comes back.
            return rocket::response::Redirect::to(SECOND_FACTOR_PAGE).respond_to(req);
        }
        if matches!(self, AppError::PasswordChangeRequired) && !is_api(req) {
            return rocket::response::Redirect::to(PASSWORD_PAGE).respond_to(req);
        }
        let lang = Lang::of_request(req);
        let message = self.message(lang);
        let mut builder = if is_api(req) {
            let body = json!({"error": {
                "code": self.code(),
                "message": message,
                "fields": self.field_messages(lang),
            }})
            .to_string();
            let mut r = Response::build();
            r.header(ContentType::JSON).sized_body(body.len(), Cursor::new(body));
            r
        } else {
            let page =
                Template::render("error/error", context! { lang: lang.code(), status: status.code, message: message });
            Response::build_from(page.respond_to(req)?)
        };
        if matches!(self, AppError::Unavailable(_)) {
            builder.header(Header::new("Retry-After", "30"));
        }
        builder.status(status).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_internal_error_keeps_its_cause_for_the_log_and_shows_none_of_it() {
        let cause = std::io::Error::other("disk full");
        let e = AppError::caused_by("evidence upload", cause);
        assert_eq!(e.chain(), "internal error: evidence upload: disk full");
        assert_eq!(e.status(), Status::InternalServerError);
        assert!(!e.message(Lang::En).contains("disk full"), "{}", e.message(Lang::En));
        assert_eq!(AppError::internal("unknown role").chain(), "internal error: unknown role");
    }
}
