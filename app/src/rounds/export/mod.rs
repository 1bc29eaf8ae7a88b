//! Filing-bundle exports of a frozen round, as background jobs with
//! progress, in three steps: `plan` reads what the bundle holds, `stream`
//! writes it into the store sealed with a key of its own (memory stays
//! flat whatever the round's size), `finalize` records it. Downloads need
//! a freshly re-entered password, are audited, and exports are capped per
//! hour with an alert past the cap.
use chrono::{DateTime, Utc};

use entities::{export, filing_round};
use rocket::futures::future::BoxFuture;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
use serde::Serialize;
use uuid::Uuid;

use crate::audit::{self, Actor, Event};
use crate::auth::{CurrentUser, Role};
use crate::claims::access::{self, Read as CappedRead};
use crate::error::{AppError, AppResult};
use crate::evidence::service::Download;
use crate::jobs::{self, Claimed, JobError};
use crate::AppState;

mod finalize;
mod plan;
mod stream;

#[derive(Clone, Debug, Serialize)]
pub struct ExportView {
    pub id: Uuid,
    pub round_id: Uuid,
    pub status: export::Status,
    pub progress: i32,
    pub sha256: Option<String>,
    pub size: Option<i64>,
    pub counts: serde_json::Value,
    pub error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

impl From<export::Model> for ExportView {
    fn from(m: export::Model) -> Self {
        Self {
            id: m.id,
            round_id: m.round_id,
            status: m.status,
            progress: m.progress,
            sha256: m.sha256,
            size: m.size,
            counts: m.counts.as_deref().and_then(|c| serde_json::from_str(c).ok()).unwrap_or_default(),
            error: m.error,
            created_at: m.created_at,
            finished_at: m.finished_at,
        }
    }
}

/// Ask for a bundle of a frozen round: answered at once with the job; the
/// work goes on in the background (`status` shows its progress).
pub async fn start(state: &AppState, user: &CurrentUser, round_id: Uuid) -> AppResult<ExportView> {
    user.require(Role::Admin)?;
    // The bundle holds every plaintiff's data: the second factor first (S5).
    access::require_staff(user)?;
    let round = filing_round::Entity::find_by_id(round_id).one(state.db.conn()).await?.ok_or(AppError::NotFound)?;
    if round.state == "open" {
        return Err(AppError::WrongState("round_not_frozen"));
    }
    let id = Uuid::new_v4();
    let event =
        Event::new(CappedRead::Export.action()).subject("export", id).detail(serde_json::json!({"round": round_id}));
    access::record_capped(state, user, CappedRead::Export, event).await?;
    // Every plaintiff's data at once: the other administrators hear of it.
    let txn = state.db.begin_write().await?;
    let detail = serde_json::json!({"round": round_id, "export": id});
    access::raise_alert(state, &txn, "export.started", Some(user), detail, chrono::Duration::zero()).await?;
    txn.commit().await?;
    let model = export::Model {
        id,
        round_id,
        status: export::Status::Queued,
        progress: 0,
        storage_key: None,
        wrapped_key: None,
        sha256: None,
        size: None,
        counts: None,
        error: None,
        requested_by: user.id,
        created_at: state.clock.now(),
        finished_at: None,
    };
    // The export and its job commit together: a server that stops before
    // finishing it leaves the job to another (or to itself after a restart).
    let txn = state.db.begin_write().await?;
    export::Entity::insert(export::ActiveModel::from(model.clone())).exec_without_returning(&txn).await?;
    jobs::enqueue(&txn, model.created_at, jobs::Kind::Export, &job_key(id), serde_json::json!({ "export": id }))
        .await?;
    // This server's idle runners start it at once.
    state.jobs_queued.after_commit(&txn);
    txn.commit().await?;
    Ok(model.into())
}

/// The job's key for an export.
pub fn job_key(export_id: Uuid) -> String {
    format!("export:{export_id}")
}

/// Run the export a claimed job names. An attempt after an interrupted one
/// starts the bundle again from the beginning.
pub async fn run_job(state: &AppState, claimed: &Claimed) -> Result<(), JobError> {
    let payload: serde_json::Value = serde_json::from_str(&claimed.job.payload).unwrap_or_default();
    let id: Uuid = payload["export"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| JobError::permanent("the job names no export"))?;
    let Some(row) = export::Entity::find_by_id(id).one(state.db.conn()).await? else {
        return Err(JobError::permanent("the export no longer exists"));
    };
    if row.status == export::Status::Done {
        return Ok(());
    }
    let exporter = crate::auth::service::account_by_id(state, row.requested_by).await?.email;
    match run(state, id, exporter, Some(claimed)).await {
        Ok(()) => Ok(()),
        Err(e) => {
            tracing::error!(export = %id, error = %e, "filing bundle export attempt failed");
            // Between attempts the bar says so; the last attempt marks it failed.
            set_progress(state, id, export::Status::Queued, 0).await?;
            Err(e.into())
        }
    }
}

/// [`run_job`] as the job runners call it.
pub fn export_job<'a>(state: &'a AppState, claimed: &'a Claimed) -> BoxFuture<'a, Result<(), JobError>> {
    Box::pin(run_job(state, claimed))
}

/// [`job_failed`] as the job runners call it.
pub fn export_given_up<'a>(
    state: &'a AppState,
    claimed: &'a Claimed,
    interrupted: bool,
) -> BoxFuture<'a, AppResult<()>> {
    Box::pin(job_failed(state, claimed, interrupted))
}

