//! Claim use cases. Every function checks that the caller owns the claim
//! (a foreign or unknown id is `NotFound`), writes inside one transaction,
//! and appends an audit event in that same transaction.
use chrono::{DateTime, Utc};
use entities::{case, claim, person};
use sea_orm::sea_query::{Expr, Query};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseBackend, EntityTrait, ExprTrait, QueryFilter, QueryOrder,
    QuerySelect, Set,
};
use serde::Serialize;
use uuid::Uuid;

use crate::audit::{self, Event};
use crate::auth::CurrentUser;
use crate::cases::service::Case;
use crate::claims::domain::{round_exclusions, ClaimStatus, Draft, DraftInput, Exclusion};
use crate::claims::store::{
    identity_index, load_draft, own_claim, own_claim_and_draft, require_claimant, status_of, store_draft, summary,
    update_if_unchanged, ClaimSummary, Parts,
};
use crate::consent::service::ConsentState;
use crate::crypto::DataKey;
use crate::domain::FieldErrors;
use crate::error::{AppError, AppResult, EMAIL_CONFIRMATION};
use crate::AppState;

/// A claim with everything its owner filled in.
#[derive(Clone, Debug, Serialize)]
pub struct ClaimDetail {
    #[serde(flatten)]
    pub summary: ClaimSummary,
    #[serde(flatten)]
    pub draft: Draft,
    /// What must still be filled in or signed before submission.
    pub missing: Vec<String>,
    /// The claim's consent against the case's current documents.
    pub consent: ConsentState,
    /// Why the claim would not join a filing round now (empty: it would).
    pub round_exclusions: Vec<Exclusion>,
    /// The lawyers' open deficiency notice, or why the claim was rejected.
    pub notice: Option<crate::claims::notices::DecisionView>,
}

impl ClaimDetail {
    fn new(summary: ClaimSummary, draft: Draft, consent: ConsentState) -> Self {
        let mut missing = draft.missing_for_submit();
        missing.extend(consent.missing.iter().cloned());
        // Whether a claim is a possible duplicate is for the lawyers, not the claimant.
        let round_exclusions = round_exclusions(summary.status, consent.current, false, summary.needs_reverification);
        Self { summary, draft, missing, consent, round_exclusions, notice: None }
    }
}

pub(crate) async fn detail(state: &AppState, model: &claim::Model, case_slug: &str) -> AppResult<ClaimDetail> {
    let draft = load_draft(state.db.conn(), &state.keys, model, Parts::All).await?;
    let consent = crate::consent::service::state_of(state, state.db.conn(), model, &draft).await?;
    let mut detail = ClaimDetail::new(summary(model, case_slug)?, draft, consent);
    detail.notice = crate::claims::notices::claimant_notice(state, model).await?;
    Ok(detail)
}

