//! The review desk in HTML: the second-factor page for staff, the queue,
//! a claim's file with decision, note and assignment forms, bulk
//! verification, and the administrators' members and alerts pages.
use std::collections::BTreeMap;

use crate::body::FormBody;
use rocket::http::Status;
use rocket::State;
use rocket_dyn_templates::Template;
use serde::Serialize;

use super::admin::{self, AlertView};
use super::desk::{self, MemberView, QueueFilter, QueuePage, ReviewDetail};
use super::domain::{DecisionInput, DecisionKind, SignalKind};
use crate::auth::{AdminUser, Csrf, CurrentUser, StaffSigningIn, StaffUser};
use crate::cases::List;
use crate::error::{AppError, AppResult};
use crate::i18n::Lang;
use crate::intake::domain::ClaimStatus;
use crate::web::{local_path, Chrome, PageResponse};
use crate::{parse_id, AppState};

pub const SECOND_FACTOR_PAGE: &str = "/staff/second-factor";

#[derive(Serialize)]
struct SecondFactorPage {
    #[serde(flatten)]
    chrome: Chrome,
    enrolled: bool,
    verified: bool,
    /// Shown once, right after enrolment starts.
    setup: Option<crate::auth::totp::TotpSetup>,
    qr_svg: Option<String>,
    errors: BTreeMap<String, String>,
}

async fn render_second_factor(
    state: &AppState,
    lang: Lang,
    csrf: &Csrf,
    user: &CurrentUser,
    setup: Option<crate::auth::totp::TotpSetup>,
    errors: BTreeMap<String, String>,
) -> AppResult<Template> {
    let status = crate::auth::totp::status(state, user).await?;
    let qr_svg = setup.as_ref().and_then(|s| qr_svg(&s.otpauth_url));
    Ok(Template::render(
        "staff/second_factor",
        SecondFactorPage {
            chrome: Chrome::new(lang, csrf, Some(user), SECOND_FACTOR_PAGE),
            enrolled: status.enrolled,
            verified: status.verified,
            setup,
            qr_svg,
            errors,
        },
    ))
}

/// The enrolment URI as an SVG QR code for a phone's authenticator app.
fn qr_svg(uri: &str) -> Option<String> {
    let code = qrcode::QrCode::new(uri.as_bytes()).ok()?;
    let svg = code.render::<qrcode::render::svg::Color>().min_dimensions(200, 200).build();
    // Inline in the page: drop the XML prologue, name the picture for screen readers.
    let start = svg.find("<svg")?;
    Some(svg[start..].replacen("<svg", "<svg role=\"img\" aria-labelledby=\"qr-label\"", 1))
}

#[rocket::get("/staff/second-factor")]
pub async fn second_factor(
    lang: Lang,
    csrf: Csrf,
    staff: StaffSigningIn,
    state: &State<AppState>,
) -> AppResult<Template> {
    render_second_factor(state, lang, &csrf, &staff.0, None, BTreeMap::new()).await
}

#[derive(rocket::FromForm)]
pub struct CsrfForm {
    csrf: String,
}

#[rocket::post("/staff/second-factor/setup", data = "<form>")]
pub async fn second_factor_setup(
    form: FormBody<CsrfForm>,
    lang: Lang,
    csrf: Csrf,
    staff: StaffSigningIn,
    state: &State<AppState>,
) -> AppResult<PageResponse> {
    csrf.verify(&form.csrf)?;
    match crate::auth::totp::setup(state, &staff.0).await {
        Ok(setup) => Ok(PageResponse::page(
            render_second_factor(state, lang, &csrf, &staff.0, Some(setup), BTreeMap::new()).await?,
        )),
        Err(AppError::Conflict(_)) => Ok(PageResponse::redirect(SECOND_FACTOR_PAGE)),
        Err(e) => Err(e),
    }
}

#[derive(rocket::FromForm)]
pub struct CodeForm {
    csrf: String,
    code: String,
}

