//! The review desk: the queue, a claim's file, decisions (verify, reject,
//! request information with a cure deadline), notes, assignment and bulk
//! verification. Every function checks the caller through `access`.
use chrono::{DateTime, Duration, NaiveDate, Utc};
use entities::{case_member, claim, evidence, review_decision, review_note};

use crate::mail::{Mail, MailKind};
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, Condition, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, Set};
use serde::Serialize;
use uuid::Uuid;

use super::domain::{
    can_decide, code_and_identity_match, decode_signals, encode_signals, is_overdue, parse_decision, signals, Decision,
    DecisionInput, SignalKind,
};
use super::service::{facts, Signal};
use crate::audit::{self, Actor, Event};
use crate::auth::{CurrentUser, Role};
use crate::claims::access::{self, Read};
use crate::claims::domain::ClaimStatus;
use crate::claims::domain::DecisionKind;
use crate::claims::notices::{decisions_of, open_text, DecisionView};
use crate::claims::store::{data_key, status_of, update_if_unchanged};
use crate::crypto;
use crate::domain::{parse_free_text, ErrorCode, FieldErrors};
use crate::error::{AppError, AppResult};
use crate::evidence::service::EvidenceView;
use crate::i18n::Lang;
use crate::intake::service::ClaimDetail;
use crate::AppState;

pub const PAGE_SIZE: u64 = 50;
/// At most this many claims get their signals recomputed before a queue is shown.
const REFRESH_PER_REQUEST: u64 = 200;
pub const NOTE_MAX_CHARS: usize = 2000;

/// Whose claims to list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AssigneeFilter {
    Me,
    Nobody,
    User(Uuid),
}

impl AssigneeFilter {
    pub fn parse(raw: &str) -> Option<Self> {
        match raw.trim() {
            "" => None,
            "me" => Some(Self::Me),
            "none" => Some(Self::Nobody),
            other => other.parse().ok().map(Self::User),
        }
    }
}

/// The queue's filters, from a query string.
#[derive(Clone, Debug, Default)]
pub struct QueueFilter {
    pub status: Option<ClaimStatus>,
    pub case: Option<String>,
    pub signal: Option<SignalKind>,
    pub assignee: Option<AssigneeFilter>,
    pub overdue: bool,
    pub page: u64,
}

impl QueueFilter {
    /// Parse the raw query values; an unknown value is a field error.
    pub fn parse(
        status: Option<&str>,
        case: Option<&str>,
        signal: Option<&str>,
        assignee: Option<&str>,
        overdue: Option<&str>,
        page: Option<u64>,
    ) -> Result<Self, FieldErrors> {
        let mut errors = FieldErrors::new();
        let blank = |v: Option<&str>| v.map(str::trim).filter(|s| !s.is_empty()).map(str::to_string);
        let status = blank(status).and_then(|s| {
            let parsed = ClaimStatus::parse(&s).filter(|s| *s != ClaimStatus::Draft);
            if parsed.is_none() {
                errors.add("status", ErrorCode::Choice);
            }
            parsed
        });
        let signal = blank(signal).and_then(|s| {
            let parsed = SignalKind::parse(&s);
            if parsed.is_none() {
                errors.add("signal", ErrorCode::Choice);
            }
            parsed
        });
        let assignee = blank(assignee).and_then(|s| {
            let parsed = AssigneeFilter::parse(&s);
            if parsed.is_none() {
                errors.add("assignee", ErrorCode::Choice);
            }
            parsed
        });
        let overdue = matches!(blank(overdue).as_deref(), Some("true" | "1" | "on"));
        errors.into_result(Self {
            status,
            case: blank(case),
            signal,
            assignee,
            overdue,
            page: page.unwrap_or(1).max(1),
        })
    }
}

/// The queue's query string: the filter and the page (and, on the page,
/// what a bulk verification just did).
#[derive(rocket::FromForm, Default)]
pub struct QueueQuery<'r> {
    pub status: Option<&'r str>,
    pub case: Option<&'r str>,
    pub signal: Option<&'r str>,
    pub assignee: Option<&'r str>,
    pub overdue: Option<&'r str>,
    pub page: Option<u64>,
    pub verified: Option<u64>,
    pub left: Option<u64>,
}

