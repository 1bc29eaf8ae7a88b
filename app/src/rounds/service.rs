//! Filing rounds over the database: create a round, set its tier policy
//! (versioned), compute a preview, freeze it with plaintiff numbers.
//! Administrators only; every change is audited.
use std::collections::{BTreeSet, HashSet};

use chrono::{DateTime, Duration, NaiveDate, Utc};
use entities::{claim, evidence, filing_round, round_member, tier_policy};
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::domain::{compute as compute_round, parse_policy, PlaintiffInput, RoundResult, TierPolicy};
use crate::audit::{self, Event};
use crate::auth::{CurrentUser, Role};
use crate::claims::domain::{round_exclusions, ClaimStatus, Exclusion};
use crate::claims::store::{identity_index, load_draft, status_of, Parts};
use crate::domain::{normalise, parse_date, ErrorCode, FieldErrors};
use crate::error::{AppError, AppResult};
use crate::AppState;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RoundState {
    Open,
    Frozen,
    Filed,
}

impl RoundState {
    pub fn as_str(self) -> &'static str {
        match self {
            RoundState::Open => "open",
            RoundState::Frozen => "frozen",
            RoundState::Filed => "filed",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Open, Self::Frozen, Self::Filed].into_iter().find(|r| r.as_str() == s)
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct RoundView {
    pub id: Uuid,
    pub case: String,
    pub number: i32,
    pub name: String,
    pub court: String,
    pub cut_off: NaiveDate,
    pub filing_date: NaiveDate,
    pub state: RoundState,
    pub policy_version: Option<i32>,
    pub policy_sha256: Option<String>,
    pub result_sha256: Option<String>,
    pub frozen_at: Option<DateTime<Utc>>,
}

/// A round as an administrator types it.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct RoundInput {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub court: String,
    #[serde(default)]
    pub cut_off: String,
    #[serde(default)]
    pub filing_date: String,
}

const TEXT_MAX: usize = 100;

fn parse_round(input: &RoundInput) -> Result<(String, String, NaiveDate, NaiveDate), FieldErrors> {
    let mut errors = FieldErrors::new();
    let mut text = |field: &str, raw: &str| {
        let v = normalise(raw);
        if v.is_empty() {
            errors.add(field, ErrorCode::Required);
        } else if v.chars().count() > TEXT_MAX {
            errors.add(field, ErrorCode::TooLong);
        }
        v
    };
    let name = text("name", &input.name);
    let court = text("court", &input.court);
    let cut_off = errors.check("cut_off", parse_date(&input.cut_off));
    let filing = errors.check("filing_date", parse_date(&input.filing_date));
    if let (Some(c), Some(f)) = (cut_off, filing) {
        if f < c {
            errors.add("filing_date", ErrorCode::OutOfRange);
        }
    }
    match (cut_off, filing) {
        (Some(c), Some(f)) if errors.is_empty() => Ok((name, court, c, f)),
        _ => Err(errors),
    }
}

pub(crate) async fn latest_policy_row(state: &AppState, round_id: Uuid) -> AppResult<Option<tier_policy::Model>> {
    latest_policy(state, round_id).await
}

async fn latest_policy(state: &AppState, round_id: Uuid) -> AppResult<Option<tier_policy::Model>> {
    Ok(tier_policy::Entity::find()
        .filter(tier_policy::Column::RoundId.eq(round_id))
        .order_by_desc(tier_policy::Column::Version)
        .one(state.db.conn())
        .await?)
}

async fn view(state: &AppState, round: &filing_round::Model) -> AppResult<RoundView> {
    let case = state.cases.by_id(state.db.conn(), round.case_id).await?;
    let policy = latest_policy(state, round.id).await?;
    Ok(RoundView {
        id: round.id,
        case: case.model.slug.clone(),
        number: round.number,
        name: round.name.clone(),
        court: round.court.clone(),
        cut_off: round.cut_off,
        filing_date: round.filing_date,
        state: RoundState::parse(&round.state).ok_or_else(|| AppError::internal("unknown round state"))?,
        policy_version: policy.as_ref().map(|p| p.version),
        policy_sha256: policy.map(|p| p.sha256),
        result_sha256: round.result_sha256.clone(),
        frozen_at: round.frozen_at,
    })
}

