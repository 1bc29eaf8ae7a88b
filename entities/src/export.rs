use sea_orm::entity::prelude::*;

/// A filing-bundle export of a frozen round: a DB-backed job with progress.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "exports")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub round_id: Uuid,
    pub status: Status,
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

/// Where an export stands (mirrored from its job while it runs).
#[derive(Clone, Copy, Debug, PartialEq, Eq, EnumIter, DeriveActiveEnum, serde::Serialize)]
#[sea_orm(rs_type = "String", db_type = "Text")]
#[serde(rename_all = "snake_case")]
pub enum Status {
    #[sea_orm(string_value = "queued")]
    Queued,
    #[sea_orm(string_value = "running")]
    Running,
    #[sea_orm(string_value = "done")]
    Done,
    #[sea_orm(string_value = "failed")]
    Failed,
    /// A plaintiff in it erased their data: the bundle was deleted.
    #[sea_orm(string_value = "erased")]
    Erased,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::filing_round::Entity",
        from = "Column::RoundId",
        to = "super::filing_round::Column::Id"
    )]
    Round,
}

impl Related<super::filing_round::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Round.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