impl QueueQuery<'_> {
    pub fn filter(&self) -> Result<QueueFilter, FieldErrors> {
        QueueFilter::parse(self.status, self.case, self.signal, self.assignee, self.overdue, self.page)
    }
}

/// One claim in the queue: no personal data, only what triage needs.
#[derive(Clone, Debug, Serialize)]
pub struct QueueItem {
    pub id: Uuid,
    pub number: String,
    pub case: String,
    pub status: ClaimStatus,
    pub submitted_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
    pub assignee_id: Option<Uuid>,
    pub signals: Vec<Signal>,
    /// Both the registration code and an identity match the roster: bulk verification may verify it.
    pub code_and_identity_match: bool,
    pub cure_deadline: Option<NaiveDate>,
    /// A deficiency notice's deadline passed without an answer.
    pub overdue: bool,
    pub needs_reverification: bool,
}

#[derive(Clone, Debug, Serialize)]
pub struct QueuePage {
    pub items: Vec<QueueItem>,
    pub page: u64,
    pub per_page: u64,
    pub total: u64,
}

fn signal_views(kinds: &[SignalKind], lang: Lang) -> Vec<Signal> {
    kinds.iter().map(|k| Signal { kind: *k, weight: k.weight(), reason: lang.t(&k.reason_key()) }).collect()
}

/// Compute a claim's signals and store them for the queue.
pub async fn refresh_signals(state: &AppState, model: &claim::Model) -> AppResult<Vec<SignalKind>> {
    let kinds = signals(&facts(state, model.id).await?);
    claim::Entity::update_many()
        .col_expr(claim::Column::Signals, Expr::value(encode_signals(&kinds)))
        .col_expr(claim::Column::SignalsAt, Expr::value(state.clock.now()))
        .filter(claim::Column::Id.eq(model.id))
        .exec(state.db.conn())
        .await?;
    Ok(kinds)
}

/// Recompute every stale signal of claims in review (of one case, or all),
/// in batches, so the queue never waits for them. Returns how many.
pub async fn refresh_stale(state: &AppState, case_id: Option<Uuid>) -> AppResult<usize> {
    let mut done = 0;
    loop {
        let mut stale = claim::Entity::find()
            .filter(in_review())
            .filter(claim::Column::SignalsAt.is_null())
            .filter(claim::Column::WrappedKey.is_not_null());
        if let Some(case_id) = case_id {
            stale = stale.filter(claim::Column::CaseId.eq(case_id));
        }
        let batch = stale.limit(100).all(state.db.conn()).await?;
        if batch.is_empty() {
            return Ok(done);
        }
        for model in &batch {
            refresh_signals(state, model).await?;
        }
        done += batch.len();
    }
}

/// The job a roster import queues: recompute the stale signals of its case.
pub fn signals_job<'a>(
    state: &'a AppState,
    claimed: &'a crate::jobs::Claimed,
) -> rocket::futures::future::BoxFuture<'a, Result<(), crate::jobs::JobError>> {
    Box::pin(async move {
        let payload: serde_json::Value = serde_json::from_str(&claimed.job.payload).unwrap_or_default();
        let case = payload["case"].as_str().and_then(|s| s.parse().ok());
        refresh_stale(state, case).await?;
        Ok(())
    })
}

/// Forget the stored signals of a case's claims (a roster import changes them).
pub async fn invalidate_signals(state: &AppState, case_id: Uuid) -> AppResult<u64> {
    let r = claim::Entity::update_many()
        .col_expr(claim::Column::SignalsAt, Expr::value(Option::<DateTime<Utc>>::None))
        .filter(claim::Column::CaseId.eq(case_id))
        .exec(state.db.conn())
        .await?;
    Ok(r.rows_affected)
}

fn in_review() -> Condition {
    Condition::all()
        .add(claim::Column::Status.ne(ClaimStatus::Draft.as_str()))
        .add(claim::Column::Status.ne(ClaimStatus::Erased.as_str()))
        .add(claim::Column::SubmittedAt.is_not_null())
}