#[rocket::post("/staff/second-factor", data = "<form>")]
pub async fn second_factor_verify(
    form: FormBody<CodeForm>,
    lang: Lang,
    csrf: Csrf,
    staff: StaffSigningIn,
    state: &State<AppState>,
) -> AppResult<PageResponse> {
    csrf.verify(&form.csrf)?;
    match crate::auth::totp::verify(state, &staff.0, &form.code).await {
        Ok(()) => Ok(PageResponse::redirect("/review")),
        Err(e @ AppError::Invalid(_)) => {
            let page = render_second_factor(state, lang, &csrf, &staff.0, None, e.field_messages(lang)).await?;
            Ok(PageResponse::refused(Status::UnprocessableEntity, page))
        }
        Err(AppError::WrongState(_)) => Ok(PageResponse::redirect(SECOND_FACTOR_PAGE)),
        Err(e) => Err(e),
    }
}

#[derive(Serialize)]
struct CaseOption {
    slug: String,
    title: String,
}

/// The filter as the form shows it (empty: not filtered).
#[derive(Serialize, Default)]
struct FilterView {
    status: String,
    case: String,
    signal: String,
    assignee: String,
    overdue: bool,
}

#[derive(Serialize)]
struct QueueView {
    #[serde(flatten)]
    chrome: Chrome,
    queue: QueuePage,
    cases: Vec<CaseOption>,
    statuses: Vec<&'static str>,
    signals: Vec<&'static str>,
    filter: FilterView,
    pages: u64,
    /// Query string of the filter without the page, for pagination links.
    query: String,
    verified: Option<u64>,
    left: Option<u64>,
    errors: BTreeMap<String, String>,
}

async fn cases_for(state: &AppState, user: &CurrentUser, lang: Lang) -> AppResult<Vec<CaseOption>> {
    let scope = super::access::case_scope(state, user).await?;
    Ok(crate::cases::service::all_cases(state.db.conn())
        .await?
        .into_iter()
        .filter(|c| scope.as_ref().is_none_or(|ids| ids.contains(&c.model.id)))
        .map(|c| CaseOption { title: c.catalogue.title.get(lang).to_string(), slug: c.model.slug })
        .collect())
}

