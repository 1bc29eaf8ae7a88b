use sea_orm::entity::prelude::*;

/// A signed checkpoint of the audit tree (C2SP tlog-checkpoint note).
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "audit_checkpoints")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub size: i64,
    pub root: Vec<u8>,
    pub at: DateTimeUtc,
    pub note: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
