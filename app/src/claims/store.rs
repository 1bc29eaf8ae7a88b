//! A claim's storage, below every capability that works on claims: who
//! owns a claim, its data key, its draft sealed with that key and written
//! under optimistic concurrency, the identity blind indexes, the status as
//! stored. Intake, evidence, consent, review, rounds and "my data" call it;
//! it calls none of them.
use chrono::{DateTime, Utc};
use entities::{claim, harm, person};
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QueryTrait, Set};
use serde::Serialize;
use uuid::Uuid;

use super::domain::{ClaimStatus, ContactSealed, Draft, Harm, HarmSealed, Person, PersonSealed, Relation};
use crate::auth::{CurrentUser, Role};
use crate::crypto::{self, DataKey, Keyring};
use crate::domain::PastDate;
use crate::error::{AppError, AppResult};

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
    /// Identity details were corrected after submission: a lawyer checks again.
    pub needs_reverification: bool,
}

pub fn status_of(model: &claim::Model) -> AppResult<ClaimStatus> {
    ClaimStatus::parse(&model.status).ok_or_else(|| AppError::internal(format!("unknown status {}", model.status)))
}

pub fn summary(model: &claim::Model, case_slug: &str) -> AppResult<ClaimSummary> {
    Ok(ClaimSummary {
        id: model.id,
        number: model.number.clone(),
        status: status_of(model)?,
        case: case_slug.to_string(),
        created_at: model.created_at,
        updated_at: model.updated_at,
        submitted_at: model.submitted_at,
        withdrawn_at: model.withdrawn_at,
        needs_reverification: model.needs_reverification,
    })
}

pub fn require_claimant(user: &CurrentUser) -> AppResult<()> {
    if user.role == Role::Claimant {
        Ok(())
    } else {
        Err(AppError::NotFound)
    }
}

/// The caller's own claim, or `NotFound`.
pub async fn own_claim(db: &impl ConnectionTrait, user: &CurrentUser, id: Uuid) -> AppResult<claim::Model> {
    claim::Entity::find_by_id(id).filter(claim::Column::ClaimantId.eq(user.id)).one(db).await?.ok_or(AppError::NotFound)
}

/// The caller's own claim and its draft without the harm diary, read in
/// one query (the claim joined with its people).
pub async fn own_claim_and_draft(
    db: &impl ConnectionTrait,
    keys: &Keyring,
    user: &CurrentUser,
    id: Uuid,
) -> AppResult<(claim::Model, Draft)> {
    let mut found = claim::Entity::find_by_id(id)
        .filter(claim::Column::ClaimantId.eq(user.id))
        .find_with_related(person::Entity)
        .order_by_asc(person::Column::Position)
        .all(db)
        .await?;
    let (model, persons) = found.pop().ok_or(AppError::NotFound)?;
    let draft = assemble_draft(keys, &model, persons, vec![])?;
    Ok((model, draft))
}

pub fn data_key(keys: &Keyring, model: &claim::Model) -> AppResult<DataKey> {
    let wrapped = model.wrapped_key.as_deref().ok_or(AppError::NotFound)?;
    Ok(keys.unwrap_data_key(wrapped, &model.id)?)
}

/// What of the draft to read.
#[derive(Clone, Copy, PartialEq)]
pub enum Parts {
    All,
    /// Everything but the harm diary (enough to check a submission).
    WithoutHarms,
}

/// Decrypt a claim's draft.
pub async fn load_draft(
    db: &impl ConnectionTrait,
    keys: &Keyring,
    model: &claim::Model,
    parts: Parts,
) -> AppResult<Draft> {
    let persons = person::Entity::find()
        .filter(person::Column::ClaimId.eq(model.id))
        .order_by_asc(person::Column::Position)
        .all(db)
        .await?;
    let harms = match parts {
        Parts::All => {
            harm::Entity::find()
                .filter(harm::Column::ClaimId.eq(model.id))
                .order_by_asc(harm::Column::Position)
                .all(db)
                .await?
        }
        Parts::WithoutHarms => vec![],
    };
    assemble_draft(keys, model, persons, harms)
}

/// Decrypt a draft from its rows, read by the caller (`load_draft`, or a
/// batched read of many claims): persons and harms in position order.
pub fn assemble_draft(
    keys: &Keyring,
    model: &claim::Model,
    persons: Vec<person::Model>,
    harms: Vec<harm::Model>,
) -> AppResult<Draft> {
    let key = data_key(keys, model)?;
    let contact: ContactSealed = match &model.sealed {
        Some(bytes) => crypto::open_json(key.bytes(), bytes, model.id.as_bytes())?,
        None => ContactSealed::default(),
    };
    let mut draft = Draft {
        address: contact.address,
        phone: contact.phone,
        email: contact.email,
        registration_code: contact.registration_code,
        leaked_items: serde_json::from_value(model.leaked_items.clone()).unwrap_or_default(),
        services: serde_json::from_value(model.services.clone()).unwrap_or_default(),
        apology_letter_received: model.apology_letter_received,
        apology_option: model.apology_option.clone(),
        learned_of_leak_on: model.learned_of_leak_on.map(|d| PastDate::from_stored(d, model.learned_month_only)),
        ..Default::default()
    };
    for row in persons {
        let sealed: PersonSealed = crypto::open_json(key.bytes(), &row.sealed, row.id.as_bytes())?;
        let relation = Relation::parse(&row.relation).map_err(|_| AppError::internal("bad relation"))?;
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
        let kind = super::domain::HarmKind::parse(&row.kind).map_err(|_| AppError::internal("bad harm kind"))?;
        draft.harms.push(Harm {
            kind,
            date: row.occurred_on.map(|d| PastDate::from_stored(d, row.occurred_month_only)),
            sender: sealed.sender,
            note: sealed.note,
        });
    }
    Ok(draft)
}

