//! The two layouts of a claim's draft (`claims.document_format`) and the
//! data steps between them. In the document layout (`DOCUMENT`, what the
//! portal writes) the claim row holds the whole draft's personal part as
//! one sealed value, and `persons` rows are index rows only. In the row
//! layout (`ROWS`, what earlier versions wrote) the claim row holds the
//! contact details and each person and harm is a sealed row of its own.
//!
//! The portal reads both, upgrades every claim at start
//! (`upgrade_documents`), and writes back to the row layout only on the
//! operator's word before a rollback (`app claims downgrade-documents`,
//! `downgrade_documents`), which the schema migration's down step requires.
use chrono::{DateTime, Utc};
use entities::{claim, harm, person};
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, QueryTrait, Set};
use uuid::Uuid;

use super::domain::{ContactSealed, Draft, Harm, HarmKind, HarmSealed, Person, PersonSealed, Relation};
use super::store::{self, data_key, identity_index, Document, Parts};
use crate::audit::{self, Actor, Event};
use crate::crypto::{self, DataKey, Keyring};
use crate::db::{Db, WriteTx};
use crate::domain::PastDate;
use crate::error::{AppError, AppResult};

/// The contact details in the claim row, people and harms as sealed rows.
pub const ROWS: i16 = 1;
/// The whole draft's personal part sealed in the claim row.
pub const DOCUMENT: i16 = 2;

/// How many claims one transaction of a data step rewrites.
const BATCH: u64 = 100;

/// A row-layout claim's people (and harms), in position order.
pub(super) async fn rows_of(
    db: &impl ConnectionTrait,
    claim_id: Uuid,
    parts: Parts,
) -> AppResult<(Vec<person::Model>, Vec<harm::Model>)> {
    let persons = person::Entity::find()
        .filter(person::Column::ClaimId.eq(claim_id))
        .order_by_asc(person::Column::Position)
        .all(db)
        .await?;
    let harms = match parts {
        Parts::All => {
            harm::Entity::find()
                .filter(harm::Column::ClaimId.eq(claim_id))
                .order_by_asc(harm::Column::Position)
                .all(db)
                .await?
        }
        Parts::WithoutHarms => vec![],
    };
    Ok((persons, harms))
}