/// Start a claim in a case. One claim per claimant per case: a second
/// attempt answers `Conflict("claim_exists")`.
pub async fn create_claim(state: &AppState, user: &CurrentUser, case_slug: &str) -> AppResult<ClaimSummary> {
    require_claimant(user)?;
    let case = state.cases.by_slug(state.db.conn(), case_slug).await?;
    if !case.is_open_on(state.clock.today()) {
        return Err(AppError::WrongState("intake_closed"));
    }
    let txn = state.db.begin_write().await?;
    // Take the next number atomically (row lock on PostgreSQL, writer lock on SQLite).
    let next = Query::update()
        .table(case::Entity)
        .value(case::Column::NextClaimSeq, Expr::col(case::Column::NextClaimSeq).add(1))
        .and_where(Expr::col(case::Column::Id).eq(case.model.id))
        .returning_col(case::Column::NextClaimSeq)
        .to_owned();
    let seq: i64 =
        txn.query_one(&next).await?.ok_or(AppError::NotFound)?.try_get("", "next_claim_seq").map_err(AppError::from)?;
    let id = Uuid::new_v4();
    let now = state.clock.now();
    let key = DataKey::generate();
    let model = claim::Model {
        id,
        case_id: case.model.id,
        claimant_id: user.id,
        number: format!("{}-{:06}", case.model.claim_prefix, seq - 1),
        status: ClaimStatus::Draft.as_str().into(),
        wrapped_key: Some(state.keys.wrap_data_key(&key, &id)),
        sealed: None,
        leaked_items: serde_json::json!([]),
        services: serde_json::json!([]),
        apology_letter_received: None,
        registration_code_index: None,
        apology_option: None,
        learned_of_leak_on: None,
        learned_month_only: false,
        possible_duplicate: false,
        version: 0,
        submitted_at: None,
        withdrawn_at: None,
        needs_reverification: false,
        erased_at: None,
        assignee_id: None,
        cure_deadline: None,
        signals: None,
        signals_at: None,
        created_at: now,
        updated_at: now,
        document_format: crate::claims::documents::DOCUMENT,
    };
    // The unique index on (case, claimant) refuses a second claim.
    let inserted = claim::Entity::insert(claim::ActiveModel::from(model.clone())).exec_without_returning(&txn).await;
    match inserted {
        Ok(_) => {}
        Err(e) if matches!(e.sql_err(), Some(sea_orm::SqlErr::UniqueConstraintViolation(_))) => {
            return Err(AppError::Conflict("claim_exists"));
        }
        Err(e) => return Err(e.into()),
    }
    audit::append(
        &txn,
        &user.actor(),
        Event::new("claim.created")
            .subject("claim", id)
            .owner(user.id)
            .detail(serde_json::json!({"case": case.model.slug, "number": model.number})),
    )
    .await?;
    txn.commit().await?;
    summary(&model, &case.model.slug)
}

pub async fn list_own(state: &AppState, user: &CurrentUser) -> AppResult<Vec<ClaimSummary>> {
    let rows = claim::Entity::find()
        .filter(claim::Column::ClaimantId.eq(user.id))
        .order_by_asc(claim::Column::CreatedAt)
        .all(state.db.conn())
        .await?;
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let case = state.cases.by_id(state.db.conn(), row.case_id).await?;
        out.push(summary(&row, &case.model.slug)?);
    }
    Ok(out)
}

/// The caller's claim with its draft, and its case.
pub async fn get_own(state: &AppState, user: &CurrentUser, id: Uuid) -> AppResult<(ClaimDetail, Case)> {
    let model = own_claim(state.db.conn(), user, id).await?;
    let case = state.cases.by_id(state.db.conn(), model.case_id).await?;
    let mut detail = detail(state, &model, &case.model.slug).await?;
    if detail.summary.status.can_submit() && !user.email_confirmed {
        detail.missing.push(EMAIL_CONFIRMATION.into());
    }
    Ok((detail, case))
}

/// Sections a claimant may correct after submission.
pub const CORRECTABLE_SECTIONS: [&str; 4] = ["identity", "contact", "household", "identity_correction"];

/// How often a save is retried when the claim changed underneath it
/// (the same claimant saving from two tabs).
const SAVE_ATTEMPTS: usize = 3;

