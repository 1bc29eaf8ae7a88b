//! The review desk in HTML: the queue, a claim's file with decision, note and assignment forms, bulk
//! verification, and the administrators' members and alerts pages.
use crate::body::NoFields;
use std::collections::BTreeMap;

use rocket::http::Status;
use rocket::State;
use rocket_dyn_templates::Template;
use serde::Serialize;

use super::admin::{self, AlertView};
use super::desk::{self, MemberView, QueueFilter, QueuePage, QueueQuery, ReviewDetail};
use super::domain::{DecisionInput, SignalKind};
use crate::auth::{AdminUser, CurrentUser, StaffUser};
use crate::cases::List;
use crate::claims::domain::ClaimStatus;
use crate::claims::domain::DecisionKind;
use crate::error::{AppError, AppResult};
use crate::i18n::Lang;
use crate::web::SignedIn;
use crate::web::{local_path, Chrome, Page, PageForm, PageResponse};
use crate::{parse_id, AppState};

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
    let scope = crate::claims::access::case_scope(state, user).await?;
    Ok(crate::cases::service::all_cases(state.db.conn())
        .await?
        .into_iter()
        .filter(|c| scope.as_ref().is_none_or(|ids| ids.contains(&c.model.id)))
        .map(|c| CaseOption { title: c.catalogue.title.get(lang).to_string(), slug: c.model.slug })
        .collect())
}

/// A value as a query string carries it (Rocket's URI encoding).
fn query_value(v: &str) -> String {
    use rocket::http::uri::fmt::{Query, UriDisplay};
    (&v as &dyn UriDisplay<Query>).to_string()
}

/// The filter as the form shows it, and as a query string (without the
/// page) for the pagination links.
fn shown_filter(filter: &QueueFilter, assignee: Option<&str>) -> (FilterView, String) {
    let mut shown = BTreeMap::new();
    shown.insert("status", filter.status.map(|s| s.as_str().to_string()));
    shown.insert("case", filter.case.clone());
    shown.insert("signal", filter.signal.map(|s| s.as_str().to_string()));
    shown.insert("assignee", assignee.filter(|_| filter.assignee.is_some()).map(|a| a.trim().to_string()));
    shown.insert("overdue", filter.overdue.then(|| "true".to_string()));
    let query = shown
        .iter()
        .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}={}", query_value(v))))
        .collect::<Vec<_>>()
        .join("&");
    let mut text = |k: &str| shown.remove(k).flatten().unwrap_or_default();
    let view = FilterView {
        status: text("status"),
        case: text("case"),
        signal: text("signal"),
        assignee: text("assignee"),
        overdue: filter.overdue,
    };
    (view, query)
}

const QUEUE_STATUSES: [ClaimStatus; 5] = [
    ClaimStatus::Submitted,
    ClaimStatus::NeedsInfo,
    ClaimStatus::Verified,
    ClaimStatus::Rejected,
    ClaimStatus::Withdrawn,
];

#[rocket::get("/review?<q..>")]
pub async fn queue(page: Page<StaffUser>, state: &State<AppState>, q: QueueQuery<'_>) -> AppResult<PageResponse> {
    let user = &page.caller;
    crate::claims::access::require_staff(user)?;
    let (filter, errors) = match q.filter() {
        Ok(f) => (f, BTreeMap::new()),
        Err(e) => (QueueFilter::default(), crate::error::translate_fields(&e, page.lang)),
    };
    let filter = QueueFilter { page: filter.page.max(1), ..filter };
    let queue = desk::queue(state, user, &filter, page.lang).await?;
    let (filter_view, query) = shown_filter(&filter, q.assignee);
    let view = QueueView {
        chrome: page.chrome("/review"),
        cases: cases_for(state, user, page.lang).await?,
        statuses: QUEUE_STATUSES.iter().map(|s| s.as_str()).collect(),
        signals: SignalKind::ALL.iter().map(|s| s.as_str()).collect(),
        filter: filter_view,
        pages: queue.total.div_ceil(queue.per_page).max(1),
        query,
        queue,
        verified: q.verified,
        left: q.left,
        errors: errors.clone(),
    };
    let rendered = Template::render("review/queue", view);
    Ok(if errors.is_empty() {
        PageResponse::page(rendered)
    } else {
        PageResponse::refused(Status::UnprocessableEntity, rendered)
    })
}

#[derive(rocket::FromForm)]
pub struct BulkForm {
    case: String,
}