/// The case ids the caller may list, narrowed by `case` (a slug). A case
/// the caller does not work on is `NotFound`.
async fn scoped_cases(state: &AppState, user: &CurrentUser, case: Option<&str>) -> AppResult<Option<Vec<Uuid>>> {
    let scope = access::case_scope(state, user).await?;
    match case {
        None => Ok(scope),
        Some(slug) => {
            let case = state.cases.by_slug(state.db.conn(), slug).await?;
            match &scope {
                Some(ids) if !ids.contains(&case.model.id) => Err(AppError::NotFound),
                _ => Ok(Some(vec![case.model.id])),
            }
        }
    }
}

/// The queue, oldest submission first. Claims whose signals are stale are
/// recomputed first (a bounded number per request).
pub async fn queue(state: &AppState, user: &CurrentUser, filter: &QueueFilter, lang: Lang) -> AppResult<QueuePage> {
    access::require_staff(user)?;
    let cases = scoped_cases(state, user, filter.case.as_deref()).await?;
    let mut base = claim::Entity::find().filter(in_review());
    if let Some(ids) = &cases {
        base = base.filter(claim::Column::CaseId.is_in(ids.clone()));
    }
    let stale = base
        .clone()
        .filter(claim::Column::SignalsAt.is_null())
        .filter(claim::Column::WrappedKey.is_not_null())
        .limit(REFRESH_PER_REQUEST)
        .all(state.db.conn())
        .await?;
    for model in &stale {
        refresh_signals(state, model).await?;
    }
    let mut query = base;
    if let Some(status) = filter.status {
        query = query.filter(claim::Column::Status.eq(status.as_str()));
    }
    if let Some(signal) = filter.signal {
        query = query.filter(claim::Column::Signals.like(format!("%,{},%", signal.as_str())));
    }
    match filter.assignee {
        Some(AssigneeFilter::Me) => query = query.filter(claim::Column::AssigneeId.eq(user.id)),
        Some(AssigneeFilter::Nobody) => query = query.filter(claim::Column::AssigneeId.is_null()),
        Some(AssigneeFilter::User(id)) => query = query.filter(claim::Column::AssigneeId.eq(id)),
        None => {}
    }
    let today = state.clock.today();
    if filter.overdue {
        query = query
            .filter(claim::Column::Status.eq(ClaimStatus::NeedsInfo.as_str()))
            .filter(claim::Column::CureDeadline.lt(today));
    }
    let total = query.clone().count(state.db.conn()).await?;
    let rows = query
        .order_by_asc(claim::Column::SubmittedAt)
        .order_by_asc(claim::Column::Id)
        .offset((filter.page - 1) * PAGE_SIZE)
        .limit(PAGE_SIZE)
        .all(state.db.conn())
        .await?;
    let mut items = Vec::with_capacity(rows.len());
    for row in rows {
        let case = state.cases.by_id(state.db.conn(), row.case_id).await?;
        let status = status_of(&row)?;
        let kinds = row.signals.as_deref().map(decode_signals).unwrap_or_default();
        items.push(QueueItem {
            id: row.id,
            number: row.number.clone(),
            case: case.model.slug.clone(),
            status,
            submitted_at: row.submitted_at,
            updated_at: row.updated_at,
            assignee_id: row.assignee_id,
            code_and_identity_match: code_and_identity_match(&kinds),
            signals: signal_views(&kinds, lang),
            cure_deadline: row.cure_deadline,
            overdue: is_overdue(status, row.cure_deadline, today),
            needs_reverification: row.needs_reverification,
        });
    }
    Ok(QueuePage { items, page: filter.page, per_page: PAGE_SIZE, total })
}

#[derive(Clone, Debug, Serialize)]
pub struct NoteView {
    pub id: Uuid,
    pub author_id: Uuid,
    pub body: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Clone, Debug, Serialize)]
pub struct MemberView {
    pub user_id: Uuid,
    pub email: String,
    pub role: Role,
}

/// A claim's file as the reviewer sees it.
#[derive(Clone, Debug, Serialize)]
pub struct ReviewDetail {
    pub claim: ClaimDetail,
    pub signals: Vec<Signal>,
    pub code_and_identity_match: bool,
    pub evidence: Vec<EvidenceView>,
    pub decisions: Vec<DecisionView>,
    pub notes: Vec<NoteView>,
    pub assignee_id: Option<Uuid>,
    pub cure_deadline: Option<NaiveDate>,
    pub overdue: bool,
    /// Who the claim may be assigned to.
    pub members: Vec<MemberView>,
}