/// Change the draft through `edit`, which may refuse with field errors.
/// Only a `draft` or `needs_info` claim can change (else `WrongState`).
/// Reading, decrypting and validating happen before the write transaction,
/// which then only writes, guarded by the claim's version.
pub async fn update_draft<F>(
    state: &AppState,
    user: &CurrentUser,
    id: Uuid,
    section: &'static str,
    edit: F,
) -> AppResult<ClaimDetail>
where
    F: Fn(&mut Draft, &Case) -> Result<(), FieldErrors>,
{
    for _ in 0..SAVE_ATTEMPTS {
        // Every read on one connection: the claim and its draft.
        let txn = state.db.begin_write().await?;
        let model = own_claim(&txn, user, id).await?;
        let status = status_of(&model)?;
        // After submission only identity and contact details may change.
        let correction = !status.is_editable();
        if correction && !(status.is_correctable() && CORRECTABLE_SECTIONS.contains(&section)) {
            return Err(AppError::WrongState("claim_not_editable"));
        }
        let case = state.cases.by_id(&txn, model.case_id).await?;
        // Only `store_draft` writes draft rows, and it bumps the version:
        // a claim at version 0 has none to read.
        let before = if model.version == 0 {
            Draft::default()
        } else {
            load_draft(&txn, &state.keys, &model, Parts::All).await?
        };
        let mut draft = before.clone();
        edit(&mut draft, &case)?;
        // Who is a plaintiff is the lawyers' to decide: a verified claim
        // whose people change goes back to them. A change of address or
        // phone keeps the verification and is flagged on the desk.
        let returned = status == ClaimStatus::Verified && draft.persons != before.persons;
        let Some(mut updated) =
            store_draft(&txn, &state.keys, &model, &before, &draft, correction, state.clock.now()).await?
        else {
            continue;
        };
        if returned {
            updated = return_to_review(&txn, updated, state.clock.now()).await?;
        }
        let action = if correction { "claim.corrected" } else { "claim.draft_saved" };
        audit::append(
            &txn,
            &user.actor(),
            Event::new(action).subject("claim", id).owner(user.id).detail(serde_json::json!({
                "section": section, "version": updated.version, "status": status.as_str(),
                "returned_to_review": returned,
            })),
        )
        .await?;
        // Read here, on the writer's connection, not after on another. A
        // claim saved for the first time has no people to have signed for.
        let signatures = match model.version {
            0 => vec![],
            _ => crate::consent::service::signature_rows(&txn, updated.id).await?,
        };
        txn.commit().await?;
        let consent =
            crate::consent::service::state_from(state, state.db.conn(), &updated, &draft, &signatures).await?;
        let mut detail = ClaimDetail::new(summary(&updated, &case.model.slug)?, draft, consent);
        if status == ClaimStatus::NeedsInfo {
            detail.notice = crate::claims::notices::claimant_notice(state, &updated).await?;
        }
        return Ok(detail);
    }
    Err(AppError::Conflict("claim_changed"))
}

/// A verified claim whose people changed: back to `submitted` for the
/// lawyers (rounds leave it out until they decide again), who are told.
async fn return_to_review(
    txn: &crate::db::WriteTx,
    mut claim: claim::Model,
    now: DateTime<Utc>,
) -> AppResult<claim::Model> {
    claim::Entity::update_many()
        .col_expr(claim::Column::Status, Expr::value(ClaimStatus::Submitted.as_str()))
        .filter(claim::Column::Id.eq(claim.id))
        .exec(txn)
        .await?;
    tell_lawyers(txn, &claim, "claim.changed_after_verification", now).await?;
    claim.status = ClaimStatus::Submitted.as_str().into();
    Ok(claim)
}

/// Replace the whole draft (the API's PUT).
pub async fn replace_draft(
    state: &AppState,
    user: &CurrentUser,
    id: Uuid,
    input: &DraftInput,
) -> AppResult<ClaimDetail> {
    update_draft(state, user, id, "all", |draft, case| {
        *draft = input.parse(&case.catalogue, state.clock.today())?;
        Ok(())
    })
    .await
}

/// Correct identity and contact details (the API's PUT …/identity). After
/// submission the claim is flagged for re-verification; a changed person
/// needs the documents signed again.
pub async fn correct_identity(
    state: &AppState,
    user: &CurrentUser,
    id: Uuid,
    input: &crate::claims::domain::IdentityInput,
) -> AppResult<ClaimDetail> {
    let identity = input.parse(state.clock.today())?;
    update_draft(state, user, id, "identity_correction", move |draft, _| {
        draft.persons = identity.persons.clone();
        draft.address = identity.address.clone();
        draft.phone = identity.phone.clone();
        draft.email = identity.email.clone();
        Ok(())
    })
    .await
}

