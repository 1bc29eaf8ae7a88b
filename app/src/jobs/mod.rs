//! Background work in the database: one `jobs` table for mail deliveries,
//! filing-bundle exports and reminder sweeps, shared by every app server on
//! the same database.
//!
//! - **Enqueue** inside the transaction that makes the work necessary (an
//!   outbox row and its delivery commit together); `key` is unique, so the
//!   same work is queued once however many servers ask.
//! - **Claim** under a lease: on PostgreSQL with `FOR UPDATE SKIP LOCKED`
//!   (servers never wait on each other's rows); on SQLite through the single
//!   writer. Each claim counts an attempt.
//! - **Run** while a heartbeat renews the lease; a runner that loses its
//!   lease stops the work. A server that dies leaves its lease to run out;
//!   another server then takes the job over.
//! - **Finish**: done, or queued again with exponential backoff, or failed
//!   after `max_attempts`; the error a person reads stays on the row.
//!
//! Why not a job-queue crate: the maintained ones (apalis-sql, sqlxmq,
//! graphile_worker) bring their own sqlx version (a second libsqlite3-sys
//! cannot link) or support PostgreSQL only; this is about 300 lines on the
//! ORM the portal already uses, on both backends.
pub mod lease;
pub mod runner;

use chrono::{DateTime, Duration, Utc};
use entities::job;
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseBackend, DbErr, EntityTrait, ExprTrait, QueryFilter, QueryOrder, QuerySelect,
    Set, Statement,
};
use serde_json::Value;
use uuid::Uuid;

use crate::db::Db;
use crate::error::AppResult;
use crate::AppState;

/// A job's work, owned by a capability above this module.
pub type Work = for<'a> fn(&'a AppState, &'a Claimed) -> rocket::futures::future::BoxFuture<'a, Result<(), JobError>>;
/// What a given-up job's subject learns (`true`: its runner died).
pub type GivenUp = for<'a> fn(&'a AppState, &'a Claimed, bool) -> rocket::futures::future::BoxFuture<'a, AppResult<()>>;

/// The work of each kind of job that belongs to a capability above `jobs`
/// (mail delivery sits beside it). The crate root fills it in, so the
/// runners call up the capability order without importing it.
#[derive(Clone, Copy)]
pub struct Handlers {
    pub export: Work,
    pub export_given_up: GivenUp,
    pub sweep: Work,
    pub signals: Work,
}

/// Wakes this server's idle runners when a job is queued here: the
/// queuing transaction registers [`Wake::after_commit`], and the runners
/// wait on it beside their poll, so the job starts at once (other servers
/// find it at their next poll).
#[derive(Clone, Debug, Default)]
pub struct Wake(std::sync::Arc<rocket::tokio::sync::Notify>);

impl Wake {
    /// Wake the idle runners once `txn` has committed (never if it does not).
    pub fn after_commit(&self, txn: &crate::db::WriteTx) {
        let wake = self.0.clone();
        txn.on_commit(move || wake.notify_waiters());
    }

    /// Resolves at the next wake-up; enable it before looking for jobs so
    /// that one sent meanwhile is not missed.
    pub fn notified(&self) -> rocket::tokio::sync::futures::Notified<'_> {
        self.0.notified()
    }
}

/// What a job does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Deliver one outbox row over SMTP.
    Mail,
    /// Build one filing bundle.
    Export,
    /// Look for reminders that are due and queue them.
    Sweep,
    /// Recompute the verification signals that went stale (a roster import).
    Signals,
}

impl Kind {
    pub const ALL: [Kind; 4] = [Kind::Mail, Kind::Export, Kind::Sweep, Kind::Signals];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Mail => "mail",
            Kind::Export => "export",
            Kind::Sweep => "sweep",
            Kind::Signals => "signals",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == raw)
    }

    /// Attempts before a job is given up: mail is retried for about a day
    /// (backoff doubles from the base delay up to an hour), an export a
    /// few times (it is long, and its errors are rarely passing ones).
    pub fn max_attempts(self) -> i32 {
        match self {
            Kind::Mail => 30,
            Kind::Export => 3,
            Kind::Sweep | Kind::Signals => 3,
        }
    }
}

