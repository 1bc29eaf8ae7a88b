//! Claim use cases. Every function checks that the caller owns the claim
//! (a foreign or unknown id is `NotFound`), writes inside one transaction,
//! and appends an audit event in that same transaction.
use chrono::{DateTime, Utc};
use entities::{case, claim, harm, person};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, ExprTrait, QueryFilter, QueryOrder, QuerySelect, Set,
};
use serde::Serialize;
use uuid::Uuid;

use super::domain::{ClaimStatus, ContactSealed, Draft, DraftInput, Harm, HarmSealed, Person, PersonSealed, Relation};
use crate::audit::{self, Event};
use crate::auth::{CurrentUser, Role};
use crate::cases::service::{self as cases, Case};
use crate::crypto::{self, DataKey, Keyring};
use crate::domain::FieldErrors;
use crate::error::{AppError, AppResult};
use crate::AppState;

/// A claim without its personal data.
#[derive(Clone, Debug, Serialize)]
pub struct ClaimSummary {
    pub id: Uuid,
    pub number: String,
    pub status: ClaimStatus,
    pub case: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub submitted_at: Option<DateTime<Utc>>,
    pub withdrawn_at: Option<DateTime<Utc>>,
}

/// A claim with everything its owner filled in.
#[derive(Clone, Debug, Serialize)]
pub struct ClaimDetail {
    #[serde(flatten)]
    pub summary: ClaimSummary,
    #[serde(flatten)]
    pub draft: Draft,
    /// What must still be filled in before submission.
    pub missing: Vec<String>,
}

fn status_of(model: &claim::Model) -> AppResult<ClaimStatus> {
    ClaimStatus::parse(&model.status).ok_or_else(|| AppError::Internal(format!("unknown status {}", model.status)))
}

fn summary(model: &claim::Model, case_slug: &str) -> AppResult<ClaimSummary> {
    Ok(ClaimSummary {
        id: model.id,
        number: model.number.clone(),
        status: status_of(model)?,
        case: case_slug.to_string(),
        created_at: model.created_at,
        updated_at: model.updated_at,
        submitted_at: model.submitted_at,
        withdrawn_at: model.withdrawn_at,
    })
}

fn require_claimant(user: &CurrentUser) -> AppResult<()> {
    if user.role == Role::Claimant {
        Ok(())
    } else {
        Err(AppError::NotFound)
    }
}

/// The caller's own claim, or `NotFound`.
async fn own_claim(db: &impl ConnectionTrait, user: &CurrentUser, id: Uuid) -> AppResult<claim::Model> {
    claim::Entity::find_by_id(id).filter(claim::Column::ClaimantId.eq(user.id)).one(db).await?.ok_or(AppError::NotFound)
}

fn data_key(keys: &Keyring, model: &claim::Model) -> AppResult<DataKey> {
    let wrapped = model.wrapped_key.as_deref().ok_or(AppError::NotFound)?;
    Ok(keys.unwrap_data_key(wrapped, &model.id)?)
}

/// Decrypt a claim's draft.
async fn load_draft(db: &impl ConnectionTrait, keys: &Keyring, model: &claim::Model) -> AppResult<Draft> {
    let key = data_key(keys, model)?;
    let contact: ContactSealed = match &model.sealed {
        Some(bytes) => crypto::open_json(key.bytes(), bytes, model.id.as_bytes())?,
        None => ContactSealed::default(),
    };
    let persons = person::Entity::find()
        .filter(person::Column::ClaimId.eq(model.id))
        .order_by_asc(person::Column::Position)
        .all(db)
        .await?;
    let harms = harm::Entity::find()
        .filter(harm::Column::ClaimId.eq(model.id))
        .order_by_asc(harm::Column::Position)
        .all(db)
        .await?;
    let mut draft = Draft {
        address: contact.address,
        phone: contact.phone,
        email: contact.email,
        registration_code: contact.registration_code,
        leaked_items: serde_json::from_value(model.leaked_items.clone()).unwrap_or_default(),
        services: serde_json::from_value(model.services.clone()).unwrap_or_default(),
        apology_letter_received: model.apology_letter_received,
        apology_option: model.apology_option.clone(),
        learned_of_leak_on: model.learned_of_leak_on,
        ..Default::default()
    };
    for row in persons {
        let sealed: PersonSealed = crypto::open_json(key.bytes(), &row.sealed, row.id.as_bytes())?;
        let relation = Relation::parse(&row.relation).map_err(|_| AppError::Internal("bad relation".into()))?;
        draft.persons.push(Person {
            relation,
            family_name: sealed.family_name,
            given_name: sealed.given_name,
            family_name_kana: sealed.family_name_kana,
            given_name_kana: sealed.given_name_kana,
            birth_date: sealed.birth_date,
            gender: sealed.gender,
        });
    }
    for row in harms {
        let sealed: HarmSealed = crypto::open_json(key.bytes(), &row.sealed, row.id.as_bytes())?;
        let kind = super::domain::HarmKind::parse(&row.kind).map_err(|_| AppError::Internal("bad harm kind".into()))?;
        draft.harms.push(Harm {
            kind,
            date: row.occurred_on.map(crate::domain::PastDate::from_stored),
            sender: sealed.sender,
            note: sealed.note,
        });
    }
    Ok(draft)
}