/// A row-layout claim's document, opened from its claim row and its rows.
pub(super) fn from_rows(
    key: &DataKey,
    model: &claim::Model,
    persons: Vec<person::Model>,
    harms: Vec<harm::Model>,
) -> AppResult<Document> {
    let mut document = Document::default();
    if let Some(bytes) = &model.sealed {
        document.contact = crypto::open_json(key.bytes(), bytes, model.id.as_bytes())?;
    }
    for row in persons {
        let sealed: PersonSealed = crypto::open_json(key.bytes(), &row.sealed, row.id.as_bytes())?;
        let relation = Relation::parse(&row.relation).map_err(|_| AppError::internal("bad relation"))?;
        document.persons.push(Person {
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
        let kind = HarmKind::parse(&row.kind).map_err(|_| AppError::internal("bad harm kind"))?;
        document.harms.push(Harm {
            kind,
            date: row.occurred_on.map(|d| PastDate::from_stored(d, row.occurred_month_only)),
            sender: sealed.sender,
            note: sealed.note,
        });
    }
    Ok(document)
}

/// Rewrite every row-layout claim as a document, a batch per transaction,
/// each claim's rewrite audited with it. The draft, its status and its
/// last-saved time are unchanged; the version moves on, so an edit begun
/// before is refused as a conflict rather than lost. Returns how many
/// claims were rewritten.
pub async fn upgrade_documents(db: &Db, keys: &Keyring) -> AppResult<u64> {
    rewrite_all(db, keys, DOCUMENT, "claim.document_upgraded").await
}

/// Write every document-layout claim back in the row layout, for a
/// rollback to a version that reads only rows. Returns how many.
pub async fn downgrade_documents(db: &Db, keys: &Keyring) -> AppResult<u64> {
    rewrite_all(db, keys, ROWS, "claim.document_downgraded").await
}

/// Rewrite every claim not in layout `to` into it, audited as `action`.
async fn rewrite_all(db: &Db, keys: &Keyring, to: i16, action: &'static str) -> AppResult<u64> {
    let from = if to == DOCUMENT { ROWS } else { DOCUMENT };
    let mut done = 0;
    loop {
        let batch = in_format(db, from).await?;
        if batch.is_empty() {
            return Ok(done);
        }
        let txn = db.begin_write().await?;
        for model in batch {
            let rewritten = if nothing_sealed(&model) {
                set_format(&txn, &model, to).await?
            } else {
                let draft = store::load_draft(&txn, keys, &model, Parts::All).await?;
                match to {
                    // As of its last save: the index rows' ages as they were.
                    DOCUMENT => {
                        store::store_draft(&txn, keys, &model, &draft, &draft, false, model.updated_at).await?.is_some()
                    }
                    _ => write_rows(&txn, keys, &model, &draft, model.updated_at).await?,
                }
            };
            // Changed meanwhile (saved by another server): the next batch
            // finds it again if it is still in the old layout.
            if !rewritten {
                continue;
            }
            audit_rewrite(&txn, &model, action).await?;
            done += 1;
        }
        txn.commit().await?;
    }
}

async fn in_format(db: &Db, format: i16) -> AppResult<Vec<claim::Model>> {
    Ok(claim::Entity::find()
        .filter(claim::Column::DocumentFormat.eq(format))
        .order_by_asc(claim::Column::Id)
        .limit(BATCH)
        .all(db.conn())
        .await?)
}

/// Never saved, or erased (its key destroyed): no draft to rewrite.
fn nothing_sealed(model: &claim::Model) -> bool {
    model.sealed.is_none() || model.wrapped_key.is_none()
}

/// A claim with nothing sealed changes layout by its mark alone (if it is
/// still at the version read).
async fn set_format(txn: &WriteTx, model: &claim::Model, format: i16) -> AppResult<bool> {
    let changed = claim::Entity::update_many()
        .col_expr(claim::Column::DocumentFormat, Expr::value(format))
        .filter(claim::Column::Id.eq(model.id))
        .filter(claim::Column::Version.eq(model.version))
        .exec(txn)
        .await?;
    Ok(changed.rows_affected > 0)
}

async fn audit_rewrite(txn: &WriteTx, model: &claim::Model, action: &'static str) -> AppResult<()> {
    let event = Event::new(action).subject("claim", model.id).owner(model.claimant_id);
    audit::append(txn, &Actor::default(), event).await?;
    Ok(())
}

/// The row layout's write: the contact details sealed in the claim row,
/// each person and harm a sealed row of its own. `false` if the claim
/// changed since it was read.
async fn write_rows(
    txn: &WriteTx,
    keys: &Keyring,
    model: &claim::Model,
    draft: &Draft,
    as_of: DateTime<Utc>,
) -> AppResult<bool> {
    let key = data_key(keys, model)?;
    let contact = ContactSealed {
        address: draft.address.clone(),
        phone: draft.phone.clone(),
        email: draft.email.clone(),
        registration_code: draft.registration_code.clone(),
    };
    let changed = claim::Entity::update_many()
        .col_expr(claim::Column::Sealed, Expr::value(crypto::seal_json(key.bytes(), &contact, model.id.as_bytes())))
        .col_expr(claim::Column::DocumentFormat, Expr::value(ROWS))
        .col_expr(claim::Column::Version, Expr::value(model.version + 1))
        .filter(claim::Column::Id.eq(model.id))
        .filter(claim::Column::Version.eq(model.version))
        .exec(txn)
        .await?;
    if changed.rows_affected == 0 {
        return Ok(false);
    }
    person::Entity::delete_many().filter(person::Column::ClaimId.eq(model.id)).exec(txn).await?;
    let today = crate::today_of(as_of);
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
    let backend = txn.get_database_backend();
    if !persons.is_empty() {
        txn.write_later(person::Entity::insert_many(persons).build(backend)).await?;
    }
    if !harms.is_empty() {
        txn.write_later(harm::Entity::insert_many(harms).build(backend)).await?;
    }
    Ok(true)
}