/// Submit: the draft must be complete. Flags possible duplicates (another
/// live claim in the same case naming a person with the same kana name and
/// birth date) for the lawyers; the claimant is not told.
pub async fn submit(state: &AppState, user: &CurrentUser, id: Uuid) -> AppResult<ClaimSummary> {
    // Every read on one connection: the claim, its people, its signatures,
    // the account, possible duplicates.
    let txn = state.db.begin_write().await?;
    let (model, draft) = own_claim_and_draft(&txn, &state.keys, user, id).await?;
    let case = state.cases.by_id(&txn, model.case_id).await?;
    let status = status_of(&model)?;
    if status == ClaimStatus::Submitted {
        // A retried submission is not an error: the claim is already in.
        return summary(&model, &case.model.slug);
    }
    if !status.can_submit() {
        return Err(AppError::WrongState("claim_not_submittable"));
    }
    require_complete(state, &txn, user, &model, &draft).await?;
    let indexes: Vec<String> = draft.persons.iter().map(|p| identity_index(&state.keys, p)).collect();
    let duplicates = find_duplicate_claims(&txn, &model, indexes).await?;
    lock_with_duplicates(state, &txn, &model, &duplicates).await?;
    let now = state.clock.now();
    let mut updated = submitted(&model, &duplicates, now);
    if !update_if_unchanged(&txn, &model, &updated).await? {
        // Changed meanwhile (a double click, another tab): answer with its state now.
        drop(txn);
        let current = own_claim(state.db.conn(), user, id).await?;
        return match status_of(&current)? {
            ClaimStatus::Submitted => summary(&current, &case.model.slug),
            _ => Err(AppError::Conflict("claim_changed")),
        };
    }
    if status == ClaimStatus::NeedsInfo {
        tell_lawyers_of_answer(&txn, &model, now).await?;
    }
    flag_duplicates(&txn, &duplicates).await?;
    let detail = serde_json::json!({"from": status.as_str(), "possible_duplicates": duplicates.len()});
    let event = Event::new("claim.submitted").subject("claim", id).owner(user.id).detail(detail);
    audit::append(&txn, &user.actor(), event).await?;
    txn.commit().await?;
    // The case's policy may verify it now (only when code and identity both match).
    if (state.claim_listeners.submitted)(state, &updated).await? {
        updated.status = ClaimStatus::Verified.as_str().into();
        updated.version += 1;
    }
    summary(&updated, &case.model.slug)
}

/// What a submission still lacks: the draft's required answers, current
/// consent to every document (for each minor, as 法定代理人), a confirmed
/// e-mail address. All of it in one refusal.
async fn require_complete(
    state: &AppState,
    txn: &crate::db::WriteTx,
    user: &CurrentUser,
    model: &claim::Model,
    draft: &Draft,
) -> AppResult<()> {
    let mut missing = draft.missing_for_submit();
    let consent = crate::consent::service::state_of(state, txn, model, draft).await?;
    missing.extend(consent.missing);
    if !user.email_confirmed {
        missing.push(EMAIL_CONFIRMATION.into());
    }
    match missing.is_empty() {
        true => Ok(()),
        false => Err(AppError::Incomplete(missing)),
    }
}

/// On PostgreSQL, lock this claim and its possible duplicates in id order,
/// so two claimants submitting duplicates of each other cannot deadlock.
async fn lock_with_duplicates(
    state: &AppState,
    txn: &crate::db::WriteTx,
    model: &claim::Model,
    duplicates: &[Uuid],
) -> AppResult<()> {
    if state.db.backend() != DatabaseBackend::Postgres || duplicates.is_empty() {
        return Ok(());
    }
    let mut to_lock = duplicates.to_vec();
    to_lock.push(model.id);
    to_lock.sort();
    claim::Entity::find()
        .filter(claim::Column::Id.is_in(to_lock))
        .order_by_asc(claim::Column::Id)
        .lock_exclusive()
        .all(txn)
        .await?;
    Ok(())
}

/// The claim as submitted now.
fn submitted(model: &claim::Model, duplicates: &[Uuid], now: chrono::DateTime<Utc>) -> claim::Model {
    let mut updated = model.clone();
    updated.status = ClaimStatus::Submitted.as_str().into();
    updated.submitted_at = Some(model.submitted_at.unwrap_or(now));
    updated.possible_duplicate = !duplicates.is_empty();
    updated.cure_deadline = None;
    updated.signals_at = None;
    updated.version = model.version + 1;
    updated.updated_at = now;
    updated
}