/// Write the draft over the one loaded at `model.version`: the claim row
/// (only if nobody changed it since — optimistic concurrency), and the
/// person and harm rows, replaced as a whole. `Ok(None)` means the claim
/// changed meanwhile.
pub async fn store_draft(
    db: &crate::db::WriteTx,
    keys: &Keyring,
    model: &claim::Model,
    before: &Draft,
    draft: &Draft,
    correction: bool,
    now: DateTime<Utc>,
) -> AppResult<Option<claim::Model>> {
    let key = data_key(keys, model)?;
    let today = crate::today_of(now);
    let contact = ContactSealed {
        address: draft.address.clone(),
        phone: draft.phone.clone(),
        email: draft.email.clone(),
        registration_code: draft.registration_code.clone(),
    };
    let mut updated = model.clone();
    updated.sealed = Some(crypto::seal_json(key.bytes(), &contact, model.id.as_bytes()));
    updated.leaked_items = serde_json::json!(draft.leaked_items);
    updated.services = serde_json::json!(draft.services);
    updated.apology_letter_received = draft.apology_letter_received;
    updated.registration_code_index =
        draft.registration_code.as_ref().map(|c| keys.blind_index("registration-code", c.as_str()));
    updated.apology_option = draft.apology_option.clone();
    updated.learned_of_leak_on = draft.learned_of_leak_on.map(|d| d.first());
    updated.learned_month_only = draft.learned_of_leak_on.is_some_and(|d| d.month_only());
    updated.version = model.version + 1;
    updated.updated_at = now;
    updated.needs_reverification = model.needs_reverification || correction;
    let changed = claim::Entity::update_many()
        .col_expr(claim::Column::Sealed, Expr::value(updated.sealed.clone()))
        .col_expr(claim::Column::LeakedItems, Expr::value(updated.leaked_items.clone()))
        .col_expr(claim::Column::Services, Expr::value(updated.services.clone()))
        .col_expr(claim::Column::ApologyLetterReceived, Expr::value(updated.apology_letter_received))
        .col_expr(claim::Column::RegistrationCodeIndex, Expr::value(updated.registration_code_index.clone()))
        .col_expr(claim::Column::ApologyOption, Expr::value(updated.apology_option.clone()))
        .col_expr(claim::Column::LearnedOfLeakOn, Expr::value(updated.learned_of_leak_on))
        .col_expr(claim::Column::LearnedMonthOnly, Expr::value(updated.learned_month_only))
        .col_expr(claim::Column::Version, Expr::value(updated.version))
        .col_expr(claim::Column::UpdatedAt, Expr::value(updated.updated_at))
        .col_expr(claim::Column::NeedsReverification, Expr::value(updated.needs_reverification))
        .filter(claim::Column::Id.eq(model.id))
        .filter(claim::Column::Version.eq(model.version))
        .exec(db)
        .await?;
    if changed.rows_affected == 0 {
        return Ok(None);
    }
    // The version check above guarantees the rows still match `before`.
    if !before.persons.is_empty() {
        person::Entity::delete_many().filter(person::Column::ClaimId.eq(model.id)).exec(db).await?;
    }
    if !before.harms.is_empty() {
        harm::Entity::delete_many().filter(harm::Column::ClaimId.eq(model.id)).exec(db).await?;
    }
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
                identity_index: Set(identity_index(keys, p)),
            }
        })
        .collect();
    // Nothing waits on these inserts: on SQLite they go with the commit.
    let backend = db.get_database_backend();
    if !persons.is_empty() {
        db.write_later(person::Entity::insert_many(persons).build(backend)).await?;
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
                occurred_on: Set(h.date.map(|d| d.first())),
                occurred_month_only: Set(h.date.is_some_and(|d| d.month_only())),
                sealed: Set(crypto::seal_json(key.bytes(), &sealed, id.as_bytes())),
            }
        })
        .collect();
    if !harms.is_empty() {
        db.write_later(harm::Entity::insert_many(harms).build(backend)).await?;
    }
    Ok(Some(updated))
}

pub fn identity_index(keys: &Keyring, person: &Person) -> String {
    keys.blind_index("person-identity", &person.identity_key())
}
