//! Filing rounds in HTML for administrators: the case's rounds, a round's
//! tier policy, the preview with a chart per tier, freezing, and the filing
//! bundle with its progress and a password-confirmed download.
use crate::body::NoFields;
use std::collections::BTreeMap;

use rocket::http::Status;
use rocket::State;
use rocket_dyn_templates::Template;
use serde::Serialize;

use super::export::{self, ExportView};
use super::service::{self, Preview, RoundInput, RoundView};
use crate::auth::AdminUser;
use crate::error::{AppError, AppResult};
use crate::evidence::api::Attachment;
use crate::web::SignedIn;
use crate::web::{Chrome, Page, PageForm, PageResponse};
use crate::{parse_id, AppState};

#[derive(Serialize)]
struct RoundsPage {
    #[serde(flatten)]
    chrome: Chrome,
    slug: String,
    case_title: String,
    rounds: Vec<RoundView>,
    values: BTreeMap<String, String>,
    errors: BTreeMap<String, String>,
}

async fn render_rounds(
    state: &AppState,
    page: &Page<impl SignedIn>,
    slug: &str,
    values: BTreeMap<String, String>,
    errors: BTreeMap<String, String>,
) -> AppResult<Template> {
    let (lang, user) = (page.lang, page.caller.user());
    let case = state.cases.by_slug(state.db.conn(), slug).await?;
    Ok(Template::render(
        "admin/rounds",
        RoundsPage {
            chrome: page.chrome(format!("/admin/cases/{slug}/rounds")),
            slug: slug.to_string(),
            case_title: case.catalogue.title.get(lang).to_string(),
            rounds: service::list(state, user, slug).await?,
            values,
            errors,
        },
    ))
}

#[rocket::get("/admin/cases/<slug>/rounds")]
pub async fn rounds(slug: &str, page: Page<AdminUser>, state: &State<AppState>) -> AppResult<Template> {
    render_rounds(state, &page, slug, BTreeMap::new(), BTreeMap::new()).await
}

#[derive(rocket::FromForm)]
pub struct RoundForm {
    #[field(default = String::new())]
    name: String,
    #[field(default = String::new())]
    court: String,
    #[field(default = String::new())]
    cut_off: String,
    #[field(default = String::new())]
    filing_date: String,
}

#[rocket::post("/admin/cases/<slug>/rounds", data = "<form>")]
pub async fn create(
    slug: &str,
    form: PageForm<RoundForm>,
    page: Page<AdminUser>,
    state: &State<AppState>,
) -> AppResult<PageResponse> {
    let input = RoundInput {
        name: form.name.clone(),
        court: form.court.clone(),
        cut_off: form.cut_off.clone(),
        filing_date: form.filing_date.clone(),
    };
    match service::create(state, &page.caller, slug, &input).await {
        Ok(round) => Ok(PageResponse::redirect(format!("/admin/rounds/{}", round.id))),
        Err(e @ AppError::Invalid(_)) => {
            let values = BTreeMap::from([
                ("name".to_string(), form.name.clone()),
                ("court".to_string(), form.court.clone()),
                ("cut_off".to_string(), form.cut_off.clone()),
                ("filing_date".to_string(), form.filing_date.clone()),
            ]);
            let page = render_rounds(state, &page, slug, values, e.field_messages(page.lang)).await?;
            Ok(PageResponse::refused(Status::UnprocessableEntity, page))
        }
        Err(e) => Err(e),
    }
}

#[derive(Serialize)]
struct TierBar {
    tier: String,
    amount_yen: u64,
    plaintiffs: u64,
    total_yen: u64,
}

#[derive(Serialize)]
struct RoundPage {
    #[serde(flatten)]
    chrome: Chrome,
    round: RoundView,
    policy_text: String,
    preview: Option<Preview>,
    bars: Vec<TierBar>,
    max_plaintiffs: u64,
    max_yen: u64,
    exports: Vec<ExportView>,
    /// Refresh the page while an export is being made.
    working: bool,
    errors: BTreeMap<String, String>,
}

/// What a refused form left on the round page.
#[derive(Default)]
struct Shown {
    policy_text: Option<String>,
    preview: Option<Preview>,
    errors: BTreeMap<String, String>,
}

async fn render_round(
    state: &AppState,
    page: &Page<impl SignedIn>,
    id: uuid::Uuid,
    shown: Shown,
) -> AppResult<Template> {
    let user = page.caller.user();
    let round = service::get(state, user, id).await?;
    let policy_text = match shown.policy_text {
        Some(t) => t,
        None => {
            let current = service::latest_policy_row(state, id).await?;
            let value = match current {
                Some(p) => serde_json::from_str::<serde_json::Value>(&p.body).unwrap_or_default(),
                None => serde_json::to_value(super::domain::benesse_default_policy()).unwrap_or_default(),
            };
            serde_json::to_string_pretty(&value).unwrap_or_default()
        }
    };
    let exports = export::list(state, user, id).await?;
    let working = exports
        .iter()
        .any(|e| matches!(e.status, entities::export::Status::Queued | entities::export::Status::Running));
    let bars: Vec<TierBar> = shown
        .preview
        .as_ref()
        .map(|p| {
            p.result
                .by_tier
                .iter()
                .map(|t| TierBar {
                    tier: t.tier.clone(),
                    amount_yen: t.amount_yen,
                    plaintiffs: t.plaintiffs,
                    total_yen: t.total_yen,
                })
                .collect()
        })
        .unwrap_or_default();
    Ok(Template::render(
        "admin/round",
        RoundPage {
            chrome: page.chrome(format!("/admin/rounds/{id}")),
            max_plaintiffs: bars.iter().map(|b| b.plaintiffs).max().unwrap_or(0).max(1),
            max_yen: bars.iter().map(|b| b.total_yen).max().unwrap_or(0).max(1),
            bars,
            round,
            policy_text,
            preview: shown.preview,
            exports,
            working,
            errors: shown.errors,
        },
    ))
}