fn url_escape(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for b in v.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => out.push(b as char),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[allow(clippy::too_many_arguments)]
#[rocket::get("/review?<status>&<case>&<signal>&<assignee>&<overdue>&<page>&<verified>&<left>")]
pub async fn queue(
    lang: Lang,
    csrf: Csrf,
    staff: StaffUser,
    state: &State<AppState>,
    status: Option<&str>,
    case: Option<&str>,
    signal: Option<&str>,
    assignee: Option<&str>,
    overdue: Option<&str>,
    page: Option<u64>,
    verified: Option<u64>,
    left: Option<u64>,
) -> AppResult<PageResponse> {
    let user = &staff.0;
    super::access::require_staff(user)?;
    let (filter, errors) = match QueueFilter::parse(status, case, signal, assignee, overdue, page) {
        Ok(f) => (f, BTreeMap::new()),
        Err(e) => (QueueFilter::default(), crate::error::translate_fields(&e, lang)),
    };
    let filter = QueueFilter { page: filter.page.max(1), ..filter };
    let queue = desk::queue(state, user, &filter, lang).await?;
    let mut shown = BTreeMap::new();
    if let Some(s) = filter.status {
        shown.insert("status", s.as_str().to_string());
    }
    if let Some(c) = &filter.case {
        shown.insert("case", c.clone());
    }
    if let Some(s) = filter.signal {
        shown.insert("signal", s.as_str().to_string());
    }
    if let Some(a) = assignee.filter(|_| filter.assignee.is_some()) {
        shown.insert("assignee", a.trim().to_string());
    }
    if filter.overdue {
        shown.insert("overdue", "true".into());
    }
    let query = shown.iter().map(|(k, v)| format!("{k}={}", url_escape(v))).collect::<Vec<_>>().join("&");
    let text = |k: &str| shown.get(k).cloned().unwrap_or_default();
    let filter_view = FilterView {
        status: text("status"),
        case: text("case"),
        signal: text("signal"),
        assignee: text("assignee"),
        overdue: filter.overdue,
    };
    let pages = queue.total.div_ceil(queue.per_page).max(1);
    let view = QueueView {
        chrome: Chrome::new(lang, &csrf, Some(user), "/review"),
        cases: cases_for(state, user, lang).await?,
        statuses: [
            ClaimStatus::Submitted,
            ClaimStatus::NeedsInfo,
            ClaimStatus::Verified,
            ClaimStatus::Rejected,
            ClaimStatus::Withdrawn,
        ]
        .iter()
        .map(|s| s.as_str())
        .collect(),
        signals: SignalKind::ALL.iter().map(|s| s.as_str()).collect(),
        filter: filter_view,
        pages,
        query,
        queue,
        verified,
        left,
        errors: errors.clone(),
    };
    let page = Template::render("review/queue", view);
    Ok(if errors.is_empty() {
        PageResponse::page(page)
    } else {
        PageResponse::refused(Status::UnprocessableEntity, page)
    })
}

#[derive(rocket::FromForm)]
pub struct BulkForm {
    csrf: String,
    case: String,
}

#[rocket::post("/review/bulk-verify", data = "<form>")]
pub async fn bulk_verify(
    form: FormBody<BulkForm>,
    csrf: Csrf,
    staff: StaffUser,
    state: &State<AppState>,
) -> AppResult<PageResponse> {
    csrf.verify(&form.csrf)?;
    let report = desk::bulk_verify(state, &staff.0, &form.case).await?;
    Ok(PageResponse::redirect(format!(
        "/review?case={}&verified={}&left={}",
        url_escape(&form.case),
        report.verified.len(),
        report.left_for_review
    )))
}

#[derive(Serialize)]
struct ClaimPage {
    #[serde(flatten)]
    chrome: Chrome,
    review: ReviewDetail,
    case_title: String,
    /// The claim's leaked items and apology option as the reader's words.
    leaked_item_labels: Vec<String>,
    apology_option_label: Option<String>,
    decisions_allowed: bool,
    decision_kinds: Vec<&'static str>,
    /// What was typed into a refused form.
    values: BTreeMap<String, String>,
    errors: BTreeMap<String, String>,
    done: Option<String>,
    default_cure_days: u32,
}

/// A refused form: what was typed and what was wrong, shown again.
#[derive(Default)]
struct Refused {
    values: BTreeMap<String, String>,
    errors: BTreeMap<String, String>,
}

async fn render_claim(
    state: &AppState,
    lang: Lang,
    csrf: &Csrf,
    user: &CurrentUser,
    id: uuid::Uuid,
    refused: Refused,
    done: Option<String>,
) -> AppResult<Template> {
    let Refused { values, errors } = refused;
    let review = desk::detail(state, user, id, lang).await?;
    let case = state.cases.by_slug(state.db.conn(), &review.claim.summary.case).await?;
    Ok(Template::render(
        "review/claim",
        ClaimPage {
            chrome: Chrome::new(lang, csrf, Some(user), format!("/review/claims/{id}")),
            case_title: case.catalogue.title.get(lang).to_string(),
            leaked_item_labels: review
                .claim
                .draft
                .leaked_items
                .iter()
                .map(|code| case.catalogue.label(List::LeakedItems, code, lang))
                .collect(),
            apology_option_label: review
                .claim
                .draft
                .apology_option
                .as_deref()
                .map(|code| case.catalogue.label(List::ApologyOptions, code, lang)),
            decisions_allowed: super::domain::can_decide(
                review.claim.summary.status,
                review.claim.summary.needs_reverification,
            ),
            decision_kinds: DecisionKind::CHOSEN_BY_LAWYERS.iter().map(|d| d.as_str()).collect(),
            review,
            values,
            errors,
            done: done.filter(|d| ["decision", "note", "assignee"].contains(&d.as_str())),
            default_cure_days: super::domain::DEFAULT_CURE_DAYS,
        },
    ))
}

#[rocket::get("/review/claims/<id>?<done>")]
pub async fn claim(
    id: &str,
    done: Option<String>,
    lang: Lang,
    csrf: Csrf,
    staff: StaffUser,
    state: &State<AppState>,
) -> AppResult<Template> {
    render_claim(state, lang, &csrf, &staff.0, parse_id(id)?, Refused::default(), done).await
}

#[derive(rocket::FromForm)]
pub struct DecisionForm {
    csrf: String,
    #[field(default = String::new())]
    decision: String,
    #[field(default = String::new())]
    reason: String,
    #[field(default = String::new())]
    cure_days: String,
}

#[rocket::post("/review/claims/<id>/decision", data = "<form>")]
pub async fn decide(
    id: &str,
    form: FormBody<DecisionForm>,
    lang: Lang,
    csrf: Csrf,
    staff: StaffUser,
    state: &State<AppState>,
) -> AppResult<PageResponse> {
    csrf.verify(&form.csrf)?;
    let id = parse_id(id)?;
    let input = DecisionInput {
        decision: form.decision.clone(),
        reason: Some(form.reason.clone()),
        cure_days: Some(serde_json::Value::String(form.cure_days.clone())),
    };
    match desk::decide(state, &staff.0, id, &input).await {
        Ok(_) => Ok(PageResponse::redirect(format!("/review/claims/{id}?done=decision"))),
        Err(e @ AppError::Invalid(_)) => {
            let values = BTreeMap::from([
                ("decision".to_string(), form.decision.clone()),
                ("reason".to_string(), form.reason.clone()),
                ("cure_days".to_string(), form.cure_days.clone()),
            ]);
            let page = render_claim(
                state,
                lang,
                &csrf,
                &staff.0,
                id,
                Refused { values, errors: e.field_messages(lang) },
                None,
            )
            .await?;
            Ok(PageResponse::refused(Status::UnprocessableEntity, page))
        }
        Err(e) => Err(e),
    }
}

#[derive(rocket::FromForm)]
pub struct NoteForm {
    csrf: String,
    #[field(default = String::new())]
    body: String,
}

#[rocket::post("/review/claims/<id>/notes", data = "<form>")]
pub async fn add_note(
    id: &str,
    form: FormBody<NoteForm>,
    lang: Lang,
    csrf: Csrf,
    staff: StaffUser,
    state: &State<AppState>,
) -> AppResult<PageResponse> {
    csrf.verify(&form.csrf)?;
    let id = parse_id(id)?;
    match desk::add_note(state, &staff.0, id, &form.body).await {
        Ok(_) => Ok(PageResponse::redirect(format!("/review/claims/{id}?done=note"))),
        Err(e @ AppError::Invalid(_)) => {
            let values = BTreeMap::from([("body".to_string(), form.body.clone())]);
            let page = render_claim(
                state,
                lang,
                &csrf,
                &staff.0,
                id,
                Refused { values, errors: e.field_messages(lang) },
                None,
            )
            .await?;
            Ok(PageResponse::refused(Status::UnprocessableEntity, page))
        }
        Err(e) => Err(e),
    }
}

#[derive(rocket::FromForm)]
pub struct AssignForm {
    csrf: String,
    #[field(default = String::new())]
    assignee_id: String,
}

#[rocket::post("/review/claims/<id>/assignee", data = "<form>")]
pub async fn assign(
    id: &str,
    form: FormBody<AssignForm>,
    lang: Lang,
    csrf: Csrf,
    staff: StaffUser,
    state: &State<AppState>,
) -> AppResult<PageResponse> {
    csrf.verify(&form.csrf)?;
    let id = parse_id(id)?;
    let assignee = match form.assignee_id.trim() {
        "" => None,
        raw => match raw.parse() {
            Ok(u) => Some(u),
            Err(_) => {
                let mut errors = BTreeMap::new();
                errors.insert("assignee_id".to_string(), lang.t(&crate::domain::ErrorCode::Choice.message_key()));
                let page =
                    render_claim(state, lang, &csrf, &staff.0, id, Refused { errors, ..Default::default() }, None)
                        .await?;
                return Ok(PageResponse::refused(Status::UnprocessableEntity, page));
            }
        },
    };
    match desk::assign(state, &staff.0, id, assignee).await {
        Ok(()) => Ok(PageResponse::redirect(format!("/review/claims/{id}?done=assignee"))),
        Err(e @ AppError::Invalid(_)) => {
            let page = render_claim(
                state,
                lang,
                &csrf,
                &staff.0,
                id,
                Refused { errors: e.field_messages(lang), ..Default::default() },
                None,
            )
            .await?;
            Ok(PageResponse::refused(Status::UnprocessableEntity, page))
        }
        Err(e) => Err(e),
    }
}

#[derive(Serialize)]
struct MembersPage {
    #[serde(flatten)]
    chrome: Chrome,
    slug: String,
    case_title: String,
    members: Vec<MemberView>,
    /// The members whose accounts are disabled.
    disabled: Vec<uuid::Uuid>,
    auto_verify: bool,
    email: String,
    errors: BTreeMap<String, String>,
}

async fn render_members(
    state: &AppState,
    lang: Lang,
    csrf: &Csrf,
    user: &CurrentUser,
    slug: &str,
    email: String,
    errors: BTreeMap<String, String>,
) -> AppResult<Template> {
    let members = admin::members(state, user, slug).await?;
    let disabled = admin::disabled_among(state, members.iter().map(|m| m.user_id)).await?;
    let case = crate::cases::service::by_slug(state.db.conn(), slug).await?;
    Ok(Template::render(
        "admin/members",
        MembersPage {
            chrome: Chrome::new(lang, csrf, Some(user), format!("/admin/cases/{slug}/members")),
            slug: slug.to_string(),
            case_title: case.catalogue.title.get(lang).to_string(),
            auto_verify: case.model.auto_verify,
            members,
            disabled,
            email,
            errors,
        },
    ))
}

#[derive(rocket::FromForm)]
pub struct AccountActionForm {
    csrf: String,
    /// The case whose members page the action was taken from.
    case: String,
    #[field(default = false)]
    disabled: bool,
}

/// Back to the members page the action came from (a case slug only).
fn back_to_members(case: &str) -> AppResult<PageResponse> {
    if case.is_empty() || !case.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-') {
        return Err(AppError::NotFound);
    }
    Ok(PageResponse::redirect(format!("/admin/cases/{case}/members")))
}