async fn round_by_id(state: &AppState, id: Uuid) -> AppResult<filing_round::Model> {
    filing_round::Entity::find_by_id(id).one(state.db.conn()).await?.ok_or(AppError::NotFound)
}

pub async fn create(state: &AppState, user: &CurrentUser, slug: &str, input: &RoundInput) -> AppResult<RoundView> {
    user.require(Role::Admin)?;
    let case = state.cases.by_slug(state.db.conn(), slug).await?;
    let (name, court, cut_off, filing_date) = parse_round(input)?;
    let txn = state.db.begin_write().await?;
    let last: Option<i32> = filing_round::Entity::find()
        .select_only()
        .column_as(filing_round::Column::Number.max(), "n")
        .filter(filing_round::Column::CaseId.eq(case.model.id))
        .into_tuple::<Option<i32>>()
        .one(&txn)
        .await?
        .flatten();
    let model = filing_round::Model {
        id: Uuid::new_v4(),
        case_id: case.model.id,
        number: last.unwrap_or(0) + 1,
        name,
        court,
        cut_off,
        filing_date,
        state: RoundState::Open.as_str().into(),
        result_sha256: None,
        created_at: state.clock.now(),
        frozen_at: None,
        frozen_by: None,
    };
    filing_round::Entity::insert(filing_round::ActiveModel::from(model.clone())).exec_without_returning(&txn).await?;
    audit::append(
        &txn,
        &user.actor(),
        Event::new("round.created")
            .subject("round", model.id)
            .detail(serde_json::json!({"case": slug, "number": model.number})),
    )
    .await?;
    txn.commit().await?;
    view(state, &model).await
}

pub async fn list(state: &AppState, user: &CurrentUser, slug: &str) -> AppResult<Vec<RoundView>> {
    user.require(Role::Admin)?;
    let case = state.cases.by_slug(state.db.conn(), slug).await?;
    let rounds = filing_round::Entity::find()
        .filter(filing_round::Column::CaseId.eq(case.model.id))
        .order_by_asc(filing_round::Column::Number)
        .all(state.db.conn())
        .await?;
    let mut out = Vec::with_capacity(rounds.len());
    for r in &rounds {
        out.push(view(state, r).await?);
    }
    Ok(out)
}

pub async fn get(state: &AppState, user: &CurrentUser, id: Uuid) -> AppResult<RoundView> {
    user.require(Role::Admin)?;
    view(state, &round_by_id(state, id).await?).await
}

#[derive(Clone, Debug, Serialize)]
pub struct PolicyView {
    pub version: i32,
    pub sha256: String,
    pub policy: TierPolicy,
}

/// Save a new version of the round's tier policy (only while it is open).
pub async fn set_policy(
    state: &AppState,
    user: &CurrentUser,
    id: Uuid,
    raw: &serde_json::Value,
) -> AppResult<PolicyView> {
    user.require(Role::Admin)?;
    let round = round_by_id(state, id).await?;
    if round.state != RoundState::Open.as_str() {
        return Err(AppError::WrongState("round_not_open"));
    }
    let case = state.cases.by_id(state.db.conn(), round.case_id).await?;
    let codes: Vec<String> = case.catalogue.leaked_items.iter().map(|o| o.code.clone()).collect();
    let policy = parse_policy(raw, &codes)?;
    // BTreeMaps and a fixed field order: the same policy always has the same text and hash.
    let body = serde_json::to_string(&policy).map_err(|e| AppError::caused_by("round policy", e))?;
    let sha256 = hex::encode(Sha256::digest(body.as_bytes()));
    let txn = state.db.begin_write().await?;
    let last = tier_policy::Entity::find()
        .filter(tier_policy::Column::RoundId.eq(id))
        .order_by_desc(tier_policy::Column::Version)
        .one(&txn)
        .await?;
    if last.as_ref().is_some_and(|l| l.sha256 == sha256) {
        return Err(AppError::Conflict("policy_unchanged"));
    }
    let version = last.map(|l| l.version).unwrap_or(0) + 1;
    tier_policy::Entity::insert(tier_policy::ActiveModel {
        id: Set(Uuid::new_v4()),
        round_id: Set(id),
        version: Set(version),
        body: Set(body),
        sha256: Set(sha256.clone()),
        created_at: Set(state.clock.now()),
        created_by: Set(Some(user.id)),
    })
    .exec_without_returning(&txn)
    .await?;
    audit::append(
        &txn,
        &user.actor(),
        Event::new("round.policy_set")
            .subject("round", id)
            .detail(serde_json::json!({"version": version, "sha256": sha256})),
    )
    .await?;
    txn.commit().await?;
    Ok(PolicyView { version, sha256, policy })
}