async fn members_of(state: &AppState, case_id: Uuid) -> AppResult<Vec<MemberView>> {
    let rows = case_member::Entity::find().filter(case_member::Column::CaseId.eq(case_id)).all(state.db.conn()).await?;
    let mut out = Vec::with_capacity(rows.len());
    for m in rows {
        let account = crate::auth::service::account_by_id(state, m.user_id).await?;
        out.push(MemberView { user_id: account.id, email: account.email, role: account.role });
    }
    Ok(out)
}

/// Open a claim's file. Counted against the hourly cap and audited as a
/// read of the claimant's data.
pub async fn detail(state: &AppState, user: &CurrentUser, id: Uuid, lang: Lang) -> AppResult<ReviewDetail> {
    let model = access::staff_claim(state, user, id).await?;
    access::record_read(state, user, Read::ClaimView, &model, ("claim", model.id)).await?;
    let case = state.cases.by_id(state.db.conn(), model.case_id).await?;
    let claim = crate::intake::service::detail(state, &model, &case.model.slug).await?;
    let kinds = refresh_signals(state, &model).await?;
    let evidence = evidence::Entity::find()
        .filter(evidence::Column::ClaimId.eq(model.id))
        .order_by_asc(evidence::Column::CreatedAt)
        .all(state.db.conn())
        .await?
        .iter()
        .map(EvidenceView::from)
        .collect();
    let notes = review_note::Entity::find()
        .filter(review_note::Column::ClaimId.eq(model.id))
        .order_by_asc(review_note::Column::CreatedAt)
        .all(state.db.conn())
        .await?
        .into_iter()
        .map(|n| {
            Ok(NoteView {
                id: n.id,
                author_id: n.author_id,
                body: open_text(&state.keys, &model, &n.body_sealed, &n.id)?,
                created_at: n.created_at,
            })
        })
        .collect::<AppResult<Vec<_>>>()?;
    let status = status_of(&model)?;
    Ok(ReviewDetail {
        claim,
        code_and_identity_match: code_and_identity_match(&kinds),
        signals: signal_views(&kinds, lang),
        evidence,
        decisions: decisions_of(state, &model).await?,
        notes,
        assignee_id: model.assignee_id,
        cure_deadline: model.cure_deadline,
        overdue: is_overdue(status, model.cure_deadline, state.clock.today()),
        members: members_of(state, model.case_id).await?,
    })
}

/// Apply a decision inside an open write transaction (the claim's version
/// guards against a concurrent change): the claim's new status, the
/// decision on file (its reason sealed), the claimant's e-mail, the audit
/// event. Returns the new model.
async fn apply_decision(
    state: &AppState,
    txn: &crate::db::WriteTx,
    actor: &Actor,
    decided_by: Option<Uuid>,
    model: &claim::Model,
    decision: &Decision,
    detail: serde_json::Value,
) -> AppResult<(claim::Model, DecisionView)> {
    let now = state.clock.now();
    let cure_deadline = decision.cure_days.map(|d| state.clock.today() + Duration::days(i64::from(d)));
    let mut updated = model.clone();
    updated.status = decision.kind.outcome().as_str().into();
    updated.cure_deadline = cure_deadline;
    // A lawyer has now looked at the claim as it is.
    updated.needs_reverification = false;
    updated.version = model.version + 1;
    updated.updated_at = now;
    if !update_if_unchanged(txn, model, &updated).await? {
        return Err(AppError::Conflict("claim_changed"));
    }
    let view = DecisionView {
        id: Uuid::new_v4(),
        decision: decision.kind,
        decided_by,
        reason: decision.reason.clone(),
        cure_deadline,
        created_at: now,
        answered_at: None,
    };
    record_decision(state, txn, model, &view).await?;
    tell_claimant(txn, model, &view).await?;
    let mut detail = detail;
    if let Some(map) = detail.as_object_mut() {
        map.insert("from".into(), model.status.clone().into());
        map.insert("decision".into(), view.id.to_string().into());
        if let Some(d) = cure_deadline {
            map.insert("cure_deadline".into(), d.to_string().into());
        }
    }
    let action = match decision.kind {
        DecisionKind::Verify => "claim.verified",
        DecisionKind::AutoVerify => "claim.auto_verified",
        DecisionKind::Reject => "claim.rejected",
        DecisionKind::RequestInfo => "claim.info_requested",
    };
    audit::append(txn, actor, Event::new(action).subject("claim", model.id).owner(model.claimant_id).detail(detail))
        .await?;
    Ok((updated, view))
}

