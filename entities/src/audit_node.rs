use sea_orm::entity::prelude::*;

/// A node of the audit tree: at `level` 0 the leaf hash of the event with
/// `seq` = `idx` + 1; at level l the hash of the perfect subtree over the
/// 2^l leaves from `idx` * 2^l (RFC 9162).
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "audit_nodes")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub level: i16,
    #[sea_orm(primary_key, auto_increment = false)]
    pub idx: i64,
    pub hash: Vec<u8>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
