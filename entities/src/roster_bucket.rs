use sea_orm::entity::prelude::*;

/// One bucket of a notice roster import: the sorted roster keys of one kind
/// whose top bits are `bucket` (8 bytes each, big-endian). A roster key is
/// the first 64 bits of a value's HMAC-SHA256 blind index: keyed hashes
/// only, never the plaintext.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "roster_buckets")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub import_id: Uuid,
    /// 0 registration code, 1 kana name + birth date, 2 phone, 3 postal code + kana name.
    #[sea_orm(primary_key, auto_increment = false)]
    pub kind: i16,
    #[sea_orm(primary_key, auto_increment = false)]
    pub bucket: i32,
    pub keys: Vec<u8>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::roster_import::Entity",
        from = "Column::ImportId",
        to = "super::roster_import::Column::Id"
    )]
    Import,
}

impl Related<super::roster_import::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Import.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
