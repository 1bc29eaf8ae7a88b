use sea_orm::entity::prelude::*;

/// One line of a notice roster: keyed hashes only, never the plaintext.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "roster_entries")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub import_id: Uuid,
    pub code_hash: Option<String>,
    pub identity_hash: Option<String>,
    pub phone_hash: Option<String>,
    pub postal_kana_hash: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