#[rocket::post("/admin/users/<user_id>/disabled", data = "<form>")]
pub async fn set_account_disabled(
    user_id: &str,
    form: FormBody<AccountActionForm>,
    csrf: Csrf,
    admin: AdminUser,
    state: &State<AppState>,
) -> AppResult<PageResponse> {
    csrf.verify(&form.csrf)?;
    crate::auth::lifecycle::set_disabled(state, &admin.0, parse_id(user_id)?, form.disabled).await?;
    back_to_members(&form.case)
}

#[rocket::post("/admin/users/<user_id>/sessions/end", data = "<form>")]
pub async fn end_account_sessions(
    user_id: &str,
    form: FormBody<AccountActionForm>,
    csrf: Csrf,
    admin: AdminUser,
    state: &State<AppState>,
) -> AppResult<PageResponse> {
    csrf.verify(&form.csrf)?;
    crate::auth::lifecycle::end_sessions(state, &admin.0, parse_id(user_id)?).await?;
    back_to_members(&form.case)
}

#[rocket::get("/admin/cases/<slug>/members")]
pub async fn members(
    slug: &str,
    lang: Lang,
    csrf: Csrf,
    admin: AdminUser,
    state: &State<AppState>,
) -> AppResult<Template> {
    render_members(state, lang, &csrf, &admin.0, slug, String::new(), BTreeMap::new()).await
}