#[rocket::post("/review/bulk-verify", data = "<form>")]
pub async fn bulk_verify(
    form: PageForm<BulkForm>,
    staff: StaffUser,
    state: &State<AppState>,
) -> AppResult<PageResponse> {
    let report = desk::bulk_verify(state, &staff.0, &form.case).await?;
    Ok(PageResponse::redirect(format!(
        "/review?case={}&verified={}&left={}",
        query_value(&form.case),
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
    page: &Page<impl SignedIn>,
    id: uuid::Uuid,
    refused: Refused,
    done: Option<String>,
) -> AppResult<Template> {
    let (lang, user) = (page.lang, page.caller.user());
    let Refused { values, errors } = refused;
    let review = desk::detail(state, user, id, lang).await?;
    let case = state.cases.by_slug(state.db.conn(), &review.claim.summary.case).await?;
    Ok(Template::render(
        "review/claim",
        ClaimPage {
            chrome: page.chrome(format!("/review/claims/{id}")),
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
    page: Page<StaffUser>,
    state: &State<AppState>,
) -> AppResult<Template> {
    render_claim(state, &page, parse_id(id)?, Refused::default(), done).await
}

#[derive(rocket::FromForm)]
pub struct DecisionForm {
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
    form: PageForm<DecisionForm>,
    page: Page<StaffUser>,
    state: &State<AppState>,
) -> AppResult<PageResponse> {
    let id = parse_id(id)?;
    let input = DecisionInput {
        decision: form.decision.clone(),
        reason: Some(form.reason.clone()),
        cure_days: Some(serde_json::Value::String(form.cure_days.clone())),
    };
    match desk::decide(state, &page.caller, id, &input).await {
        Ok(_) => Ok(PageResponse::redirect(format!("/review/claims/{id}?done=decision"))),
        Err(e @ AppError::Invalid(_)) => {
            let values = BTreeMap::from([
                ("decision".to_string(), form.decision.clone()),
                ("reason".to_string(), form.reason.clone()),
                ("cure_days".to_string(), form.cure_days.clone()),
            ]);
            let page =
                render_claim(state, &page, id, Refused { values, errors: e.field_messages(page.lang) }, None).await?;
            Ok(PageResponse::refused(Status::UnprocessableEntity, page))
        }
        Err(e) => Err(e),
    }
}

#[derive(rocket::FromForm)]
pub struct NoteForm {
    #[field(default = String::new())]
    body: String,
}

#[rocket::post("/review/claims/<id>/notes", data = "<form>")]
pub async fn add_note(
    id: &str,
    form: PageForm<NoteForm>,
    page: Page<StaffUser>,
    state: &State<AppState>,
) -> AppResult<PageResponse> {
    let id = parse_id(id)?;
    match desk::add_note(state, &page.caller, id, &form.body).await {
        Ok(_) => Ok(PageResponse::redirect(format!("/review/claims/{id}?done=note"))),
        Err(e @ AppError::Invalid(_)) => {
            let values = BTreeMap::from([("body".to_string(), form.body.clone())]);
            let page =
                render_claim(state, &page, id, Refused { values, errors: e.field_messages(page.lang) }, None).await?;
            Ok(PageResponse::refused(Status::UnprocessableEntity, page))
        }
        Err(e) => Err(e),
    }
}

#[derive(rocket::FromForm)]
pub struct AssignForm {
    #[field(default = String::new())]
    assignee_id: String,
}

impl AssignForm {
    /// Nobody (empty), or the member chosen.
    fn assignee(&self) -> AppResult<Option<uuid::Uuid>> {
        match self.assignee_id.trim() {
            "" => Ok(None),
            raw => raw.parse().map(Some).map_err(|_| {
                let mut errors = crate::domain::FieldErrors::new();
                errors.add("assignee_id", crate::domain::ErrorCode::Choice);
                AppError::Invalid(errors)
            }),
        }
    }
}

#[rocket::post("/review/claims/<id>/assignee", data = "<form>")]
pub async fn assign(
    id: &str,
    form: PageForm<AssignForm>,
    page: Page<StaffUser>,
    state: &State<AppState>,
) -> AppResult<PageResponse> {
    let id = parse_id(id)?;
    let result = match form.assignee() {
        Ok(assignee) => desk::assign(state, &page.caller, id, assignee).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(()) => Ok(PageResponse::redirect(format!("/review/claims/{id}?done=assignee"))),
        Err(e @ AppError::Invalid(_)) => {
            let refused = Refused { errors: e.field_messages(page.lang), ..Default::default() };
            let view = render_claim(state, &page, id, refused, None).await?;
            Ok(PageResponse::refused(Status::UnprocessableEntity, view))
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
    page: &Page<impl SignedIn>,
    slug: &str,
    email: String,
    errors: BTreeMap<String, String>,
) -> AppResult<Template> {
    let (lang, user) = (page.lang, page.caller.user());
    let members = admin::members(state, user, slug).await?;
    let disabled = admin::disabled_among(state, members.iter().map(|m| m.user_id)).await?;
    let case = crate::cases::service::by_slug(state.db.conn(), slug).await?;
    Ok(Template::render(
        "admin/members",
        MembersPage {
            chrome: page.chrome(format!("/admin/cases/{slug}/members")),
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
    form: PageForm<AccountActionForm>,
    admin: AdminUser,
    state: &State<AppState>,
) -> AppResult<PageResponse> {
    crate::auth::lifecycle::set_disabled(state, &admin.0, parse_id(user_id)?, form.disabled).await?;
    back_to_members(&form.case)
}

#[rocket::post("/admin/users/<user_id>/sessions/end", data = "<form>")]
pub async fn end_account_sessions(
    user_id: &str,
    form: PageForm<AccountActionForm>,
    admin: AdminUser,
    state: &State<AppState>,
) -> AppResult<PageResponse> {
    crate::auth::lifecycle::end_sessions(state, &admin.0, parse_id(user_id)?).await?;
    back_to_members(&form.case)
}

#[rocket::get("/admin/cases/<slug>/members")]
pub async fn members(slug: &str, page: Page<AdminUser>, state: &State<AppState>) -> AppResult<Template> {
    render_members(state, &page, slug, String::new(), BTreeMap::new()).await
}

#[derive(rocket::FromForm)]
pub struct MemberForm {
    #[field(default = String::new())]
    email: String,
}

#[rocket::post("/admin/cases/<slug>/members", data = "<form>")]
pub async fn add_member(
    slug: &str,
    form: PageForm<MemberForm>,
    page: Page<AdminUser>,
    state: &State<AppState>,
) -> AppResult<PageResponse> {
    match admin::add_member(state, &page.caller, slug, &form.email).await {
        Ok(_) => Ok(PageResponse::redirect(format!("/admin/cases/{slug}/members"))),
        Err(e @ AppError::Invalid(_)) => {
            let page = render_members(state, &page, slug, form.email.clone(), e.field_messages(page.lang)).await?;
            Ok(PageResponse::refused(Status::UnprocessableEntity, page))
        }
        Err(e) => Err(e),
    }
}

#[rocket::post("/admin/cases/<slug>/members/<user_id>/remove", data = "<_token>")]
pub async fn remove_member(
    slug: &str,
    user_id: &str,
    _token: PageForm<NoFields>,
    admin: AdminUser,
    state: &State<AppState>,
) -> AppResult<PageResponse> {
    admin::remove_member(state, &admin.0, slug, parse_id(user_id)?).await?;
    Ok(PageResponse::redirect(format!("/admin/cases/{slug}/members")))
}

#[derive(rocket::FromForm)]
pub struct PolicyForm {
    #[field(default = false)]
    auto_verify: bool,
}

#[rocket::post("/admin/cases/<slug>/policy", data = "<form>")]
pub async fn set_policy(
    slug: &str,
    form: PageForm<PolicyForm>,
    admin: AdminUser,
    state: &State<AppState>,
) -> AppResult<PageResponse> {
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
pub async fn alerts(page: Page<AdminUser>, state: &State<AppState>) -> AppResult<Template> {
    let alerts = admin::alerts(state, &page.caller)
        .await?
        .into_iter()
        .map(|alert| AlertLine { at_jst: crate::web::format_jst(alert.created_at), alert })
        .collect();
    Ok(Template::render("admin/alerts", AlertsPage { chrome: page.chrome("/admin/alerts"), alerts }))
}

#[rocket::post("/admin/alerts/<id>/acknowledge", data = "<_token>")]
pub async fn acknowledge(
    id: &str,
    _token: PageForm<NoFields>,
    admin: AdminUser,
    state: &State<AppState>,
) -> AppResult<PageResponse> {
    admin::acknowledge_alert(state, &admin.0, parse_id(id)?).await?;
    Ok(PageResponse::redirect(local_path("/admin/alerts")))
}

pub fn routes() -> Vec<rocket::Route> {
    rocket::routes![
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_query_value_cannot_break_out_of_its_parameter() {
        assert_eq!(query_value("benesse-2014"), "benesse-2014");
        let escaped = query_value("a&b=c d#ベネッセ");
        assert!(!escaped.contains(['&', '=', ' ', '#']), "{escaped}");
        assert_eq!(rocket::http::RawStr::new(&escaped).url_decode_lossy(), "a&b=c d#ベネッセ");
    }

    #[test]
    fn the_shown_filter_names_only_what_filters() {
        let filter = QueueFilter { case: Some("benesse-2014".into()), overdue: true, ..QueueFilter::default() };
        let (view, query) = shown_filter(&filter, Some(" ignored "));
        assert_eq!(query, "case=benesse-2014&overdue=true");
        assert_eq!((view.case.as_str(), view.assignee.as_str(), view.overdue), ("benesse-2014", "", true));
    }
}
