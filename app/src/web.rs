//! Cross-cutting web pieces: security headers, the page chrome every
//! template receives, the pages' guards (`Page<U>`: language, form token
//! and caller; `PageForm<T>`: a form whose token was checked), the
//! capabilities' route stages, the language switch, health, and error
//! catchers.
use std::ops::Deref;

use crate::body::{FormBody, FormFault, WithToken, TOKEN_FIELD};
use rocket::data::{self, Data, FromData};
use rocket::fairing::{Fairing, Info, Kind};
use rocket::form::FromForm;
use rocket::http::{ContentType, Cookie, Header, SameSite, Status};
use rocket::request::Request;
use rocket::request::{FromRequest, Outcome};
use rocket::response::Redirect;
use rocket::serde::json::Json;
use rocket::{Catcher, Response, State};
use serde::Serialize;

use crate::auth::{Csrf, CurrentUser, GuardRefusal, MaybeUser};
use crate::error::{AppError, AppResult};
use crate::i18n::{Lang, LANG_COOKIE};
use crate::AppState;

/// The Content-Security-Policy of every response (S14, S27): exactly what the
/// pages use: their own stylesheet, scripts and images, and their own
/// address for the upload script's requests (`connect-src`).
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; style-src 'self'; img-src 'self'; script-src 'self'; \
     connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Headers on every response: a strict CSP (S14), no caching of pages that
/// may hold personal data, no referrer beyond this site. `same-origin`
/// rather than `no-referrer`: under `no-referrer` browsers send
/// `Origin: null` on every form POST, which the same-origin check must
/// then refuse; URLs hold no personal data (S12), so our own pages may see
/// each other's address.
pub struct SecurityHeaders;

#[rocket::async_trait]
impl Fairing for SecurityHeaders {
    fn info(&self) -> Info {
        Info { name: "Security headers", kind: Kind::Response }
    }

    async fn on_response<'r>(&self, req: &'r Request<'_>, res: &mut Response<'r>) {
        res.set_header(Header::new("Content-Security-Policy", CONTENT_SECURITY_POLICY));
        res.set_header(Header::new("X-Content-Type-Options", "nosniff"));
        res.set_header(Header::new("Referrer-Policy", "same-origin"));
        res.set_header(Header::new("X-Frame-Options", "DENY"));
        // Behind TLS (secure cookies), browsers are told to come back only over TLS.
        if req.rocket().state::<crate::AppState>().is_some_and(|s| s.settings.cookie_secure) {
            res.set_header(Header::new("Strict-Transport-Security", "max-age=63072000; includeSubDomains"));
        }
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

/// A page's form whose hidden token matched the caller's form token: the
/// handler receives the parsed fields or never runs. A missing or wrong
/// token is refused with 403 `csrf` (S15: every state-changing page form
/// carries it), after the route's request guards (a caller of the wrong
/// role still gets 404 before the body is read).
#[derive(Debug)]
pub struct PageForm<T>(pub T);

impl<T> Deref for PageForm<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

#[rocket::async_trait]
impl<'r, T: FromForm<'r>> FromData<'r> for PageForm<T> {
    type Error = FormFault;

    async fn from_data(req: &'r Request<'_>, data: Data<'r>) -> data::Outcome<'r, Self> {
        let form = match FormBody::<WithToken<T>>::from_data(req, data).await {
            data::Outcome::Success(form) => form.0,
            data::Outcome::Forward(forward) => return data::Outcome::Forward(forward),
            data::Outcome::Error(refused) => return data::Outcome::Error(refused),
        };
        let matched = match req.guard::<Csrf>().await {
            Outcome::Success(csrf) => csrf.verify(form.token.as_deref().unwrap_or_default()).is_ok(),
            _ => false,
        };
        if !matched {
            req.local_cache(|| GuardRefusal { csrf: true, ..Default::default() });
            return data::Outcome::Error((Status::Forbidden, FormFault(vec![TOKEN_FIELD.to_string()])));
        }
        data::Outcome::Success(PageForm(form.fields))
    }
}

/// The account behind a page's caller guard, for the page's frame.
pub trait Caller {
    fn account(&self) -> Option<&CurrentUser>;
}

/// A page caller who is signed in: `CurrentUser`, or a role guard, which
/// reads as the `CurrentUser` it admitted.
pub trait SignedIn: Send + Sync {
    fn user(&self) -> &CurrentUser;
}

impl SignedIn for CurrentUser {
    fn user(&self) -> &CurrentUser {
        self
    }
}

impl<G: Deref<Target = CurrentUser> + Send + Sync> SignedIn for G {
    fn user(&self) -> &CurrentUser {
        self
    }
}

impl<U: SignedIn> Caller for U {
    fn account(&self) -> Option<&CurrentUser> {
        Some(self.user())
    }
}

impl Caller for MaybeUser {
    fn account(&self) -> Option<&CurrentUser> {
        self.0.as_ref()
    }
}

/// What every page handler needs: the reader's language, the form token
/// the page's forms carry, and the caller as the guard `U` admits them
/// (`U`'s refusal is the page's: 401 to the login page, 404 for a role the
/// route is not for, the second factor for staff).
pub struct Page<U> {
    pub lang: Lang,
    pub csrf: Csrf,
    pub caller: U,
}

impl<U: Caller> Page<U> {
    /// The frame of a page at `here` (the path a language switch returns to).
    pub fn chrome(&self, here: impl Into<String>) -> Chrome {
        Chrome::new(self.lang, &self.csrf, self.caller.account(), here)
    }
}

#[rocket::async_trait]
impl<'r, U: FromRequest<'r>> FromRequest<'r> for Page<U> {
    type Error = U::Error;

    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, Self::Error> {
        let csrf = match req.guard::<Csrf>().await {
            Outcome::Success(csrf) => csrf,
            _ => return Outcome::Forward(Status::InternalServerError),
        };
        let caller = match U::from_request(req).await {
            Outcome::Success(caller) => caller,
            Outcome::Error(refused) => return Outcome::Error(refused),
            Outcome::Forward(status) => return Outcome::Forward(status),
        };
        Outcome::Success(Page { lang: Lang::of_request(req), csrf, caller })
    }
}

