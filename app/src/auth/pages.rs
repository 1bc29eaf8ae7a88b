//! Sign-in, registration and sign-out pages.
use std::collections::BTreeMap;

use crate::body::FormBody;
use rocket::http::{Cookie, CookieJar, SameSite, Status};
use rocket::response::Redirect;
use rocket::State;
use rocket_dyn_templates::Template;
use serde::Serialize;

use super::service;
use super::{cookie_name, ClientIp, Csrf, CurrentUser, MaybeUser, SESSION_COOKIE};
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
        Cookie::build((cookie_name(SESSION_COOKIE, state.settings.cookie_secure), session.token.clone()))
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
    match super::registration::register(state, ip.0, &email, &password, lang).await {
        // A new address and a known one read the same page.
        Ok(()) => Ok(PageResponse::page(render(
            "auth/check_mail",
            AuthPage {
                chrome: Chrome::new(lang, &csrf, None, "/register"),
                email: email.as_str().to_string(),
                errors: BTreeMap::new(),
                message: None,
            },
        ))),
        Err(e @ AppError::TooManyRequests) => Ok(PageResponse::refused(
            e.status(),
            render(
                "auth/register",
                AuthPage {
                    chrome: Chrome::new(lang, &csrf, None, "/register"),
                    email: form.email.clone(),
                    errors: BTreeMap::new(),
                    message: Some(e.message(lang)),
                },
            ),
        )),
        Err(e) => Err(e),
    }
}

/// Where an account chooses a new password (and must, when its password was generated).
pub const PASSWORD_PAGE: &str = "/account/password";

#[derive(Serialize)]
struct PasswordPage {
    #[serde(flatten)]
    chrome: Chrome,
    /// The password was generated: it must be changed before anything else.
    forced: bool,
    done: bool,
    errors: BTreeMap<String, String>,
    message: Option<String>,
}

fn password_page_for(lang: Lang, csrf: &Csrf, user: &CurrentUser, done: bool) -> PasswordPage {
    PasswordPage {
        chrome: Chrome::new(lang, csrf, Some(user), PASSWORD_PAGE),
        forced: user.must_change_password,
        done,
        errors: BTreeMap::new(),
        message: None,
    }
}

#[rocket::get("/account/password?<done>")]
pub fn password_page(done: Option<bool>, lang: Lang, csrf: Csrf, user: CurrentUser) -> Template {
    Template::render("auth/password", password_page_for(lang, &csrf, &user, done.unwrap_or(false)))
}

#[derive(rocket::FromForm)]
pub struct PasswordForm {
    csrf: String,
    current_password: String,
    new_password: String,
}

/// Change the password; every other session of the account ends.
#[rocket::post("/account/password", data = "<form>")]
pub async fn password_submit(
    form: FormBody<PasswordForm>,
    lang: Lang,
    csrf: Csrf,
    user: CurrentUser,
    state: &State<AppState>,
) -> AppResult<PageResponse> {
    csrf.verify(&form.csrf)?;
    match super::lifecycle::change_password(state, &user, &form.current_password, &form.new_password).await {
        // Staff go on to the second factor; everyone else sees it done.
        Ok(()) if user.role != super::Role::Claimant && !user.mfa => {
            Ok(PageResponse::redirect(crate::review::pages::SECOND_FACTOR_PAGE))
        }
        Ok(()) => Ok(PageResponse::redirect(format!("{PASSWORD_PAGE}?done=true"))),
        Err(e @ (AppError::Invalid(_) | AppError::TooManyRequests)) => {
            let mut page = password_page_for(lang, &csrf, &user, false);
            page.errors = e.field_messages(lang);
            if matches!(e, AppError::TooManyRequests) {
                page.message = Some(e.message(lang));
            }
            Ok(PageResponse::refused(e.status(), Template::render("auth/password", page)))
        }
        Err(e) => Err(e),
    }
}

/// The link from the confirmation mail.
#[rocket::get("/confirm?<token>")]
pub async fn confirm_page(
    token: Option<&str>,
    lang: Lang,
    csrf: Csrf,
    user: MaybeUser,
    state: &State<AppState>,
) -> AppResult<PageResponse> {
    let outcome = super::registration::confirm(state, token.unwrap_or_default()).await;
    let (status, message) = match outcome {
        Ok(()) => (Status::Ok, lang.t("confirm-done")),
        Err(e @ AppError::WrongState(_)) => (Status::UnprocessableEntity, e.message(lang)),
        Err(e) => return Err(e),
    };
    let page = render(
        "auth/confirmed",
        AuthPage {
            chrome: Chrome::new(lang, &csrf, user.0.as_ref(), "/confirm"),
            email: String::new(),
            errors: BTreeMap::new(),
            message: Some(message),
        },
    );
    Ok(PageResponse::from((status, page)))
}

#[derive(rocket::FromForm)]
pub struct ResendForm {
    csrf: String,
}

/// Send the confirmation link again (from "my data" or the review step).
#[rocket::post("/me/confirmation", data = "<form>")]
pub async fn resend_confirmation(
    form: FormBody<ResendForm>,
    csrf: Csrf,
    user: CurrentUser,
    state: &State<AppState>,
) -> AppResult<Redirect> {
    csrf.verify(&form.csrf)?;
    super::registration::resend(state, &user).await?;
    Ok(Redirect::to("/me?sent=confirmation"))
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
    cookies.remove(Cookie::build(cookie_name(SESSION_COOKIE, state.settings.cookie_secure)).path("/"));
    Ok(Redirect::to("/login"))
}

pub fn routes() -> Vec<rocket::Route> {
    rocket::routes![
        login_page,
        login_submit,
        register_page,
        register_submit,
        confirm_page,
        resend_confirmation,
        password_page,
        password_submit,
        logout
    ]
}
