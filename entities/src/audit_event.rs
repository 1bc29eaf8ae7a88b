use sea_orm::entity::prelude::*;

/// One audited event. A request inserts it with `seq` NULL, in the same
/// transaction as the change it records; the sequencer gives it its place
/// in the audit tree (`seq` = leaf index + 1).
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "audit_events")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub seq: Option<i64>,
    pub at: DateTimeUtc,
    pub actor_id: Option<Uuid>,
    pub actor_role: Option<String>,
    pub action: String,
    pub subject_type: Option<String>,
    pub subject_id: Option<Uuid>,
    pub owner_id: Option<Uuid>,
    pub ip: Option<String>,
    pub detail: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
