use chrono::{DateTime, SubsecRound, Utc};
use entities::audit_event;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseBackend, DatabaseTransaction, DbErr, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, Set, SqlErr, Statement,
};
use serde::Serialize;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::auth::Role;
use crate::db::WriteTx;

const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";
/// Advisory-lock key that serialises chain appends on PostgreSQL.
/// The PostgreSQL advisory lock every audited transaction takes (tests hold it
/// to stop a write at its audit append).
pub const CHAIN_LOCK_KEY: i64 = 0x6175_6469_7400;

/// Who is acting, from where.
#[derive(Clone, Debug, Default)]
pub struct Actor {
    pub user_id: Option<Uuid>,
    pub role: Option<Role>,
    pub ip: Option<String>,
}

/// One thing that happened. `detail` must hold no personal data.
#[derive(Debug)]
pub struct Event {
    pub action: &'static str,
    pub subject_type: Option<&'static str>,
    pub subject_id: Option<Uuid>,
    pub owner_id: Option<Uuid>,
    pub detail: serde_json::Value,
}

impl Event {
    pub fn new(action: &'static str) -> Self {
        Self { action, subject_type: None, subject_id: None, owner_id: None, detail: serde_json::json!({}) }
    }
    pub fn subject(mut self, kind: &'static str, id: Uuid) -> Self {
        self.subject_type = Some(kind);
        self.subject_id = Some(id);
        self
    }
    pub fn owner(mut self, owner: Uuid) -> Self {
        self.owner_id = Some(owner);
        self
    }
    pub fn detail(mut self, detail: serde_json::Value) -> Self {
        self.detail = detail;
        self
    }
}

#[allow(clippy::too_many_arguments)]
fn chain_hash(
    seq: i64,
    at: &DateTime<Utc>,
    actor_id: &Option<Uuid>,
    actor_role: &Option<String>,
    action: &str,
    subject_type: &Option<String>,
    subject_id: &Option<Uuid>,
    owner_id: &Option<Uuid>,
    ip: &Option<String>,
    detail: &str,
    prev_hash: &str,
) -> String {
    // A JSON array is an unambiguous encoding of the fields.
    let canonical = serde_json::json!([
        seq,
        at.timestamp_micros(),
        actor_id,
        actor_role,
        action,
        subject_type,
        subject_id,
        owner_id,
        ip,
        detail,
        prev_hash
    ])
    .to_string();
    hex::encode(Sha256::digest(canonical.as_bytes()))
}

fn model_hash(m: &audit_event::Model) -> String {
    chain_hash(
        m.seq,
        &m.at,
        &m.actor_id,
        &m.actor_role,
        &m.action,
        &m.subject_type,
        &m.subject_id,
        &m.owner_id,
        &m.ip,
        &m.detail,
        &m.prev_hash,
    )
}

/// Append an event inside the caller's write transaction, so the event and
/// the change it records commit together or not at all.
pub async fn append(tx: &WriteTx, actor: &Actor, event: Event) -> Result<(), DbErr> {
    let db: &DatabaseTransaction = tx;
    if db.get_database_backend() == DatabaseBackend::Postgres {
        db.execute_raw(Statement::from_sql_and_values(
            DatabaseBackend::Postgres,
            "SELECT pg_advisory_xact_lock($1)",
            [CHAIN_LOCK_KEY.into()],
        ))
        .await?;
    }
    // On SQLite the caller holds the single-writer lock, which also carries
    // the last committed head; otherwise read it.
    let head = match tx.cached_chain_head() {
        Some(head) => head,
        None => read_head(db).await?,
    };
    let at = Utc::now().trunc_subsecs(6);
    let (row, new_head) = chained_row(&head, at, actor, &event);
    let inserted = audit_event::Entity::insert(row).exec_without_returning(db).await;
    let new_head = match inserted {
        Ok(_) => new_head,
        // Another process (the CLI) appended since we cached the head: SQLite
        // keeps the transaction usable after a constraint error, so retry on
        // the head read from the database.
        Err(e) if tx.caches_chain_head() && matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => {
            let head = read_head(db).await?;
            let (row, new_head) = chained_row(&head, at, actor, &event);
            audit_event::Entity::insert(row).exec_without_returning(db).await?;
            new_head
        }
        Err(e) => return Err(e),
    };
    tx.set_chain_head(new_head);
    Ok(())
}

