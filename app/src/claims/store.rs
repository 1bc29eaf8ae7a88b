//! A claim's storage, below every capability that works on claims: who
//! owns a claim, its data key, its draft sealed with that key and written
//! under optimistic concurrency, the identity blind indexes, the status as
//! stored. Intake, evidence, consent, review, rounds and "my data" call it;
//! it calls none of them.
use chrono::{DateTime, Utc};
use entities::{claim, harm, person};
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, Iterable, ModelTrait, QueryFilter, QueryTrait, Set};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::documents::{self, DOCUMENT};
use super::domain::{ClaimStatus, ContactSealed, Draft, Harm, Person};
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

/// The caller's own claim and its draft, read in one query (the claim's
/// document; a claim still in the row layout also reads its people).
pub async fn own_claim_and_draft(
    db: &impl ConnectionTrait,
    keys: &Keyring,
    user: &CurrentUser,
    id: Uuid,
) -> AppResult<(claim::Model, Draft)> {
    let model = own_claim(db, user, id).await?;
    let draft = load_draft(db, keys, &model, Parts::WithoutHarms).await?;
    Ok((model, draft))
}

pub fn data_key(keys: &Keyring, model: &claim::Model) -> AppResult<DataKey> {
    let wrapped = model.wrapped_key.as_deref().ok_or(AppError::NotFound)?;
    Ok(keys.unwrap_data_key(wrapped, &model.id)?)
}

/// What of the draft to read. A claim in the document layout is read
/// whole either way; the choice saves a query on the row layout.
#[derive(Clone, Copy, PartialEq)]
pub enum Parts {
    All,
    /// Everything but the harm diary (enough to check a submission).
    WithoutHarms,
}

/// Decrypt a claim's draft: from its row alone in the document layout,
/// with its people (and harms) rows in the row layout.
pub async fn load_draft(
    db: &impl ConnectionTrait,
    keys: &Keyring,
    model: &claim::Model,
    parts: Parts,
) -> AppResult<Draft> {
    if model.document_format == DOCUMENT {
        return assemble_draft(keys, model, vec![], vec![]);
    }
    let (persons, harms) = documents::rows_of(db, model.id, parts).await?;
    assemble_draft(keys, model, persons, harms)
}

/// The sealed part of a claim in the document layout: everything personal
/// the claimant filled in, sealed as one value with the claim's key.
#[derive(Default, Serialize, Deserialize)]
pub(super) struct Document {
    #[serde(flatten)]
    pub(super) contact: ContactSealed,
    pub(super) persons: Vec<Person>,
    pub(super) harms: Vec<Harm>,
}

/// The associated data a document is sealed under: the claim and the
/// layout, so a row-layout contact value cannot pass for a document.
fn document_aad(id: Uuid) -> Vec<u8> {
    [id.as_bytes().as_slice(), b"/document"].concat()
}

/// Decrypt a draft. In the document layout the claim row holds it all; in
/// the row layout `persons` and `harms` are its rows in position order,
/// read by the caller (`load_draft`, or a batched read of many claims).
pub fn assemble_draft(
    keys: &Keyring,
    model: &claim::Model,
    persons: Vec<person::Model>,
    harms: Vec<harm::Model>,
) -> AppResult<Draft> {
    let key = data_key(keys, model)?;
    let document = match (&model.sealed, model.document_format) {
        (None, _) => Document::default(),
        (Some(bytes), DOCUMENT) => crypto::open_json(key.bytes(), bytes, &document_aad(model.id))?,
        (Some(_), _) => documents::from_rows(&key, model, persons, harms)?,
    };
    Ok(Draft {
        persons: document.persons,
        address: document.contact.address,
        phone: document.contact.phone,
        email: document.contact.email,
        registration_code: document.contact.registration_code,
        leaked_items: serde_json::from_value(model.leaked_items.clone()).unwrap_or_default(),
        services: serde_json::from_value(model.services.clone()).unwrap_or_default(),
        apology_letter_received: model.apology_letter_received,
        apology_option: model.apology_option.clone(),
        learned_of_leak_on: model.learned_of_leak_on.map(|d| PastDate::from_stored(d, model.learned_month_only)),
        harms: document.harms,
    })
}

/// Write the draft over the one loaded at `model.version`: the claim row,
/// which holds the sealed document (only if nobody changed it since:
/// optimistic concurrency), and, when the people changed, their index
/// rows. A claim still in the row layout moves to the document layout.
/// `Ok(None)` means the claim changed meanwhile.
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
    let document = Document {
        contact: ContactSealed {
            address: draft.address.clone(),
            phone: draft.phone.clone(),
            email: draft.email.clone(),
            registration_code: draft.registration_code.clone(),
        },
        persons: draft.persons.clone(),
        harms: draft.harms.clone(),
    };
    let mut updated = model.clone();
    updated.sealed = Some(crypto::seal_json(key.bytes(), &document, &document_aad(model.id)));
    updated.document_format = DOCUMENT;
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
    if !update_if_unchanged(db, model, &updated).await? {
        return Ok(None);
    }
    // The version check above guarantees the rows still match `before`.
    let rows_layout = model.document_format != DOCUMENT;
    if rows_layout && !before.harms.is_empty() {
        harm::Entity::delete_many().filter(harm::Column::ClaimId.eq(model.id)).exec(db).await?;
    }
    if rows_layout || before.persons != draft.persons {
        if !before.persons.is_empty() {
            person::Entity::delete_many().filter(person::Column::ClaimId.eq(model.id)).exec(db).await?;
        }
        let rows = index_rows(keys, model.id, &draft.persons, crate::today_of(now));
        // Nothing waits on these inserts: on SQLite they go with the commit.
        if !rows.is_empty() {
            db.write_later(person::Entity::insert_many(rows).build(db.get_database_backend())).await?;
        }
    }
    Ok(Some(updated))
}

/// Write the columns in which `after` differs from `before`, only if the
/// claim is still at `before.version` (optimistic concurrency); `false` if
/// it changed meanwhile. Every change to a claim row goes through here.
pub async fn update_if_unchanged(
    db: &impl ConnectionTrait,
    before: &claim::Model,
    after: &claim::Model,
) -> AppResult<bool> {
    let mut update = claim::Entity::update_many();
    for column in claim::Column::iter() {
        let value = after.get(column);
        if before.get(column) != value {
            update = update.col_expr(column, Expr::value(value));
        }
    }
    let changed = update
        .filter(claim::Column::Id.eq(before.id))
        .filter(claim::Column::Version.eq(before.version))
        .exec(db)
        .await?;
    Ok(changed.rows_affected > 0)
}

/// The people's index rows of a claim in the document layout: what the
/// duplicate and roster queries need, nothing sealed.
fn index_rows(
    keys: &Keyring,
    claim_id: Uuid,
    persons: &[Person],
    today: chrono::NaiveDate,
) -> Vec<person::ActiveModel> {
    persons
        .iter()
        .enumerate()
        .map(|(i, p)| person::ActiveModel {
            id: Set(Uuid::new_v4()),
            claim_id: Set(claim_id),
            position: Set(i as i32),
            relation: Set(p.relation.as_str().into()),
            is_minor: Set(p.birth_date.is_minor_on(today)),
            sealed: Set(vec![]),
            identity_index: Set(identity_index(keys, p)),
        })
        .collect()
}

pub fn identity_index(keys: &Keyring, person: &Person) -> String {
    keys.blind_index("person-identity", &person.identity_key())
}