/// The decision on file, its reason sealed with the claim's key.
async fn record_decision(
    state: &AppState,
    txn: &crate::db::WriteTx,
    model: &claim::Model,
    view: &DecisionView,
) -> AppResult<()> {
    let reason_sealed = match &view.reason {
        Some(reason) => {
            let key = data_key(&state.keys, model)?;
            Some(crypto::seal_json(key.bytes(), reason, view.id.as_bytes()))
        }
        None => None,
    };
    review_decision::Entity::insert(review_decision::ActiveModel {
        id: Set(view.id),
        claim_id: Set(model.id),
        decided_by: Set(view.decided_by),
        decision: Set(view.decision.as_str().into()),
        reason_sealed: Set(reason_sealed),
        cure_deadline: Set(view.cure_deadline),
        created_at: Set(view.created_at),
        answered_at: Set(None),
    })
    .exec_without_returning(txn)
    .await?;
    Ok(())
}

/// The e-mail a claimant gets about a decision: the claim number and where
/// to sign in, in Japanese and English — never the reason or any personal data.
async fn tell_claimant(txn: &crate::db::WriteTx, model: &claim::Model, view: &DecisionView) -> AppResult<()> {
    let kind = match view.decision {
        DecisionKind::RequestInfo => MailKind::InfoRequested,
        DecisionKind::Reject => MailKind::Rejected,
        DecisionKind::Verify | DecisionKind::AutoVerify => MailKind::Verified,
    };
    let params = match view.cure_deadline {
        Some(deadline) => serde_json::json!({"deadline": deadline.to_string()}),
        None => serde_json::json!({}),
    };
    crate::mail::queue(txn, view.created_at, Mail::about(kind, model, params, None)).await?;
    Ok(())
}

#[derive(Clone, Debug, Serialize)]
pub struct Decided {
    pub status: ClaimStatus,
    pub decision: DecisionView,
}

/// A lawyer's decision on a claim. Nothing is rejected automatically.
pub async fn decide(state: &AppState, user: &CurrentUser, id: Uuid, input: &DecisionInput) -> AppResult<Decided> {
    let model = access::staff_claim(state, user, id).await?;
    let decision = parse_decision(input)?;
    if !can_decide(status_of(&model)?, model.needs_reverification) {
        return Err(AppError::WrongState("claim_not_reviewable"));
    }
    let txn = state.db.begin_write().await?;
    let (updated, view) =
        apply_decision(state, &txn, &user.actor(), Some(user.id), &model, &decision, serde_json::json!({})).await?;
    txn.commit().await?;
    Ok(Decided { status: status_of(&updated)?, decision: view })
}

/// Add a note to a claim's file (sealed with the claim's key).
pub async fn add_note(state: &AppState, user: &CurrentUser, id: Uuid, body: &str) -> AppResult<NoteView> {
    let model = access::staff_claim(state, user, id).await?;
    let mut errors = FieldErrors::new();
    let body = errors.check("body", parse_free_text(body, NOTE_MAX_CHARS));
    let body = match body {
        Some(b) if !b.is_empty() => b,
        Some(_) => {
            errors.add("body", ErrorCode::Required);
            return Err(errors.into());
        }
        None => return Err(errors.into()),
    };
    let key = data_key(&state.keys, &model)?;
    let note_id = Uuid::new_v4();
    let now = state.clock.now();
    let txn = state.db.begin_write().await?;
    review_note::Entity::insert(review_note::ActiveModel {
        id: Set(note_id),
        claim_id: Set(model.id),
        author_id: Set(user.id),
        body_sealed: Set(crypto::seal_json(key.bytes(), &body, note_id.as_bytes())),
        created_at: Set(now),
    })
    .exec_without_returning(&txn)
    .await?;
    audit::append(
        &txn,
        &user.actor(),
        Event::new("claim.note_added")
            .subject("claim", model.id)
            .owner(model.claimant_id)
            .detail(serde_json::json!({"note": note_id})),
    )
    .await?;
    txn.commit().await?;
    Ok(NoteView { id: note_id, author_id: user.id, body, created_at: now })
}

