//! Sign-in, registration and sign-out pages.
use crate::body::NoFields;
use std::collections::BTreeMap;

use rocket::http::{Cookie, CookieJar, SameSite, Status};
use rocket::response::Redirect;
use rocket::State;
use rocket_dyn_templates::Template;
use serde::Serialize;

use super::service;
use super::{cookie_name, ClientIp, Csrf, CurrentUser, MaybeUser, SESSION_COOKIE};
use crate::error::{translate_fields, AppError, AppResult, PASSWORD_PAGE, SECOND_FACTOR_PAGE};
use crate::i18n::Lang;
use crate::web::{Chrome, Page, PageForm, PageResponse};
use crate::AppState;

#[derive(rocket::FromForm)]
pub struct CredentialsForm {
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
    form: PageForm<CredentialsForm>,
    lang: Lang,
    csrf: Csrf,
    ip: ClientIp,
    cookies: &CookieJar<'_>,
    state: &State<AppState>,
) -> AppResult<PageResponse> {
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
    form: PageForm<CredentialsForm>,
    lang: Lang,
    csrf: Csrf,
    ip: ClientIp,
    state: &State<AppState>,
) -> AppResult<PageResponse> {
    let page = |template, email, errors, message| {
        let chrome = Chrome::new(lang, &csrf, None, "/register");
        render(template, AuthPage { chrome, email, errors, message })
    };
    let (email, password) = match service::parse_credentials(&form.email, &form.password) {
        Ok(v) => v,
        Err(errors) => {
            let shown = page("auth/register", form.email.clone(), translate_fields(&errors, lang), None);
            return Ok(PageResponse::refused(Status::UnprocessableEntity, shown));
        }
    };
    match super::registration::register(state, ip.0, &email, &password, lang).await {
        // A new address and a known one read the same page.
        Ok(()) => Ok(PageResponse::page(page("auth/check_mail", email.as_str().to_string(), BTreeMap::new(), None))),
        Err(e @ AppError::TooManyRequests) => {
            let shown = page("auth/register", form.email.clone(), BTreeMap::new(), Some(e.message(lang)));
            Ok(PageResponse::refused(e.status(), shown))
        }
        Err(e) => Err(e),
    }
}

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

fn password_page_for(page: &Page<CurrentUser>, done: bool) -> PasswordPage {
    PasswordPage {
        chrome: page.chrome(PASSWORD_PAGE),
        forced: page.caller.must_change_password,
        done,
        errors: BTreeMap::new(),
        message: None,
    }
}

#[rocket::get("/account/password?<done>")]
pub fn password_page(done: Option<bool>, page: Page<CurrentUser>) -> Template {
    Template::render("auth/password", password_page_for(&page, done.unwrap_or(false)))
}

#[derive(rocket::FromForm)]
pub struct PasswordForm {
    current_password: String,
    new_password: String,
}

/// Change the password; every other session of the account ends.
#[rocket::post("/account/password", data = "<form>")]
pub async fn password_submit(
    form: PageForm<PasswordForm>,
    page: Page<CurrentUser>,
    state: &State<AppState>,
) -> AppResult<PageResponse> {
    match super::lifecycle::change_password(state, &page.caller, &form.current_password, &form.new_password).await {
        // Staff go on to the second factor; everyone else sees it done.
        Ok(()) if page.caller.role != super::Role::Claimant && !page.caller.mfa => {
            Ok(PageResponse::redirect(SECOND_FACTOR_PAGE))
        }
        Ok(()) => Ok(PageResponse::redirect(format!("{PASSWORD_PAGE}?done=true"))),
        Err(e @ (AppError::Invalid(_) | AppError::TooManyRequests)) => {
            let mut view = password_page_for(&page, false);
            view.errors = e.field_messages(page.lang);
            if matches!(e, AppError::TooManyRequests) {
                view.message = Some(e.message(page.lang));
            }
            Ok(PageResponse::refused(e.status(), Template::render("auth/password", view)))
        }
        Err(e) => Err(e),
    }
}

/// The link from the confirmation mail.
#[rocket::get("/confirm?<token>")]
pub async fn confirm_page(
    token: Option<&str>,
    page: Page<MaybeUser>,
    state: &State<AppState>,
) -> AppResult<PageResponse> {
    let outcome = super::registration::confirm(state, token.unwrap_or_default()).await;
    let (status, message) = match outcome {
        Ok(()) => (Status::Ok, page.lang.t("confirm-done")),
        Err(e @ AppError::WrongState(_)) => (Status::UnprocessableEntity, e.message(page.lang)),
        Err(e) => return Err(e),
    };
    let page = render(
        "auth/confirmed",
        AuthPage {
            chrome: page.chrome("/confirm"),
            email: String::new(),
            errors: BTreeMap::new(),
            message: Some(message),
        },
    );
    Ok(PageResponse::from((status, page)))
}

/// Send the confirmation link again (from "my data" or the review step).
#[rocket::post("/me/confirmation", data = "<_token>")]
pub async fn resend_confirmation(
    _token: PageForm<NoFields>,
    user: CurrentUser,
    state: &State<AppState>,
) -> AppResult<Redirect> {
    super::registration::resend(state, &user).await?;
    Ok(Redirect::to("/me?sent=confirmation"))
}

#[rocket::post("/logout", data = "<_token>")]
pub async fn logout(
    _token: PageForm<NoFields>,
    user: CurrentUser,
    cookies: &CookieJar<'_>,
    state: &State<AppState>,
) -> AppResult<Redirect> {
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