#[derive(rocket::FromForm)]
pub struct MemberForm {
    csrf: String,
    #[field(default = String::new())]
    email: String,
}

#[rocket::post("/admin/cases/<slug>/members", data = "<form>")]
pub async fn add_member(
    slug: &str,
    form: FormBody<MemberForm>,
    lang: Lang,
    csrf: Csrf,
    admin: AdminUser,
    state: &State<AppState>,
) -> AppResult<PageResponse> {
    csrf.verify(&form.csrf)?;
    match admin::add_member(state, &admin.0, slug, &form.email).await {
        Ok(_) => Ok(PageResponse::redirect(format!("/admin/cases/{slug}/members"))),
        Err(e @ AppError::Invalid(_)) => {
            let page =
                render_members(state, lang, &csrf, &admin.0, slug, form.email.clone(), e.field_messages(lang)).await?;
            Ok(PageResponse::refused(Status::UnprocessableEntity, page))
        }
        Err(e) => Err(e),
    }
}

#[rocket::post("/admin/cases/<slug>/members/<user_id>/remove", data = "<form>")]
pub async fn remove_member(
    slug: &str,
    user_id: &str,
    form: FormBody<CsrfForm>,
    csrf: Csrf,
    admin: AdminUser,
    state: &State<AppState>,
) -> AppResult<PageResponse> {
    csrf.verify(&form.csrf)?;
    admin::remove_member(state, &admin.0, slug, parse_id(user_id)?).await?;
    Ok(PageResponse::redirect(format!("/admin/cases/{slug}/members")))
}