/// Queue a job unless one with the same key exists. Returns whether it was queued.
pub async fn enqueue(
    conn: &impl ConnectionTrait,
    now: DateTime<Utc>,
    kind: Kind,
    key: &str,
    payload: Value,
) -> Result<bool, DbErr> {
    let row = job::ActiveModel {
        id: Set(Uuid::new_v4()),
        kind: Set(kind.as_str().into()),
        key: Set(key.into()),
        payload: Set(payload.to_string()),
        status: Set(Status::Queued),
        attempts: Set(0),
        max_attempts: Set(kind.max_attempts()),
        run_at: Set(now),
        lease_owner: Set(None),
        lease_until: Set(None),
        progress: Set(0),
        error: Set(None),
        created_at: Set(now),
        finished_at: Set(None),
    };
    let inserted = job::Entity::insert(row)
        .on_conflict(OnConflict::column(job::Column::Key).do_nothing().to_owned())
        .exec_without_returning(conn)
        .await?;
    Ok(inserted > 0)
}

pub use entities::job::Status;

/// Why an attempt failed: the message a person reads (never personal
/// data), and whether another attempt could succeed.
#[derive(Debug)]
pub struct JobError {
    pub message: String,
    pub permanent: bool,
}

impl JobError {
    pub fn permanent(message: impl Into<String>) -> Self {
        Self { message: message.into(), permanent: true }
    }

    pub fn transient(message: impl Into<String>) -> Self {
        Self { message: message.into(), permanent: false }
    }
}

impl From<DbErr> for JobError {
    fn from(e: DbErr) -> Self {
        // The database's own text may quote values: it goes to the log at
        // most, never onto the row an administrator reads.
        tracing::warn!(error = %e, "a job's database step failed");
        Self::transient("the database could not be reached or refused a step")
    }
}

impl From<crate::error::AppError> for JobError {
    fn from(e: crate::error::AppError) -> Self {
        let permanent = !matches!(e, crate::error::AppError::Unavailable(_) | crate::error::AppError::Internal { .. });
        Self { message: e.message(crate::i18n::Lang::En), permanent }
    }
}

/// A claimed job and the lease it is held under.
#[derive(Clone, Debug)]
pub struct Claimed {
    pub job: job::Model,
    pub owner: String,
}

