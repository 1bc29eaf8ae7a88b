use sea_orm::entity::prelude::*;

/// A filing-bundle export of a frozen round: a DB-backed job with progress.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "exports")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub round_id: Uuid,
    /// queued | running | done | failed
    pub status: String,
    /// 0–100.
    pub progress: i32,
    pub storage_key: Option<String>,
    pub wrapped_key: Option<Vec<u8>>,
    /// SHA-256 of the ZIP as downloaded.
    pub sha256: Option<String>,
    pub size: Option<i64>,
    pub counts: Option<String>,
    pub error: Option<String>,
    pub requested_by: Uuid,
    pub created_at: DateTimeUtc,
    pub finished_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