#[derive(rocket::FromForm)]
pub struct PolicyForm {
    csrf: String,
    #[field(default = false)]
    auto_verify: bool,
}

#[rocket::post("/admin/cases/<slug>/policy", data = "<form>")]
pub async fn set_policy(
    slug: &str,
    form: FormBody<PolicyForm>,
    csrf: Csrf,
    admin: AdminUser,
    state: &State<AppState>,
) -> AppResult<PageResponse> {
    csrf.verify(&form.csrf)?;
    admin::set_auto_verify(state, &admin.0, slug, form.auto_verify).await?;
    Ok(PageResponse::redirect(format!("/admin/cases/{slug}/members")))
}

#[derive(Serialize)]
struct AlertLine {
    #[serde(flatten)]
    alert: AlertView,
    at_jst: String,
}

#[derive(Serialize)]
struct AlertsPage {
    #[serde(flatten)]
    chrome: Chrome,
    alerts: Vec<AlertLine>,
}

#[rocket::get("/admin/alerts")]
pub async fn alerts(lang: Lang, csrf: Csrf, admin: AdminUser, state: &State<AppState>) -> AppResult<Template> {
    let alerts = admin::alerts(state, &admin.0)
        .await?
        .into_iter()
        .map(|alert| AlertLine { at_jst: crate::web::format_jst(alert.created_at), alert })
        .collect();
    Ok(Template::render(
        "admin/alerts",
        AlertsPage { chrome: Chrome::new(lang, &csrf, Some(&admin.0), "/admin/alerts"), alerts },
    ))
}

#[rocket::post("/admin/alerts/<id>/acknowledge", data = "<form>")]
pub async fn acknowledge(
    id: &str,
    form: FormBody<CsrfForm>,
    csrf: Csrf,
    admin: AdminUser,
    state: &State<AppState>,
) -> AppResult<PageResponse> {
    csrf.verify(&form.csrf)?;
    admin::acknowledge_alert(state, &admin.0, parse_id(id)?).await?;
    Ok(PageResponse::redirect(local_path("/admin/alerts")))
}

pub fn routes() -> Vec<rocket::Route> {
    rocket::routes![
        second_factor,
        second_factor_setup,
        second_factor_verify,
        queue,
        bulk_verify,
        claim,
        decide,
        add_note,
        assign,
        members,
        add_member,
        remove_member,
        set_account_disabled,
        end_account_sessions,
        set_policy,
        alerts,
        acknowledge
    ]
}