/// Claim the next due job of `kinds` for `owner`, leased until `now + lease`:
/// a queued job whose time has come, or a running one whose lease ran out.
pub async fn claim_next(
    db: &Db,
    owner: &str,
    kinds: &[Kind],
    now: DateTime<Utc>,
    lease: Duration,
) -> Result<Option<Claimed>, DbErr> {
    if kinds.is_empty() {
        return Ok(None);
    }
    let kinds: Vec<&'static str> = kinds.iter().map(|k| k.as_str()).collect();
    let until = now + lease;
    let job = match db.backend() {
        DatabaseBackend::Postgres => {
            // One bound value per kind there is; a runner taking fewer
            // kinds repeats its first in the spare places.
            const SQL: &str = r#"
                UPDATE jobs SET status = 'running', lease_owner = $1, lease_until = $2, attempts = attempts + 1
                WHERE id = (
                    SELECT id FROM jobs
                    WHERE kind IN ($4, $5, $6, $7)
                      AND ((status = 'queued' AND run_at <= $3) OR (status = 'running' AND lease_until < $3))
                    ORDER BY run_at
                    LIMIT 1
                    FOR UPDATE SKIP LOCKED)
                RETURNING *"#;
            const _: () = assert!(Kind::ALL.len() == 4, "one placeholder per kind in SQL");
            let mut values: Vec<sea_orm::Value> = vec![owner.into(), until.into(), now.into()];
            values.extend((0..Kind::ALL.len()).map(|i| kinds.get(i).unwrap_or(&kinds[0]).to_string().into()));
            let stmt = Statement::from_sql_and_values(DatabaseBackend::Postgres, SQL, values);
            job::Entity::find().from_raw_sql(stmt).one(db.conn()).await?
        }
        _ => {
            // SQLite: the single writer serialises claims; the update's own
            // guard keeps it correct even so.
            let txn = db.begin_write().await?;
            let candidate = job::Entity::find()
                .filter(job::Column::Kind.is_in(kinds))
                .filter(
                    (job::Column::Status.eq(Status::Queued).and(job::Column::RunAt.lte(now)))
                        .or(job::Column::Status.eq(Status::Running).and(job::Column::LeaseUntil.lt(now))),
                )
                .order_by_asc(job::Column::RunAt)
                .limit(1)
                .one(&txn)
                .await?;
            let Some(candidate) = candidate else {
                return Ok(None);
            };
            job::Entity::update_many()
                .col_expr(job::Column::Status, Expr::value(Status::Running))
                .col_expr(job::Column::LeaseOwner, Expr::value(owner))
                .col_expr(job::Column::LeaseUntil, Expr::value(until))
                .col_expr(job::Column::Attempts, Expr::col(job::Column::Attempts).add(1))
                .filter(job::Column::Id.eq(candidate.id))
                .exec(&txn)
                .await?;
            let claimed = job::Entity::find_by_id(candidate.id).one(&txn).await?;
            txn.commit().await?;
            claimed
        }
    };
    Ok(job.map(|job| Claimed { job, owner: owner.to_string() }))
}

/// Renew a held lease. `false`: the lease is no longer ours (it ran out and
/// another runner took the job, or the job was finished elsewhere).
pub async fn renew(
    conn: &impl ConnectionTrait,
    claimed: &Claimed,
    now: DateTime<Utc>,
    lease: Duration,
) -> Result<bool, DbErr> {
    let renewed = job::Entity::update_many()
        .col_expr(job::Column::LeaseUntil, Expr::value(now + lease))
        .filter(held(claimed))
        .exec(conn)
        .await?;
    Ok(renewed.rows_affected == 1)
}

/// The rows still held by this claim.
fn held(claimed: &Claimed) -> sea_orm::Condition {
    sea_orm::Condition::all()
        .add(job::Column::Id.eq(claimed.job.id))
        .add(job::Column::Status.eq(Status::Running))
        .add(job::Column::LeaseOwner.eq(claimed.owner.as_str()))
}

/// Record a running job's progress (0–100).
pub async fn progress(conn: &impl ConnectionTrait, claimed: &Claimed, percent: i32) -> Result<(), DbErr> {
    job::Entity::update_many()
        .col_expr(job::Column::Progress, Expr::value(percent.clamp(0, 100)))
        .filter(held(claimed))
        .exec(conn)
        .await?;
    Ok(())
}

/// Mark a held job done. `false` if the lease was lost meanwhile.
pub async fn complete(conn: &impl ConnectionTrait, claimed: &Claimed, now: DateTime<Utc>) -> Result<bool, DbErr> {
    let done = job::Entity::update_many()
        .col_expr(job::Column::Status, Expr::value(Status::Done))
        .col_expr(job::Column::Progress, Expr::value(100))
        .col_expr(job::Column::LeaseOwner, Expr::value(Option::<String>::None))
        .col_expr(job::Column::LeaseUntil, Expr::value(Option::<DateTime<Utc>>::None))
        .col_expr(job::Column::Error, Expr::value(Option::<String>::None))
        .col_expr(job::Column::FinishedAt, Expr::value(Some(now)))
        .filter(held(claimed))
        .exec(conn)
        .await?;
    Ok(done.rows_affected == 1)
}