/// The job behind an export was given up: the export is marked failed.
pub async fn job_failed(state: &AppState, claimed: &Claimed, interrupted: bool) -> AppResult<()> {
    let payload: serde_json::Value = serde_json::from_str(&claimed.job.payload).unwrap_or_default();
    let Some(id) = payload["export"].as_str().and_then(|s| s.parse::<Uuid>().ok()) else {
        return Ok(());
    };
    let why =
        if interrupted { AppError::WrongState("export_interrupted") } else { AppError::WrongState("export_failed") };
    fail(state, id, &why).await
}

async fn fail(state: &AppState, id: Uuid, e: &AppError) -> AppResult<()> {
    // The message a person reads, never personal data.
    let why = e.message(crate::i18n::Lang::En);
    export::Entity::update_many()
        .col_expr(export::Column::Status, Expr::value(export::Status::Failed))
        .col_expr(export::Column::Error, Expr::value(Some(why.chars().take(400).collect::<String>())))
        .col_expr(export::Column::FinishedAt, Expr::value(Some(state.clock.now())))
        .filter(export::Column::Id.eq(id))
        .exec(state.db.conn())
        .await?;
    let txn = state.db.begin_write().await?;
    audit::append(&txn, &Actor::default(), Event::new("export.failed").subject("export", id)).await?;
    txn.commit().await?;
    Ok(())
}

/// The export's status and progress, mirrored on its job's row.
async fn set_progress(state: &AppState, id: Uuid, status: export::Status, progress: i32) -> AppResult<()> {
    let progress = progress.clamp(0, 100);
    export::Entity::update_many()
        .col_expr(export::Column::Status, Expr::value(status))
        .col_expr(export::Column::Progress, Expr::value(progress))
        .filter(export::Column::Id.eq(id))
        .exec(state.db.conn())
        .await?;
    entities::job::Entity::update_many()
        .col_expr(entities::job::Column::Progress, Expr::value(progress))
        .filter(entities::job::Column::Key.eq(job_key(id)))
        .filter(entities::job::Column::Status.eq(entities::job::Status::Running))
        .exec(state.db.conn())
        .await?;
    Ok(())
}

pub async fn status(state: &AppState, user: &CurrentUser, id: Uuid) -> AppResult<ExportView> {
    user.require(Role::Admin)?;
    Ok(export::Entity::find_by_id(id).one(state.db.conn()).await?.ok_or(AppError::NotFound)?.into())
}

pub async fn list(state: &AppState, user: &CurrentUser, round_id: Uuid) -> AppResult<Vec<ExportView>> {
    user.require(Role::Admin)?;
    Ok(export::Entity::find()
        .filter(export::Column::RoundId.eq(round_id))
        .order_by_desc(export::Column::CreatedAt)
        .all(state.db.conn())
        .await?
        .into_iter()
        .map(ExportView::from)
        .collect())
}

/// Plan, stream, record.
async fn run(state: &AppState, id: Uuid, exporter: String, claimed: Option<&Claimed>) -> AppResult<()> {
    let job = export::Entity::find_by_id(id).one(state.db.conn()).await?.ok_or(AppError::NotFound)?;
    set_progress(state, id, export::Status::Running, 1).await?;
    let began = std::time::Instant::now();
    let mut plan = plan::plan(state, job.round_id).await?;
    // The party list is decrypted in a task of its own while the evidence
    // streams into the archive; its entries follow the evidence.
    let parties = rocket::tokio::spawn(plan::parties_of(
        state.db.clone(),
        state.keys.clone(),
        plan.claims.clone(),
        std::mem::take(&mut plan.members),
        (plan.round.id, plan.round.case_id, plan.round.filing_date),
    ));
    set_progress(state, id, export::Status::Running, 5).await?;
    tracing::info!(export = %id, exhibits = plan.exhibits.len(), read_s = began.elapsed().as_secs_f64(), "bundle: files listed");
    let round_id = plan.round.id;
    let bundle = stream::stream(state, id, plan, parties, exporter).await?;
    finalize::record(state, id, round_id, claimed, bundle).await
}

/// The bundle, decrypted as it streams. Only after the administrator
/// re-entered their password in this session (S5); audited.
pub async fn download(state: &AppState, user: &CurrentUser, id: Uuid) -> AppResult<Download> {
    user.require(Role::Admin)?;
    access::require_staff(user)?;
    if !crate::auth::service::freshly_reauthenticated(user, state.clock.now()) {
        return Err(AppError::ReauthenticationRequired);
    }
    let job = export::Entity::find_by_id(id).one(state.db.conn()).await?.ok_or(AppError::NotFound)?;
    if job.status == export::Status::Erased {
        return Err(AppError::WrongState("export_erased"));
    }
    let (Some(storage_key), Some(wrapped), Some(size)) = (&job.storage_key, &job.wrapped_key, job.size) else {
        return Err(AppError::WrongState("export_not_ready"));
    };
    let key = state.keys.unwrap_data_key(wrapped, &id)?;
    let round = filing_round::Entity::find_by_id(job.round_id).one(state.db.conn()).await?.ok_or(AppError::NotFound)?;
    // Capped like every read of personal data, and shown in the access log
    // of each claimant the bundle holds.
    let event = Event::new(CappedRead::BundleDownload.action())
        .subject("export", id)
        .detail(serde_json::json!({"round": job.round_id}));
    access::record_capped(state, user, CappedRead::BundleDownload, event).await?;
    let file_name = format!("filing-bundle-round{}-{}.zip", round.number, &id.simple().to_string()[..8]);
    Download::sealed_object(
        state.store.as_ref(),
        storage_key,
        key.bytes(),
        size as u64,
        file_name,
        "application/zip".into(),
    )
    .await
}
