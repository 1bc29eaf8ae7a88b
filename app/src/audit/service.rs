use chrono::{SubsecRound, Utc};
use entities::audit_event;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, NotSet, QueryFilter, QueryOrder, QuerySelect, QueryTrait, Set,
};
use uuid::Uuid;

use crate::auth::Role;
use crate::db::WriteTx;

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

/// The entry a leaf hash covers: every field of the event but its place,
/// as a JSON array (an unambiguous encoding).
pub fn leaf_entry(m: &audit_event::Model) -> Vec<u8> {
    serde_json::json!([
        m.at.timestamp_micros(),
        m.actor_id,
        m.actor_role,
        m.action,
        m.subject_type,
        m.subject_id,
        m.owner_id,
        m.ip,
        m.detail
    ])
    .to_string()
    .into_bytes()
}

/// Record an event inside the caller's write transaction, so the event and
/// the change it records commit together or not at all. The event waits
/// unsequenced for the sequencer, which is woken once the transaction commits.
pub async fn append(tx: &WriteTx, actor: &Actor, event: Event) -> Result<(), DbErr> {
    let row = audit_event::ActiveModel {
        id: NotSet,
        seq: Set(None),
        at: Set(Utc::now().trunc_subsecs(6)),
        actor_id: Set(actor.user_id),
        actor_role: Set(actor.role.map(|r| r.as_str().to_string())),
        action: Set(event.action.to_string()),
        subject_type: Set(event.subject_type.map(str::to_string)),
        subject_id: Set(event.subject_id),
        owner_id: Set(event.owner_id),
        ip: Set(actor.ip.clone()),
        detail: Set(event.detail.to_string()),
    };
    // Nothing waits on the insert: on SQLite it goes with the job's next
    // query or its commit, in the same command.
    tx.write_later(audit_event::Entity::insert(row).build(tx.get_database_backend())).await?;
    tx.on_commit(super::sequencer::wake);
    Ok(())
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
        .order_by_desc(audit_event::Column::Id)
        .limit(500)
        .all(db)
        .await
}
