use sea_orm::entity::prelude::*;

/// A piece of background work: claimed under a lease that its runner
/// renews, retried with backoff, taken over when the lease runs out.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "jobs")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// `mail`, `export` or `sweep`.
    pub kind: String,
    /// Unique: enqueueing the same work twice queues it once.
    #[sea_orm(unique)]
    pub key: String,
    /// What the job works on, JSON (ids only).
    pub payload: String,
    pub status: Status,
    pub attempts: i32,
    pub max_attempts: i32,
    /// Not before this instant (backoff after a failed attempt).
    pub run_at: DateTimeUtc,
    pub lease_owner: Option<String>,
    pub lease_until: Option<DateTimeUtc>,
    /// 0–100.
    pub progress: i32,
    /// The last attempt's error, as a person reads it; never personal data.
    pub error: Option<String>,
    pub created_at: DateTimeUtc,
    pub finished_at: Option<DateTimeUtc>,
}

/// Where a job stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, EnumIter, DeriveActiveEnum, serde::Serialize)]
#[sea_orm(rs_type = "String", db_type = "Text")]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Waiting for a runner (first attempt, or again after a failed one).
    #[sea_orm(string_value = "queued")]
    Queued,
    /// Claimed under a lease.
    #[sea_orm(string_value = "running")]
    Running,
    #[sea_orm(string_value = "done")]
    Done,
    /// Given up after its last attempt.
    #[sea_orm(string_value = "failed")]
    Failed,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