#[rocket::get("/admin/rounds/<id>")]
pub async fn round(id: &str, page: Page<AdminUser>, state: &State<AppState>) -> AppResult<Template> {
    render_round(state, &page, parse_id(id)?, Shown::default()).await
}

#[derive(rocket::FromForm)]
pub struct PolicyForm {
    #[field(default = String::new())]
    policy: String,
}

#[rocket::post("/admin/rounds/<id>/policy", data = "<form>")]
pub async fn set_policy(
    id: &str,
    form: PageForm<PolicyForm>,
    page: Page<AdminUser>,
    state: &State<AppState>,
) -> AppResult<PageResponse> {
    let id = parse_id(id)?;
    let refused =
        |errors: BTreeMap<String, String>| Shown { policy_text: Some(form.policy.clone()), preview: None, errors };
    let raw: serde_json::Value = match serde_json::from_str(&form.policy) {
        Ok(v) => v,
        Err(_) => {
            let errors = BTreeMap::from([("policy".to_string(), page.lang.t("error-malformed"))]);
            let page = render_round(state, &page, id, refused(errors)).await?;
            return Ok(PageResponse::refused(Status::UnprocessableEntity, page));
        }
    };
    match service::set_policy(state, &page.caller, id, &raw).await {
        Ok(_) => Ok(PageResponse::redirect(format!("/admin/rounds/{id}"))),
        Err(e @ (AppError::Invalid(_) | AppError::Conflict(_))) => {
            let mut errors = e.field_messages(page.lang);
            if errors.is_empty() {
                errors.insert("policy".into(), e.message(page.lang));
            }
            let page = render_round(state, &page, id, refused(errors)).await?;
            Ok(PageResponse::refused(Status::UnprocessableEntity, page))
        }
        Err(e) => Err(e),
    }
}

#[rocket::post("/admin/rounds/<id>/compute", data = "<_token>")]
pub async fn compute(
    id: &str,
    _token: PageForm<NoFields>,
    page: Page<AdminUser>,
    state: &State<AppState>,
) -> AppResult<PageResponse> {
    let id = parse_id(id)?;
    let preview = service::compute(state, &page.caller, id).await?;
    let shown = Shown { preview: Some(preview), ..Default::default() };
    Ok(PageResponse::page(render_round(state, &page, id, shown).await?))
}

#[rocket::post("/admin/rounds/<id>/freeze", data = "<_token>")]
pub async fn freeze(
    id: &str,
    _token: PageForm<NoFields>,
    admin: AdminUser,
    state: &State<AppState>,
) -> AppResult<PageResponse> {
    let id = parse_id(id)?;
    service::freeze(state, &admin.0, id).await?;
    Ok(PageResponse::redirect(format!("/admin/rounds/{id}")))
}

#[rocket::post("/admin/rounds/<id>/filed", data = "<_token>")]
pub async fn filed(
    id: &str,
    _token: PageForm<NoFields>,
    admin: AdminUser,
    state: &State<AppState>,
) -> AppResult<PageResponse> {
    let id = parse_id(id)?;
    service::mark_filed(state, &admin.0, id).await?;
    Ok(PageResponse::redirect(format!("/admin/rounds/{id}")))
}

#[rocket::post("/admin/rounds/<id>/exports", data = "<_token>")]
pub async fn start_export(
    id: &str,
    _token: PageForm<NoFields>,
    admin: AdminUser,
    state: &State<AppState>,
) -> AppResult<PageResponse> {
    let id = parse_id(id)?;
    export::start(state, &admin.0, id).await?;
    Ok(PageResponse::redirect(format!("/admin/rounds/{id}")))
}

#[derive(rocket::FromForm)]
pub struct DownloadForm {
    #[field(default = String::new())]
    password: String,
}

/// Re-enter the password and download in one step.
#[rocket::post("/admin/exports/<id>/download", data = "<form>")]
pub async fn download(
    id: &str,
    form: PageForm<DownloadForm>,
    page: Page<AdminUser>,
    state: &State<AppState>,
) -> AppResult<Result<Attachment, PageResponse>> {
    let id = parse_id(id)?;
    let status = export::status(state, &page.caller, id).await?;
    match crate::auth::service::reauthenticate(state, &page.caller, &form.password).await {
        Ok(()) => {
            let mut user = page.caller.0.clone();
            user.reauthenticated_at = Some(state.clock.now());
            Ok(Ok(Attachment(export::download(state, &user, id).await?)))
        }
        Err(e @ AppError::Invalid(_)) => {
            let shown = Shown { errors: e.field_messages(page.lang), ..Default::default() };
            let page = render_round(state, &page, status.round_id, shown).await?;
            Ok(Err(PageResponse::refused(Status::UnprocessableEntity, page)))
        }
        Err(e) => Err(e),
    }
}

pub fn routes() -> Vec<rocket::Route> {
    rocket::routes![rounds, create, round, set_policy, compute, freeze, filed, start_export, download]
}