/// The end of the cut-off day in Japan, as an instant.
fn cut_off_end(cut_off: NaiveDate) -> DateTime<Utc> {
    let next = cut_off + Duration::days(1);
    next.and_hms_opt(0, 0, 0).map(|t| t.and_utc() - Duration::hours(9)).unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// Every person of every claim submitted by the cut-off and not already a
/// plaintiff of another round, with what the tier rules need. A person
/// named on an earlier claim (same kana name and birth date) is excluded
/// as a duplicate.
async fn gather(state: &AppState, round: &filing_round::Model) -> AppResult<Vec<PlaintiffInput>> {
    let db = state.db.conn();
    let in_other_rounds: HashSet<Uuid> = round_member::Entity::find()
        .filter(round_member::Column::RoundId.ne(round.id))
        .all(db)
        .await?
        .into_iter()
        .map(|m| m.claim_id)
        .collect();
    let claims = claim::Entity::find()
        .filter(claim::Column::CaseId.eq(round.case_id))
        .filter(claim::Column::SubmittedAt.lt(cut_off_end(round.cut_off)))
        .order_by_asc(claim::Column::Number)
        .all(db)
        .await?;
    let mut seen_people = HashSet::new();
    let mut out = Vec::new();
    for model in claims.into_iter().filter(|c| !in_other_rounds.contains(&c.id)) {
        if model.wrapped_key.is_none() {
            out.push(erased(&model));
        } else {
            out.extend(plaintiffs_of(state, round, &model, &mut seen_people).await?);
        }
    }
    Ok(out)
}

/// An erased claim: nothing personal is left, only the fact.
fn erased(model: &claim::Model) -> PlaintiffInput {
    PlaintiffInput {
        claim_id: model.id,
        claim_number: model.number.clone(),
        position: 0,
        is_minor: false,
        leaked_items: vec![],
        harm_kinds: BTreeSet::new(),
        evidence_kinds: BTreeSet::new(),
        learned_of_leak_on: None,
        exclusions: vec![Exclusion::Withdrawn],
    }
}

/// The people of one claim as possible plaintiffs: the claim's exclusions
/// for each, an adult other than the claimant excluded (they give their
/// own retainer), and a person already seen in the round excluded as a
/// duplicate.
async fn plaintiffs_of(
    state: &AppState,
    round: &filing_round::Model,
    model: &claim::Model,
    seen_people: &mut HashSet<String>,
) -> AppResult<Vec<PlaintiffInput>> {
    let db = state.db.conn();
    let status = status_of(model)?;
    let draft = load_draft(db, &state.keys, model, Parts::All).await?;
    let consent = crate::consent::service::state_of(state, db, model, &draft).await?;
    // A lawyer's verification resolves a possible-duplicate flag.
    let unresolved = model.possible_duplicate && status != ClaimStatus::Verified;
    let exclusions = round_exclusions(status, consent.current, unresolved, model.needs_reverification);
    let evidence_kinds: BTreeSet<String> = evidence::Entity::find()
        .filter(evidence::Column::ClaimId.eq(model.id))
        .all(db)
        .await?
        .into_iter()
        .map(|e| e.kind)
        .collect();
    let leaked: Vec<String> = serde_json::from_value(model.leaked_items.clone()).unwrap_or_default();
    let mut out = Vec::with_capacity(draft.persons.len());
    for (i, p) in draft.persons.iter().enumerate() {
        let mut own = exclusions.clone();
        let adult_other = i > 0 && !p.birth_date.is_minor_on(round.filing_date);
        if adult_other && !own.contains(&Exclusion::NoCurrentConsent) {
            own.push(Exclusion::NoCurrentConsent);
        }
        if own.is_empty() && !seen_people.insert(identity_index(&state.keys, p)) {
            own.push(Exclusion::UnresolvedDuplicate);
        }
        out.push(PlaintiffInput {
            claim_id: model.id,
            claim_number: model.number.clone(),
            position: i as u32,
            is_minor: p.birth_date.is_minor_on(round.filing_date),
            leaked_items: leaked.clone(),
            harm_kinds: draft.harms.iter().map(|h| h.kind).collect(),
            evidence_kinds: evidence_kinds.clone(),
            learned_of_leak_on: draft.learned_of_leak_on,
            exclusions: own,
        });
    }
    Ok(out)
}

/// A computed round, before or at freezing.
#[derive(Clone, Debug, Serialize)]
pub struct Preview {
    pub round: RoundView,
    pub policy_version: i32,
    pub policy_sha256: String,
    /// SHA-256 of the result's canonical JSON: equal inputs, equal hash.
    pub sha256: String,
    #[serde(flatten)]
    pub result: RoundResult,
}

async fn computed(
    state: &AppState,
    round: &filing_round::Model,
) -> AppResult<(tier_policy::Model, RoundResult, String)> {
    let policy_row = latest_policy(state, round.id).await?.ok_or(AppError::WrongState("round_has_no_policy"))?;
    let policy: TierPolicy =
        serde_json::from_str(&policy_row.body).map_err(|e| AppError::caused_by("stored policy", e))?;
    let people = gather(state, round).await?;
    let result = compute_round(&policy, &people, round.filing_date);
    let canonical = serde_json::to_vec(&result).map_err(|e| AppError::caused_by("round policy", e))?;
    let sha = hex::encode(Sha256::digest(&canonical));
    Ok((policy_row, result, sha))
}

/// Compute the round as it would be frozen now (open rounds only).
pub async fn compute(state: &AppState, user: &CurrentUser, id: Uuid) -> AppResult<Preview> {
    user.require(Role::Admin)?;
    let round = round_by_id(state, id).await?;
    if round.state != RoundState::Open.as_str() {
        return Err(AppError::WrongState("round_not_open"));
    }
    let (policy, result, sha256) = computed(state, &round).await?;
    let txn = state.db.begin_write().await?;
    audit::append(
        &txn,
        &user.actor(),
        Event::new("round.computed").subject("round", id).detail(serde_json::json!({
            "members": result.members.len(), "excluded": result.excluded.len(), "sha256": sha256
        })),
    )
    .await?;
    txn.commit().await?;
    Ok(Preview {
        round: view(state, &round).await?,
        policy_version: policy.version,
        policy_sha256: policy.sha256,
        sha256,
        result,
    })
}

/// Freeze: compute once more and give each member a plaintiff number (1, 2, …
/// in claim-number and position order). The round no longer changes.
pub async fn freeze(state: &AppState, user: &CurrentUser, id: Uuid) -> AppResult<Preview> {
    user.require(Role::Admin)?;
    let round = round_by_id(state, id).await?;
    if round.state != RoundState::Open.as_str() {
        return Err(AppError::WrongState("round_not_open"));
    }
    let (policy, result, sha256) = computed(state, &round).await?;
    let now = state.clock.now();
    let txn = state.db.begin_write().await?;
    let changed = filing_round::Entity::update_many()
        .col_expr(filing_round::Column::State, Expr::value(RoundState::Frozen.as_str()))
        .col_expr(filing_round::Column::ResultSha256, Expr::value(Some(sha256.clone())))
        .col_expr(filing_round::Column::FrozenAt, Expr::value(Some(now)))
        .col_expr(filing_round::Column::FrozenBy, Expr::value(Some(user.id)))
        .filter(filing_round::Column::Id.eq(id))
        .filter(filing_round::Column::State.eq(RoundState::Open.as_str()))
        .exec(&txn)
        .await?;
    if changed.rows_affected == 0 {
        return Err(AppError::WrongState("round_not_open"));
    }
    let rows: Vec<round_member::ActiveModel> = result
        .members
        .iter()
        .enumerate()
        .map(|(i, m)| round_member::ActiveModel {
            round_id: Set(id),
            plaintiff_number: Set(i as i32 + 1),
            claim_id: Set(m.claim_id),
            position: Set(m.position as i32),
            tier: Set(m.tier.clone()),
            amount_yen: Set(m.amount_yen as i64),
            points: Set(m.points as i32),
            reasons: Set(serde_json::to_string(&m.reasons).unwrap_or_default()),
            limitation_ended_on: Set(m.limitation_ended_on),
        })
        .collect();
    for chunk in rows.chunks(500) {
        round_member::Entity::insert_many(chunk.to_vec()).exec_without_returning(&txn).await?;
    }
    audit::append(
        &txn,
        &user.actor(),
        Event::new("round.frozen").subject("round", id).detail(serde_json::json!({
            "members": result.members.len(), "total_yen": result.total_yen, "sha256": sha256,
            "policy_version": policy.version
        })),
    )
    .await?;
    txn.commit().await?;
    let frozen = round_by_id(state, id).await?;
    Ok(Preview {
        round: view(state, &frozen).await?,
        policy_version: policy.version,
        policy_sha256: policy.sha256,
        sha256,
        result,
    })
}

/// A frozen round's plaintiff.
#[derive(Clone, Debug, Serialize)]
pub struct MemberView {
    pub plaintiff_number: i32,
    pub claim_id: Uuid,
    pub position: i32,
    pub tier: String,
    pub amount_yen: i64,
    pub points: i32,
    pub reasons: serde_json::Value,
    pub limitation_ended_on: Option<NaiveDate>,
}

pub async fn members(state: &AppState, user: &CurrentUser, id: Uuid) -> AppResult<Vec<MemberView>> {
    user.require(Role::Admin)?;
    round_by_id(state, id).await?;
    let rows = round_member::Entity::find()
        .filter(round_member::Column::RoundId.eq(id))
        .order_by_asc(round_member::Column::PlaintiffNumber)
        .all(state.db.conn())
        .await?;
    Ok(rows
        .into_iter()
        .map(|m| MemberView {
            plaintiff_number: m.plaintiff_number,
            claim_id: m.claim_id,
            position: m.position,
            tier: m.tier,
            amount_yen: m.amount_yen,
            points: m.points,
            reasons: serde_json::from_str(&m.reasons).unwrap_or_default(),
            limitation_ended_on: m.limitation_ended_on,
        })
        .collect())
}

/// Record that a frozen round was filed with the court (frozen → filed).
pub async fn mark_filed(state: &AppState, user: &CurrentUser, id: Uuid) -> AppResult<RoundView> {
    user.require(Role::Admin)?;
    round_by_id(state, id).await?;
    let txn = state.db.begin_write().await?;
    let changed = filing_round::Entity::update_many()
        .col_expr(filing_round::Column::State, Expr::value(RoundState::Filed.as_str()))
        .filter(filing_round::Column::Id.eq(id))
        .filter(filing_round::Column::State.eq(RoundState::Frozen.as_str()))
        .exec(&txn)
        .await?;
    if changed.rows_affected == 0 {
        return Err(AppError::WrongState("round_not_frozen"));
    }
    audit::append(&txn, &user.actor(), Event::new("round.filed").subject("round", id)).await?;
    txn.commit().await?;
    view(state, &round_by_id(state, id).await?).await
}