async fn read_head(db: &impl ConnectionTrait) -> Result<(i64, String), DbErr> {
    let last = audit_event::Entity::find().order_by_desc(audit_event::Column::Seq).limit(1).one(db).await?;
    Ok(match last {
        Some(l) => (l.seq, l.hash),
        None => (0, GENESIS.to_string()),
    })
}

fn chained_row(
    head: &(i64, String),
    at: DateTime<Utc>,
    actor: &Actor,
    event: &Event,
) -> (audit_event::ActiveModel, (i64, String)) {
    let (seq, prev_hash) = (head.0 + 1, head.1.clone());
    let actor_role = actor.role.map(|r| r.as_str().to_string());
    let detail = event.detail.to_string();
    let subject_type = event.subject_type.map(str::to_string);
    let hash = chain_hash(
        seq,
        &at,
        &actor.user_id,
        &actor_role,
        event.action,
        &subject_type,
        &event.subject_id,
        &event.owner_id,
        &actor.ip,
        &detail,
        &prev_hash,
    );
    let row = audit_event::ActiveModel {
        seq: Set(seq),
        at: Set(at),
        actor_id: Set(actor.user_id),
        actor_role: Set(actor_role),
        action: Set(event.action.to_string()),
        subject_type: Set(subject_type),
        subject_id: Set(event.subject_id),
        owner_id: Set(event.owner_id),
        ip: Set(actor.ip.clone()),
        detail: Set(detail),
        prev_hash: Set(prev_hash),
        hash: Set(hash.clone()),
    };
    (row, (seq, hash))
}

#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct ChainReport {
    pub ok: bool,
    pub checked: i64,
    /// The first event whose sequence, link or hash is wrong.
    pub first_bad_seq: Option<i64>,
    pub reason: Option<&'static str>,
}

/// Walk the whole chain in order and recompute every link.
pub async fn verify_chain(db: &impl ConnectionTrait) -> Result<ChainReport, DbErr> {
    const PAGE: u64 = 2000;
    let mut expected_seq = 1i64;
    let mut prev = GENESIS.to_string();
    let mut checked = 0i64;
    loop {
        let page = audit_event::Entity::find()
            .filter(audit_event::Column::Seq.gte(expected_seq))
            .order_by_asc(audit_event::Column::Seq)
            .limit(PAGE)
            .all(db)
            .await?;
        let n = page.len() as u64;
        for event in page {
            let bad = if event.seq != expected_seq {
                Some("missing event (sequence gap)")
            } else if event.prev_hash != prev {
                Some("link to previous event broken")
            } else if model_hash(&event) != event.hash {
                Some("event content altered")
            } else {
                None
            };
            if let Some(reason) = bad {
                return Ok(ChainReport { ok: false, checked, first_bad_seq: Some(expected_seq), reason: Some(reason) });
            }
            prev = event.hash;
            expected_seq += 1;
            checked += 1;
        }
        if n < PAGE {
            break;
        }
    }
    Ok(ChainReport { ok: true, checked, first_bad_seq: None, reason: None })
}

/// Events about `owner`'s data performed by someone else: "who accessed my data".
pub async fn access_log_for(db: &impl ConnectionTrait, owner: Uuid) -> Result<Vec<audit_event::Model>, DbErr> {
    audit_event::Entity::find()
        .filter(audit_event::Column::OwnerId.eq(owner))
        .filter(
            sea_orm::Condition::any()
                .add(audit_event::Column::ActorId.ne(owner))
                .add(audit_event::Column::ActorId.is_null()),
        )
        .order_by_desc(audit_event::Column::Seq)
        .limit(500)
        .all(db)
        .await
}
