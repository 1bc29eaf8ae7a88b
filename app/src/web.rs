//! Cross-cutting web pieces: security headers, the page chrome every
//! template receives, the language switch, health, and error catchers.
use rocket::fairing::{Fairing, Info, Kind};
use rocket::form::Form;
use rocket::http::{ContentType, Cookie, Header, SameSite, Status};
use rocket::request::Request;
use rocket::response::Redirect;
use rocket::serde::json::Json;
use rocket::{Catcher, Response, State};
use serde::Serialize;

use crate::auth::{Csrf, CurrentUser};
use crate::error::{AppError, AppResult};
use crate::i18n::{Lang, LANG_COOKIE};
use crate::AppState;

/// Headers on every response: a strict CSP (S14), no caching of pages that
/// may hold personal data, no referrer leakage.
pub struct SecurityHeaders;

#[rocket::async_trait]
impl Fairing for SecurityHeaders {
    fn info(&self) -> Info {
        Info { name: "Security headers", kind: Kind::Response }
    }

    async fn on_response<'r>(&self, req: &'r Request<'_>, res: &mut Response<'r>) {
        res.set_header(Header::new(
            "Content-Security-Policy",
            "default-src 'none'; style-src 'self'; img-src 'self'; script-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ));
        res.set_header(Header::new("X-Content-Type-Options", "nosniff"));
        res.set_header(Header::new("Referrer-Policy", "no-referrer"));
        res.set_header(Header::new("X-Frame-Options", "DENY"));
        if !req.uri().path().starts_with("/static/") {
            res.set_header(Header::new("Cache-Control", "no-store"));
        }
    }
}

/// What an HTML handler answers: a page, a page refused with a status
/// (field errors), or a redirect after a successful form (Post/Redirect/Get).
#[derive(rocket::Responder)]
pub enum PageResponse {
    Page(Box<rocket_dyn_templates::Template>),
    Refused(Box<(Status, rocket_dyn_templates::Template)>),
    Redirect(Box<Redirect>),
}

impl PageResponse {
    pub fn page(t: rocket_dyn_templates::Template) -> Self {
        Self::Page(Box::new(t))
    }
    pub fn refused(status: Status, t: rocket_dyn_templates::Template) -> Self {
        Self::Refused(Box::new((status, t)))
    }
    pub fn redirect(to: impl Into<String>) -> Self {
        Self::Redirect(Box::new(Redirect::to(to.into())))
    }
}

impl From<(Status, rocket_dyn_templates::Template)> for PageResponse {
    fn from(refused: (Status, rocket_dyn_templates::Template)) -> Self {
        Self::Refused(Box::new(refused))
    }
}

/// What the layout needs on every page.
#[derive(Serialize)]
pub struct Chrome {
    pub lang: &'static str,
    pub csrf: String,
    pub signed_in: bool,
    pub role: Option<&'static str>,
    /// The path to come back to after switching language.
    pub here: String,
}

impl Chrome {
    pub fn new(lang: Lang, csrf: &Csrf, user: Option<&CurrentUser>, here: impl Into<String>) -> Self {
        Self {
            lang: lang.code(),
            csrf: csrf.token().to_string(),
            signed_in: user.is_some(),
            role: user.map(|u| u.role.as_str()),
            here: here.into(),
        }
    }
}

#[derive(rocket::FromForm)]
pub struct LangForm {
    csrf: String,
    lang: String,
    next: String,
}

/// A timestamp as people in Japan read it: `2026-11-21 14:05 (JST)`.
pub fn format_jst(at: chrono::DateTime<chrono::Utc>) -> String {
    match chrono::FixedOffset::east_opt(9 * 3600) {
        Some(jst) => at.with_timezone(&jst).format("%Y-%m-%d %H:%M (JST)").to_string(),
        None => at.format("%Y-%m-%d %H:%M UTC").to_string(),
    }
}

/// An integer amount with thousands separators: `55000` → `55,000`.
pub fn format_yen(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Tera filter `yen` over `format_yen`.
pub fn yen_filter(
    value: &rocket_dyn_templates::tera::Value,
    _: &std::collections::HashMap<String, rocket_dyn_templates::tera::Value>,
) -> rocket_dyn_templates::tera::Result<rocket_dyn_templates::tera::Value> {
    let n = value.as_u64().ok_or_else(|| rocket_dyn_templates::tera::Error::msg("yen: not a non-negative integer"))?;
    Ok(rocket_dyn_templates::tera::Value::String(format_yen(n)))
}

/// Only same-site paths are followed after a form.
pub fn local_path(next: &str) -> String {
    if next.starts_with('/') && !next.starts_with("//") && !next.contains('\\') {
        next.to_string()
    } else {
        "/".to_string()
    }
}

#[rocket::post("/lang", data = "<form>")]
fn switch_language(
    form: Form<LangForm>,
    csrf: Csrf,
    cookies: &rocket::http::CookieJar<'_>,
    state: &State<AppState>,
) -> AppResult<Redirect> {
    csrf.verify(&form.csrf)?;
    let lang = Lang::from_code(&form.lang).unwrap_or(Lang::Ja);
    cookies.add(
        Cookie::build((LANG_COOKIE, lang.code()))
            .same_site(SameSite::Lax)
            .secure(state.settings.cookie_secure)
            .path("/")
            .max_age(rocket::time::Duration::days(365)),
    );
    Ok(Redirect::to(local_path(&form.next)))
}

#[derive(Serialize)]
struct Health {
    status: &'static str,
}

/// Liveness and database reachability: 503 when the database is down.
#[rocket::get("/health")]
async fn health(state: &State<AppState>) -> Result<Json<Health>, AppError> {
    state.db.ping().await.map_err(|e| AppError::Unavailable(e.to_string()))?;
    Ok(Json(Health { status: "ok" }))
}

#[rocket::get("/static/app.css")]
fn stylesheet() -> (ContentType, &'static str) {
    (ContentType::CSS, include_str!("../../templates/static/app.css"))
}

/// Progressive enhancement for the upload form: a progress bar.
#[rocket::get("/static/upload.js")]
fn upload_script() -> (ContentType, &'static str) {
    (ContentType::JavaScript, include_str!("../../templates/static/upload.js"))
}

pub fn routes() -> Vec<rocket::Route> {
    rocket::routes![switch_language, health, stylesheet, upload_script]
}

#[cfg(test)]
mod tests {
    #[test]
    fn yen_amounts_have_thousands_separators() {
        for (n, s) in [(0, "0"), (500, "500"), (1_000, "1,000"), (55_000, "55,000"), (1_234_567, "1,234,567")] {
            assert_eq!(super::format_yen(n), s);
        }
    }
}

fn error_for(status: Status) -> AppError {
    match status.code {
        401 => AppError::Unauthenticated,
        403 => AppError::Forbidden,
        404 => AppError::NotFound,
        413 => AppError::TooLarge,
        415 => AppError::UnsupportedType,
        400 | 422 => AppError::Malformed,
        429 => AppError::TooManyRequests,
        503 => AppError::Unavailable("guard".into()),
        _ => AppError::Internal(format!("status {}", status.code)),
    }
}

/// Pages that need a signed-in user send the browser to the login page.
#[rocket::catch(401)]
fn unauthorized(req: &Request<'_>) -> Result<Redirect, (Status, AppError)> {
    if crate::error::is_api(req) {
        Err((Status::Unauthorized, AppError::Unauthenticated))
    } else {
        Ok(Redirect::to("/login"))
    }
}

#[rocket::catch(default)]
fn default_catcher(status: Status, _req: &Request<'_>) -> (Status, AppError) {
    (status, error_for(status))
}

pub fn catchers() -> Vec<Catcher> {
    rocket::catchers![unauthorized, default_catcher]
}
