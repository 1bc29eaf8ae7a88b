//! "My data": who accessed it, download everything, erase.
use std::collections::BTreeMap;

use rocket::http::{Cookie, CookieJar, Status};
use rocket::State;
use rocket_dyn_templates::Template;
use serde::Serialize;

use super::api::{zip_download, ZipDownload};
use super::service::{self, AccessEntry};
use crate::auth::{cookie_name, ClaimantUser, CurrentUser, SESSION_COOKIE};
use crate::error::{AppError, AppResult};
use crate::web::SignedIn;
use crate::web::{Chrome, Page, PageForm, PageResponse};
use crate::AppState;

#[derive(Serialize)]
struct AccessLine {
    #[serde(flatten)]
    entry: AccessEntry,
    at_jst: String,
    /// What happened, in words (the action code when no words exist yet).
    action_label: String,
}

#[derive(Serialize)]
struct MyDataPage {
    #[serde(flatten)]
    chrome: Chrome,
    access_log: Vec<AccessLine>,
    preferences: service::Preferences,
    /// What was just done: `saved` (preferences) or `confirmation_sent`.
    notice: Option<&'static str>,
    /// Whether the claimant opened the link sent to their address.
    email_confirmed: bool,
    errors: BTreeMap<String, String>,
}

async fn render(
    state: &AppState,
    page: &Page<impl SignedIn>,
    errors: BTreeMap<String, String>,
    notice: Option<&'static str>,
) -> AppResult<Template> {
    let (lang, user) = (page.lang, page.caller.user());
    let preferences = service::preferences(state, user).await?;
    let access_log = service::access_log(state, user)
        .await?
        .into_iter()
        .map(|entry| {
            let key = format!("action-{}", entry.action.replace(['.', '_'], "-"));
            // Never an internal code where a person reads.
            let action_label = lang.try_t(&key).unwrap_or_else(|| lang.t("action-other"));
            AccessLine { at_jst: crate::web::format_jst(entry.at), action_label, entry }
        })
        .collect();
    Ok(Template::render(
        "me/index",
        MyDataPage {
            chrome: page.chrome("/me"),
            access_log,
            preferences,
            notice,
            email_confirmed: crate::auth::registration::confirmed(state, user.id).await?,
            errors,
        },
    ))
}

#[rocket::get("/me?<sent>")]
pub async fn my_data(sent: Option<&str>, page: Page<ClaimantUser>, state: &State<AppState>) -> AppResult<Template> {
    let notice = (sent == Some("confirmation")).then_some("confirmation_sent");
    render(state, &page, BTreeMap::new(), notice).await
}

#[derive(rocket::FromForm)]
pub struct PreferencesForm {
    language: String,
    reminders: bool,
}

#[rocket::post("/me/preferences", data = "<form>")]
pub async fn preferences(
    form: PageForm<PreferencesForm>,
    page: Page<CurrentUser>,
    state: &State<AppState>,
) -> AppResult<PageResponse> {
    let wanted = service::Preferences { language: form.language.clone(), reminders: form.reminders };
    match service::set_preferences(state, &page.caller, &wanted).await {
        Ok(_) => Ok(PageResponse::page(render(state, &page, BTreeMap::new(), Some("saved")).await?)),
        Err(e @ AppError::Invalid(_)) => {
            let page = render(state, &page, e.field_messages(page.lang), None).await?;
            Ok(PageResponse::refused(Status::UnprocessableEntity, page))
        }
        Err(e) => Err(e),
    }
}

#[rocket::get("/me/export.zip")]
pub async fn export_zip(user: ClaimantUser, state: &State<AppState>) -> AppResult<ZipDownload> {
    zip_download(state, &user).await
}

#[derive(rocket::FromForm)]
pub struct EraseForm {
    password: String,
    confirm: bool,
}

#[derive(Serialize)]
struct ErasedPage {
    #[serde(flatten)]
    chrome: Chrome,
}

#[rocket::post("/me/erase", data = "<form>")]
pub async fn erase(
    form: PageForm<EraseForm>,
    page: Page<ClaimantUser>,
    cookies: &CookieJar<'_>,
    state: &State<AppState>,
) -> AppResult<PageResponse> {
    if !form.confirm {
        let mut errors = BTreeMap::new();
        errors.insert("confirm".to_string(), page.lang.t(&crate::domain::ErrorCode::ConsentRequired.message_key()));
        let page = render(state, &page, errors, None).await?;
        return Ok(PageResponse::refused(Status::UnprocessableEntity, page));
    }
    match service::erase(state, &page.caller, &form.password).await {
        Ok(_) => {
            cookies.remove(Cookie::build(cookie_name(SESSION_COOKIE, state.settings.cookie_secure)).path("/"));
            let page =
                Template::render("me/erased", ErasedPage { chrome: Chrome::new(page.lang, &page.csrf, None, "/") });
            Ok(PageResponse::page(page))
        }
        Err(e @ AppError::Invalid(_)) => {
            let page = render(state, &page, e.field_messages(page.lang), None).await?;
            Ok(PageResponse::refused(Status::UnprocessableEntity, page))
        }
        Err(e) => Err(e),
    }
}

pub fn routes() -> Vec<rocket::Route> {
    rocket::routes![my_data, preferences, export_zip, erase]
}