/// Write the draft: the claim row's columns and sealed contact, and the
/// person and harm rows (replaced as a whole).
async fn store_draft(
    db: &impl ConnectionTrait,
    keys: &Keyring,
    model: &claim::Model,
    draft: &Draft,
) -> AppResult<claim::Model> {
    let key = data_key(keys, model)?;
    let today = crate::today();
    let contact = ContactSealed {
        address: draft.address.clone(),
        phone: draft.phone.clone(),
        email: draft.email.clone(),
        registration_code: draft.registration_code.clone(),
    };
    let mut active: claim::ActiveModel = model.clone().into();
    active.sealed = Set(Some(crypto::seal_json(key.bytes(), &contact, model.id.as_bytes())));
    active.leaked_items = Set(serde_json::json!(draft.leaked_items));
    active.services = Set(serde_json::json!(draft.services));
    active.apology_letter_received = Set(draft.apology_letter_received);
    active.registration_code_index =
        Set(draft.registration_code.as_ref().map(|c| keys.blind_index("registration-code", c.as_str())));
    active.apology_option = Set(draft.apology_option.clone());
    active.learned_of_leak_on = Set(draft.learned_of_leak_on);
    active.version = Set(model.version + 1);
    active.updated_at = Set(Utc::now());
    let updated = active.update(db).await?;

    person::Entity::delete_many().filter(person::Column::ClaimId.eq(model.id)).exec(db).await?;
    harm::Entity::delete_many().filter(harm::Column::ClaimId.eq(model.id)).exec(db).await?;
    let persons: Vec<person::ActiveModel> = draft
        .persons
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let id = Uuid::new_v4();
            let sealed = PersonSealed {
                family_name: p.family_name.clone(),
                given_name: p.given_name.clone(),
                family_name_kana: p.family_name_kana.clone(),
                given_name_kana: p.given_name_kana.clone(),
                birth_date: p.birth_date,
                gender: p.gender,
            };
            person::ActiveModel {
                id: Set(id),
                claim_id: Set(model.id),
                position: Set(i as i32),
                relation: Set(p.relation.as_str().into()),
                is_minor: Set(p.birth_date.is_minor_on(today)),
                sealed: Set(crypto::seal_json(key.bytes(), &sealed, id.as_bytes())),
                identity_index: Set(keys.blind_index("person-identity", &p.identity_key())),
            }
        })
        .collect();
    if !persons.is_empty() {
        person::Entity::insert_many(persons).exec(db).await?;
    }
    let harms: Vec<harm::ActiveModel> = draft
        .harms
        .iter()
        .enumerate()
        .map(|(i, h)| {
            let id = Uuid::new_v4();
            let sealed = HarmSealed { sender: h.sender.clone(), note: h.note.clone() };
            harm::ActiveModel {
                id: Set(id),
                claim_id: Set(model.id),
                position: Set(i as i32),
                kind: Set(h.kind.as_str().into()),
                occurred_on: Set(h.date.map(|d| d.date())),
                sealed: Set(crypto::seal_json(key.bytes(), &sealed, id.as_bytes())),
            }
        })
        .collect();
    if !harms.is_empty() {
        harm::Entity::insert_many(harms).exec(db).await?;
    }
    Ok(updated)
}

async fn detail(state: &AppState, model: &claim::Model, case_slug: &str) -> AppResult<ClaimDetail> {
    let draft = load_draft(state.db.conn(), &state.keys, model).await?;
    let missing = draft.missing_for_submit();
    Ok(ClaimDetail { summary: summary(model, case_slug)?, draft, missing })
}