/// What became of a failed attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Queued again, not before this instant.
    Retry(DateTime<Utc>),
    /// Given up: no more attempts, or the error will not pass.
    Failed,
}

/// The delay before attempt `attempts + 1`: the base doubled per attempt, at most an hour.
pub fn backoff(base: Duration, attempts: i32) -> Duration {
    let doublings = attempts.saturating_sub(1).clamp(0, 20) as u32;
    let delay = base.num_milliseconds().saturating_mul(1i64 << doublings);
    Duration::milliseconds(std::cmp::min(delay, Duration::hours(1).num_milliseconds()))
}

/// Record a failed attempt: queued again after the backoff, or failed.
pub async fn fail(
    conn: &impl ConnectionTrait,
    claimed: &Claimed,
    now: DateTime<Utc>,
    base: Duration,
    error: &str,
    permanent: bool,
) -> Result<Outcome, DbErr> {
    let error: String = error.chars().take(400).collect();
    let outcome = if permanent || claimed.job.attempts >= claimed.job.max_attempts {
        Outcome::Failed
    } else {
        Outcome::Retry(now + backoff(base, claimed.job.attempts))
    };
    let mut update = job::Entity::update_many()
        .col_expr(job::Column::LeaseOwner, Expr::value(Option::<String>::None))
        .col_expr(job::Column::LeaseUntil, Expr::value(Option::<DateTime<Utc>>::None))
        .col_expr(job::Column::Error, Expr::value(Some(error)));
    update = match outcome {
        Outcome::Retry(at) => update
            .col_expr(job::Column::Status, Expr::value(Status::Queued))
            .col_expr(job::Column::RunAt, Expr::value(at)),
        Outcome::Failed => update
            .col_expr(job::Column::Status, Expr::value(Status::Failed))
            .col_expr(job::Column::FinishedAt, Expr::value(Some(now))),
    };
    update.filter(held(claimed)).exec(conn).await?;
    Ok(outcome)
}

/// A job by its key.
pub async fn by_key(conn: &impl ConnectionTrait, key: &str) -> Result<Option<job::Model>, DbErr> {
    job::Entity::find().filter(job::Column::Key.eq(key)).one(conn).await
}

/// How many jobs of one kind wait, run and failed.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct KindCounts {
    pub kind: String,
    pub queued: u64,
    pub running: u64,
    pub failed: u64,
}

/// The job table at a glance, for administrators.
pub async fn summary(conn: &impl ConnectionTrait) -> Result<Vec<KindCounts>, DbErr> {
    let rows: Vec<(String, Status, i64)> = job::Entity::find()
        .select_only()
        .column(job::Column::Kind)
        .column(job::Column::Status)
        .column_as(job::Column::Id.count(), "n")
        .group_by(job::Column::Kind)
        .group_by(job::Column::Status)
        .into_tuple()
        .all(conn)
        .await?;
    let mut out: Vec<KindCounts> =
        Kind::ALL.iter().map(|k| KindCounts { kind: k.as_str().into(), ..Default::default() }).collect();
    for (kind, status, n) in rows {
        if let Some(counts) = out.iter_mut().find(|c| c.kind == kind) {
            let n = u64::try_from(n).unwrap_or(0);
            match status {
                Status::Queued => counts.queued += n,
                Status::Running => counts.running += n,
                Status::Failed => counts.failed += n,
                Status::Done => {}
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_the_base_and_stops_at_an_hour() {
        let base = Duration::seconds(30);
        assert_eq!(backoff(base, 1), Duration::seconds(30));
        assert_eq!(backoff(base, 2), Duration::seconds(60));
        assert_eq!(backoff(base, 5), Duration::seconds(480));
        assert_eq!(backoff(base, 30), Duration::hours(1));
    }

    #[test]
    fn kinds_read_back() {
        for kind in Kind::ALL {
            assert_eq!(Kind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(Kind::parse("other"), None);
    }
}