/// The claimant answered the deficiency notice: the notices are marked
/// answered and the case's lawyers are told.
async fn tell_lawyers_of_answer(
    txn: &crate::db::WriteTx,
    model: &claim::Model,
    now: chrono::DateTime<Utc>,
) -> AppResult<()> {
    crate::claims::notices::mark_notices_answered(txn, model.id, now).await?;
    tell_lawyers(txn, model, "claim.resubmitted", now).await?;
    Ok(())
}

/// A notice on the case's lawyers' desk about this claim.
async fn tell_lawyers(txn: &crate::db::WriteTx, claim: &claim::Model, kind: &str, now: DateTime<Utc>) -> AppResult<()> {
    entities::notification::Entity::insert(entities::notification::ActiveModel {
        id: Set(Uuid::new_v4()),
        case_id: Set(claim.case_id),
        audience: Set("lawyers".into()),
        kind: Set(kind.into()),
        claim_id: Set(Some(claim.id)),
        created_at: Set(now),
        read_at: Set(None),
    })
    .exec_without_returning(txn)
    .await?;
    Ok(())
}

/// The other claims naming the same people are flagged for the lawyers
/// too, and their verification signals computed again.
async fn flag_duplicates(txn: &crate::db::WriteTx, duplicates: &[Uuid]) -> AppResult<()> {
    if duplicates.is_empty() {
        return Ok(());
    }
    claim::Entity::update_many()
        .col_expr(claim::Column::PossibleDuplicate, Expr::value(true))
        .col_expr(claim::Column::SignalsAt, Expr::value(Option::<chrono::DateTime<Utc>>::None))
        .filter(claim::Column::Id.is_in(duplicates.to_vec()))
        .exec(txn)
        .await?;
    Ok(())
}

/// Other live claims in the same case naming a person with one of these
/// identity indexes (one query).
pub async fn find_duplicate_claims(
    db: &impl ConnectionTrait,
    model: &claim::Model,
    identity_indexes: Vec<String>,
) -> AppResult<Vec<Uuid>> {
    if identity_indexes.is_empty() {
        return Ok(vec![]);
    }
    let mut claims: Vec<Uuid> = person::Entity::find()
        .select_only()
        .column(person::Column::ClaimId)
        .distinct()
        .inner_join(claim::Entity)
        .filter(person::Column::IdentityIndex.is_in(identity_indexes))
        .filter(person::Column::ClaimId.ne(model.id))
        .filter(claim::Column::CaseId.eq(model.case_id))
        .filter(claim::Column::Status.ne(ClaimStatus::Withdrawn.as_str()))
        .into_tuple()
        .all(db)
        .await?;
    claims.sort();
    Ok(claims)
}

/// Withdraw from the suit. Final; the claim and its history are kept.
pub async fn withdraw(state: &AppState, user: &CurrentUser, id: Uuid) -> AppResult<ClaimSummary> {
    let txn = state.db.begin_write().await?;
    let model = own_claim(&txn, user, id).await?;
    let status = status_of(&model)?;
    if !status.can_withdraw() {
        return Err(AppError::WrongState("claim_already_withdrawn"));
    }
    let case = state.cases.by_id(&txn, model.case_id).await?;
    let now = state.clock.now();
    let mut active: claim::ActiveModel = model.clone().into();
    active.status = Set(ClaimStatus::Withdrawn.as_str().into());
    active.withdrawn_at = Set(Some(now));
    active.version = Set(model.version + 1);
    active.updated_at = Set(now);
    let updated = active.update(&txn).await?;
    // The case's lawyers are told: the claimant leaves every later round.
    tell_lawyers(&txn, &model, "claim.withdrawn", now).await?;
    audit::append(
        &txn,
        &user.actor(),
        Event::new("claim.withdrawn")
            .subject("claim", id)
            .owner(user.id)
            .detail(serde_json::json!({"from": status.as_str()})),
    )
    .await?;
    txn.commit().await?;
    summary(&updated, &case.model.slug)
}