/// Start a claim in a case. One claim per claimant per case: a second
/// attempt answers `Conflict("claim_exists")`.
pub async fn create_claim(state: &AppState, user: &CurrentUser, case_slug: &str) -> AppResult<ClaimSummary> {
    require_claimant(user)?;
    let case = cases::by_slug(state.db.conn(), case_slug).await?;
    if !case.is_open_on(crate::today()) {
        return Err(AppError::WrongState("intake_closed"));
    }
    let txn = state.db.begin_write().await?;
    let existing = claim::Entity::find()
        .filter(claim::Column::CaseId.eq(case.model.id))
        .filter(claim::Column::ClaimantId.eq(user.id))
        .one(&*txn)
        .await?;
    if existing.is_some() {
        return Err(AppError::Conflict("claim_exists"));
    }
    // Take the next number; the row lock (PostgreSQL) or the writer lock
    // (SQLite) makes this atomic.
    case::Entity::update_many()
        .col_expr(case::Column::NextClaimSeq, Expr::col(case::Column::NextClaimSeq).add(1))
        .filter(case::Column::Id.eq(case.model.id))
        .exec(&*txn)
        .await?;
    let seq = case::Entity::find_by_id(case.model.id)
        .one(&*txn)
        .await?
        .map(|c| c.next_claim_seq - 1)
        .ok_or(AppError::NotFound)?;
    let id = Uuid::new_v4();
    let now = Utc::now();
    let key = DataKey::generate();
    let model = claim::ActiveModel {
        id: Set(id),
        case_id: Set(case.model.id),
        claimant_id: Set(user.id),
        number: Set(format!("{}-{:06}", case.model.claim_prefix, seq)),
        status: Set(ClaimStatus::Draft.as_str().into()),
        wrapped_key: Set(Some(state.keys.wrap_data_key(&key, &id))),
        sealed: Set(None),
        leaked_items: Set(serde_json::json!([])),
        services: Set(serde_json::json!([])),
        apology_letter_received: Set(None),
        registration_code_index: Set(None),
        apology_option: Set(None),
        learned_of_leak_on: Set(None),
        possible_duplicate: Set(false),
        version: Set(0),
        submitted_at: Set(None),
        withdrawn_at: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(&*txn)
    .await?;
    audit::append(
        &*txn,
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
        let case = cases::by_id(state.db.conn(), row.case_id).await?;
        out.push(summary(&row, &case.model.slug)?);
    }
    Ok(out)
}

/// The caller's claim with its draft, and its case.
pub async fn get_own(state: &AppState, user: &CurrentUser, id: Uuid) -> AppResult<(ClaimDetail, Case)> {
    let model = own_claim(state.db.conn(), user, id).await?;
    let case = cases::by_id(state.db.conn(), model.case_id).await?;
    Ok((detail(state, &model, &case.model.slug).await?, case))
}

/// Change the draft through `edit`, which may refuse with field errors.
/// Only a `draft` or `needs_info` claim can change (else `WrongState`).
pub async fn update_draft<F>(
    state: &AppState,
    user: &CurrentUser,
    id: Uuid,
    section: &'static str,
    edit: F,
) -> AppResult<ClaimDetail>
where
    F: FnOnce(&mut Draft, &Case) -> Result<(), FieldErrors>,
{
    let txn = state.db.begin_write().await?;
    let model = own_claim(&*txn, user, id).await?;
    if !status_of(&model)?.is_editable() {
        return Err(AppError::WrongState("claim_not_editable"));
    }
    let case = cases::by_id(&*txn, model.case_id).await?;
    let mut draft = load_draft(&*txn, &state.keys, &model).await?;
    edit(&mut draft, &case)?;
    let updated = store_draft(&*txn, &state.keys, &model, &draft).await?;
    audit::append(
        &*txn,
        &user.actor(),
        Event::new("claim.draft_saved")
            .subject("claim", id)
            .owner(user.id)
            .detail(serde_json::json!({"section": section, "version": updated.version})),
    )
    .await?;
    txn.commit().await?;
    let missing = draft.missing_for_submit();
    Ok(ClaimDetail { summary: summary(&updated, &case.model.slug)?, draft, missing })
}

/// Replace the whole draft (the API's PUT).
pub async fn replace_draft(
    state: &AppState,
    user: &CurrentUser,
    id: Uuid,
    input: &DraftInput,
) -> AppResult<ClaimDetail> {
    update_draft(state, user, id, "all", |draft, case| {
        *draft = input.parse(&case.catalogue, crate::today())?;
        Ok(())
    })
    .await
}

/// Submit: the draft must be complete. Flags possible duplicates (another
/// live claim in the same case naming a person with the same kana name and
/// birth date) for the lawyers; the claimant is not told.
pub async fn submit(state: &AppState, user: &CurrentUser, id: Uuid) -> AppResult<ClaimDetail> {
    let txn = state.db.begin_write().await?;
    let model = own_claim(&*txn, user, id).await?;
    let status = status_of(&model)?;
    if status == ClaimStatus::Submitted {
        // A retried submission is not an error: the claim is already in.
        txn.commit().await?;
        let case = cases::by_id(state.db.conn(), model.case_id).await?;
        return detail(state, &model, &case.model.slug).await;
    }
    if !status.can_submit() {
        return Err(AppError::WrongState("claim_not_submittable"));
    }
    let case = cases::by_id(&*txn, model.case_id).await?;
    let draft = load_draft(&*txn, &state.keys, &model).await?;
    let missing = draft.missing_for_submit();
    if !missing.is_empty() {
        return Err(AppError::Incomplete(missing));
    }
    let duplicates = find_duplicate_claims(&*txn, &model).await?;
    // Lock this claim and its possible duplicates in id order, so two
    // claimants submitting duplicates of each other cannot deadlock.
    let mut to_lock = duplicates.clone();
    to_lock.push(model.id);
    to_lock.sort();
    let locked = claim::Entity::find()
        .filter(claim::Column::Id.is_in(to_lock))
        .order_by_asc(claim::Column::Id)
        .lock_exclusive()
        .all(&*txn)
        .await?;
    let model = locked.into_iter().find(|c| c.id == id).ok_or(AppError::NotFound)?;
    let status = status_of(&model)?;
    if !status.can_submit() {
        return Err(AppError::WrongState("claim_not_submittable"));
    }
    let now = Utc::now();
    let mut active: claim::ActiveModel = model.clone().into();
    active.status = Set(ClaimStatus::Submitted.as_str().into());
    active.submitted_at = Set(Some(model.submitted_at.unwrap_or(now)));
    active.possible_duplicate = Set(!duplicates.is_empty());
    active.version = Set(model.version + 1);
    active.updated_at = Set(now);
    let updated = active.update(&*txn).await?;
    if !duplicates.is_empty() {
        claim::Entity::update_many()
            .col_expr(claim::Column::PossibleDuplicate, Expr::value(true))
            .filter(claim::Column::Id.is_in(duplicates.clone()))
            .exec(&*txn)
            .await?;
    }
    audit::append(
        &*txn,
        &user.actor(),
        Event::new("claim.submitted")
            .subject("claim", id)
            .owner(user.id)
            .detail(serde_json::json!({"from": status.as_str(), "possible_duplicates": duplicates.len()})),
    )
    .await?;
    txn.commit().await?;
    let missing = draft.missing_for_submit();
    Ok(ClaimDetail { summary: summary(&updated, &case.model.slug)?, draft, missing })
}

/// Other live claims in the same case that name one of this claim's persons.
pub async fn find_duplicate_claims(db: &impl ConnectionTrait, model: &claim::Model) -> AppResult<Vec<Uuid>> {
    let indexes: Vec<String> = person::Entity::find()
        .filter(person::Column::ClaimId.eq(model.id))
        .all(db)
        .await?
        .into_iter()
        .map(|p| p.identity_index)
        .collect();
    if indexes.is_empty() {
        return Ok(vec![]);
    }
    let candidates: Vec<Uuid> = person::Entity::find()
        .filter(person::Column::IdentityIndex.is_in(indexes))
        .filter(person::Column::ClaimId.ne(model.id))
        .all(db)
        .await?
        .into_iter()
        .map(|p| p.claim_id)
        .collect();
    if candidates.is_empty() {
        return Ok(vec![]);
    }
    let mut claims: Vec<Uuid> = claim::Entity::find()
        .filter(claim::Column::Id.is_in(candidates))
        .filter(claim::Column::CaseId.eq(model.case_id))
        .filter(claim::Column::Status.ne(ClaimStatus::Withdrawn.as_str()))
        .all(db)
        .await?
        .into_iter()
        .map(|c| c.id)
        .collect();
    claims.sort();
    claims.dedup();
    Ok(claims)
}

/// Withdraw from the suit. Final; the claim and its history are kept.
pub async fn withdraw(state: &AppState, user: &CurrentUser, id: Uuid) -> AppResult<ClaimSummary> {
    let txn = state.db.begin_write().await?;
    let model = own_claim(&*txn, user, id).await?;
    let status = status_of(&model)?;
    if !status.can_withdraw() {
        return Err(AppError::WrongState("claim_already_withdrawn"));
    }
    let case = cases::by_id(&*txn, model.case_id).await?;
    let now = Utc::now();
    let mut active: claim::ActiveModel = model.clone().into();
    active.status = Set(ClaimStatus::Withdrawn.as_str().into());
    active.withdrawn_at = Set(Some(now));
    active.version = Set(model.version + 1);
    active.updated_at = Set(now);
    let updated = active.update(&*txn).await?;
    audit::append(
        &*txn,
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
