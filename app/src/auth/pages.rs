//! Sign-in, registration and sign-out pages.
use std::collections::BTreeMap;

use crate::body::FormBody;
use rocket::http::{Cookie, CookieJar, SameSite, Status};
use rocket::response::Redirect;
use rocket::State;
use rocket_dyn_templates::Template;
use serde::Serialize;

use super::service;
use super::{ClientIp, Csrf, CurrentUser, MaybeUser, Role, SESSION_COOKIE};
use crate::audit::Actor;
use crate::error::{translate_fields, AppError, AppResult};
use crate::i18n::Lang;
use crate::web::{Chrome, PageResponse};
use crate::AppState;

#[derive(rocket::FromForm)]
pub struct CredentialsForm {
    csrf: String,
    email: String,
    password: String,
}

#[derive(Serialize)]
struct AuthPage {
    #[serde(flatten)]
    chrome: Chrome,
    email: String,
    errors: BTreeMap<String, String>,
    message: Option<String>,
}

fn render(name: &'static str, page: AuthPage) -> Template {
    Template::render(name, page)
}

fn set_session_cookie(cookies: &CookieJar<'_>, state: &AppState, session: &service::IssuedSession) {
    let max_age = rocket::time::Duration::hours(state.settings.session_hours);
    cookies.add(
        Cookie::build((SESSION_COOKIE, session.token.clone()))
            .http_only(true)
            .same_site(SameSite::Lax)
            .secure(state.settings.cookie_secure)
            .path("/")
            .max_age(max_age),
    );
}

#[rocket::get("/login")]
pub fn login_page(lang: Lang, csrf: Csrf, user: MaybeUser) -> PageResponse {
    if user.0.is_some() {
        return PageResponse::redirect("/");
    }
    PageResponse::page(render(
        "auth/login",
        AuthPage {
            chrome: Chrome::new(lang, &csrf, None, "/login"),
            email: String::new(),
            errors: BTreeMap::new(),
            message: None,
        },
    ))
}

#[rocket::post("/login", data = "<form>")]
pub async fn login_submit(
    form: FormBody<CredentialsForm>,
    lang: Lang,
    csrf: Csrf,
    ip: ClientIp,
    cookies: &CookieJar<'_>,
    state: &State<AppState>,
) -> AppResult<PageResponse> {
    csrf.verify(&form.csrf)?;
    match service::login(state, ip.0, &form.email, &form.password).await {
        Ok(session) => {
            set_session_cookie(cookies, state, &session);
            Ok(PageResponse::redirect("/"))
        }
        Err(e @ (AppError::LoginFailed | AppError::TooManyRequests)) => Ok(PageResponse::from((
            e.status(),
            render(
                "auth/login",
                AuthPage {
                    chrome: Chrome::new(lang, &csrf, None, "/login"),
                    email: form.email.clone(),
                    errors: BTreeMap::new(),
                    message: Some(e.message(lang)),
                },
            ),
        ))),
        Err(e) => Err(e),
    }
}

#[rocket::get("/register")]
pub fn register_page(lang: Lang, csrf: Csrf) -> Template {
    render(
        "auth/register",
        AuthPage {
            chrome: Chrome::new(lang, &csrf, None, "/register"),
            email: String::new(),
            errors: BTreeMap::new(),
            message: None,
        },
    )
}

#[rocket::post("/register", data = "<form>")]
pub async fn register_submit(
    form: FormBody<CredentialsForm>,
    lang: Lang,
    csrf: Csrf,
    ip: ClientIp,
    cookies: &CookieJar<'_>,
    state: &State<AppState>,
) -> AppResult<PageResponse> {
    csrf.verify(&form.csrf)?;
    let again = |errors: BTreeMap<String, String>| {
        PageResponse::from((
            Status::UnprocessableEntity,
            render(
                "auth/register",
                AuthPage {
                    chrome: Chrome::new(lang, &csrf, None, "/register"),
                    email: form.email.clone(),
                    errors,
                    message: None,
                },
            ),
        ))
    };
    let (email, password) = match service::parse_credentials(&form.email, &form.password) {
        Ok(v) => v,
        Err(errors) => return Ok(again(translate_fields(&errors, lang))),
    };
    let actor = Actor { ip: ip.0.map(|i| i.to_string()), ..Default::default() };
    match service::create_account(state, &actor, &email, &password, Role::Claimant, lang).await {
        Ok(_) => {}
        Err(AppError::Invalid(errors)) => return Ok(again(translate_fields(&errors, lang))),
        Err(e) => return Err(e),
    }
    let session = service::login(state, ip.0, &form.email, &form.password).await?;
    set_session_cookie(cookies, state, &session);
    Ok(PageResponse::redirect("/"))
}

#[derive(rocket::FromForm)]
pub struct CsrfForm {
    csrf: String,
}

#[rocket::post("/logout", data = "<form>")]
pub async fn logout(
    form: FormBody<CsrfForm>,
    csrf: Csrf,
    user: CurrentUser,
    cookies: &CookieJar<'_>,
    state: &State<AppState>,
) -> AppResult<Redirect> {
    csrf.verify(&form.csrf)?;
    service::logout(state, &user.actor(), user.session_id).await?;
    cookies.remove(Cookie::build(SESSION_COOKIE).path("/"));
    Ok(Redirect::to("/login"))
}

pub fn routes() -> Vec<rocket::Route> {
    rocket::routes![login_page, login_submit, register_page, register_submit, logout]
}