/// Assign a claim to a member of its case, or to nobody.
pub async fn assign(state: &AppState, user: &CurrentUser, id: Uuid, assignee: Option<Uuid>) -> AppResult<()> {
    let model = access::staff_claim(state, user, id).await?;
    if let Some(a) = assignee {
        if !access::is_member(state, model.case_id, a).await? {
            let mut errors = FieldErrors::new();
            errors.add("assignee_id", ErrorCode::Choice);
            return Err(errors.into());
        }
    }
    let txn = state.db.begin_write().await?;
    claim::Entity::update_many()
        .col_expr(claim::Column::AssigneeId, Expr::value(assignee))
        .filter(claim::Column::Id.eq(model.id))
        .exec(&txn)
        .await?;
    audit::append(
        &txn,
        &user.actor(),
        Event::new("claim.assigned")
            .subject("claim", model.id)
            .owner(model.claimant_id)
            .detail(serde_json::json!({"assignee": assignee, "previous": model.assignee_id})),
    )
    .await?;
    txn.commit().await?;
    Ok(())
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct BulkReport {
    /// Claim numbers verified now.
    pub verified: Vec<String>,
    /// Submitted claims left for a person to decide.
    pub left_for_review: usize,
}

/// Verify every submitted claim of a case whose registration code and an
/// identity both match the roster, with fresh signals. The rest stay.
pub async fn bulk_verify(state: &AppState, user: &CurrentUser, case_slug: &str) -> AppResult<BulkReport> {
    access::require_staff(user)?;
    let case = state.cases.by_slug(state.db.conn(), case_slug).await?;
    if !access::may_work_on(state, user, case.model.id).await? {
        return Err(AppError::NotFound);
    }
    let candidates = claim::Entity::find()
        .filter(claim::Column::CaseId.eq(case.model.id))
        .filter(claim::Column::Status.eq(ClaimStatus::Submitted.as_str()))
        .order_by_asc(claim::Column::SubmittedAt)
        .all(state.db.conn())
        .await?;
    let mut report = BulkReport::default();
    let decision = Decision { kind: DecisionKind::Verify, reason: None, cure_days: None };
    for model in candidates {
        let kinds = refresh_signals(state, &model).await?;
        if !code_and_identity_match(&kinds) {
            report.left_for_review += 1;
            continue;
        }
        let txn = state.db.begin_write().await?;
        match apply_decision(
            state,
            &txn,
            &user.actor(),
            Some(user.id),
            &model,
            &decision,
            serde_json::json!({"bulk": true}),
        )
        .await
        {
            Ok(_) => {
                txn.commit().await?;
                report.verified.push(model.number.clone());
            }
            // Changed meanwhile (the claimant withdrew): leave it.
            Err(AppError::Conflict(_)) => report.left_for_review += 1,
            Err(e) => return Err(e),
        }
    }
    Ok(report)
}

/// [`auto_verify_if_allowed`] as the claims' `submitted` event calls it.
pub fn on_submitted<'a>(
    state: &'a AppState,
    model: &'a claim::Model,
) -> rocket::futures::future::BoxFuture<'a, AppResult<bool>> {
    Box::pin(auto_verify_if_allowed(state, model))
}

/// The case's policy at submission: verify without a person only when it
/// allows it and the code and identity both match. Never rejects.
pub async fn auto_verify_if_allowed(state: &AppState, model: &claim::Model) -> AppResult<bool> {
    let case = state.cases.by_id(state.db.conn(), model.case_id).await?;
    if !case.model.auto_verify {
        return Ok(false);
    }
    let kinds = refresh_signals(state, model).await?;
    if !code_and_identity_match(&kinds) {
        return Ok(false);
    }
    let decision = Decision { kind: DecisionKind::AutoVerify, reason: None, cure_days: None };
    let txn = state.db.begin_write().await?;
    let detail = serde_json::json!({"policy": "auto_verify", "signals": encode_signals(&kinds)});
    match apply_decision(state, &txn, &Actor::default(), None, model, &decision, detail).await {
        Ok(_) => {
            txn.commit().await?;
            Ok(true)
        }
        Err(AppError::Conflict(_)) => Ok(false),
        Err(e) => Err(e),
    }
}