#[derive(rocket::FromForm)]
pub struct LangForm {
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

/// Tera filters `postal_code` and `phone`: a stored value as people write
/// it (`PostalCode::display`, `Phone::display`); anything else as it is.
pub fn text_filter(
    format: fn(&str) -> Option<String>,
) -> impl Fn(
    &rocket_dyn_templates::tera::Value,
    &std::collections::HashMap<String, rocket_dyn_templates::tera::Value>,
) -> rocket_dyn_templates::tera::Result<rocket_dyn_templates::tera::Value>
       + Sync
       + Send {
    move |value, _| {
        Ok(value
            .as_str()
            .and_then(format)
            .map(rocket_dyn_templates::tera::Value::String)
            .unwrap_or_else(|| value.clone()))
    }
}

/// Tera filter `approx_date(lang=…)`: a stored month (`2014-07`) as people
/// say it (「2014年7月ごろ」, "around July 2014"); a day is shown as it is.
pub fn approx_date_filter(
    value: &rocket_dyn_templates::tera::Value,
    args: &std::collections::HashMap<String, rocket_dyn_templates::tera::Value>,
) -> rocket_dyn_templates::tera::Result<rocket_dyn_templates::tera::Value> {
    let lang = args.get("lang").and_then(|l| l.as_str()).and_then(Lang::from_code).unwrap_or(Lang::Ja);
    let shown = serde_json::from_value::<crate::domain::PastDate>(value.clone()).ok().map(|d| d.display(lang));
    Ok(shown.map(rocket_dyn_templates::tera::Value::String).unwrap_or_else(|| value.clone()))
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
    form: PageForm<LangForm>,
    cookies: &rocket::http::CookieJar<'_>,
    state: &State<AppState>,
) -> AppResult<Redirect> {
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

/// Progressive enhancement for a running bundle export: a progress bar
/// that moves without reloading the page.
#[rocket::get("/static/progress.js")]
fn progress_script() -> (ContentType, &'static str) {
    (ContentType::JavaScript, include_str!("../../templates/static/progress.js"))
}

/// The site icon; browsers that ignore the page's `<link rel="icon">` ask
/// for `/favicon.ico`, which answers the same picture.
#[rocket::get("/static/icon.svg")]
fn icon() -> (ContentType, &'static str) {
    (ContentType::SVG, include_str!("../../templates/static/icon.svg"))
}

#[rocket::get("/favicon.ico")]
fn favicon() -> (ContentType, &'static str) {
    icon()
}

pub fn routes() -> Vec<rocket::Route> {
    rocket::routes![switch_language, health, stylesheet, upload_script, progress_script, icon, favicon]
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
        _ => AppError::internal(format!("status {}", status.code)),
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

/// A staff guard that refused for want of the second factor said so on the
/// request: pages go to the second-factor page, the API answers
/// `second_factor_required`.
#[rocket::catch(default)]
fn default_catcher(status: Status, req: &Request<'_>) -> rocket::Either<AppError, (Status, AppError)> {
    let refusal = req.local_cache(crate::auth::GuardRefusal::default);
    if status == Status::Forbidden && refusal.password_change {
        return rocket::Either::Left(AppError::PasswordChangeRequired);
    }
    if status == Status::Forbidden && refusal.csrf {
        return rocket::Either::Left(AppError::Csrf);
    }
    if status == Status::Forbidden && refusal.second_factor {
        return rocket::Either::Left(AppError::SecondFactorRequired);
    }
    rocket::Either::Right((status, error_for(status)))
}

/// A capability's routes, mounted at ignition by a fairing of its own
/// (Rocket's `stage()` pattern): its pages at `/`, its API under `/api/v1`.
pub fn mount(name: &'static str, pages: Vec<rocket::Route>, api: Vec<rocket::Route>) -> rocket::fairing::AdHoc {
    rocket::fairing::AdHoc::on_ignite(name, move |rocket| async move { rocket.mount("/", pages).mount("/api/v1", api) })
}

/// The frame's own routes (language switch, health, static files) and the error catchers.
pub fn stage() -> rocket::fairing::AdHoc {
    rocket::fairing::AdHoc::on_ignite(
        "Web",
        |rocket| async move { rocket.mount("/", routes()).register("/", catchers()) },
    )
}

pub fn catchers() -> Vec<Catcher> {
    rocket::catchers![unauthorized, default_catcher]
}
