//! The job runners of one app server: `APP_WORKERS` loops that claim due
//! jobs and run them under a renewed lease, and a scheduler that queues the
//! reminder sweep every `APP_REMINDER_SWEEP_SECONDS` while this server holds
//! the `scheduler` lease.
use std::sync::Arc;

use chrono::{DateTime, Utc};
use rocket::tokio::{self, time::sleep};

use super::{lease, Claimed, JobError, Kind, Outcome};
use crate::mail::smtp::Mailer;
use crate::AppState;

/// Who this process is, in leases: unique per start.
pub fn instance_name() -> String {
    let id = uuid::Uuid::new_v4().simple().to_string();
    format!("{}-{}", std::process::id(), &id[..8])
}

/// Start this server's runners and scheduler. Returns at once.
pub fn spawn(state: AppState, mailer: Option<Arc<Mailer>>) {
    let workers = state.settings.background.workers;
    if workers == 0 {
        return;
    }
    let owner = instance_name();
    let state = Arc::new(state);
    // Without an SMTP server mail waits in the outbox: its jobs are not claimed.
    let kinds: Vec<Kind> = Kind::ALL.into_iter().filter(|k| *k != Kind::Mail || mailer.is_some()).collect();
    for n in 0..workers {
        let (state, mailer, kinds) = (state.clone(), mailer.clone(), kinds.clone());
        let owner = format!("{owner}/{n}");
        tokio::spawn(async move { work(state, mailer, owner, kinds).await });
    }
    let scheduler_state = state.clone();
    tokio::spawn(async move { schedule(scheduler_state, owner).await });
}

async fn work(state: Arc<AppState>, mailer: Option<Arc<Mailer>>, owner: String, kinds: Vec<Kind>) {
    let settings = state.settings.background.clone();
    loop {
        let now = state.clock.now();
        let queued = state.jobs_queued.notified();
        tokio::pin!(queued);
        queued.as_mut().enable();
        match super::claim_next(&state.db, &owner, &kinds, now, settings.job_lease).await {
            Ok(Some(claimed)) => run_one(&state, mailer.as_deref(), claimed).await,
            // Idle until the next poll, or until a job is queued here.
            Ok(None) => {
                tokio::select! {
                    _ = sleep(settings.job_poll) => {}
                    _ = queued => {}
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "could not look for jobs");
                sleep(settings.job_poll * 5).await;
            }
        }
    }
}

/// Run a claimed job while renewing its lease; record how it ended.
pub async fn run_one(state: &AppState, mailer: Option<&Mailer>, claimed: Claimed) {
    let settings = &state.settings.background;
    let kind = Kind::parse(&claimed.job.kind);
    tracing::info!(job = %claimed.job.id, kind = %claimed.job.kind, attempt = claimed.job.attempts, "job started");
    if claimed.job.attempts > claimed.job.max_attempts {
        // Taken over after its last attempt's runner died: give up.
        let _ =
            super::fail(state.db.conn(), &claimed, state.clock.now(), settings.job_retry, "interrupted", true).await;
        after_failure(state, &claimed, true).await;
        return;
    }
    let work = async {
        match (kind, mailer) {
            (Some(Kind::Mail), Some(mailer)) => crate::mail::deliver::deliver(state, mailer, &claimed).await,
            (Some(Kind::Mail), None) => Err(JobError::transient("no SMTP server is configured")),
            (Some(Kind::Export), _) => (state.job_handlers.export)(state, &claimed).await,
            (Some(Kind::Sweep), _) => (state.job_handlers.sweep)(state, &claimed).await,
            (Some(Kind::Signals), _) => (state.job_handlers.signals)(state, &claimed).await,
            (None, _) => Err(JobError::permanent("unknown kind of job")),
        }
    };
    let heartbeat = async {
        let every = (settings.job_lease / 3).to_std().unwrap_or(std::time::Duration::from_secs(1));
        loop {
            sleep(every).await;
            match super::renew(state.db.conn(), &claimed, state.clock.now(), settings.job_lease).await {
                Ok(true) => {}
                Ok(false) => return,
                // A passing database error: try again before the lease runs out.
                Err(e) => tracing::warn!(error = %e, "could not renew a job's lease"),
            }
        }
    };
    let result = tokio::select! {
        result = work => result,
        () = heartbeat => {
            tracing::warn!(job = %claimed.job.id, "lost the lease of a running job; another server has it");
            return;
        }
    };
    let now = state.clock.now();
    match result {
        Ok(()) => match super::complete(state.db.conn(), &claimed, now).await {
            Ok(true) => tracing::info!(job = %claimed.job.id, "job done"),
            Ok(false) => tracing::warn!(job = %claimed.job.id, "job finished after its lease was lost"),
            Err(e) => tracing::warn!(job = %claimed.job.id, error = %e, "could not record a finished job"),
        },
        Err(e) => {
            let outcome =
                super::fail(state.db.conn(), &claimed, now, settings.job_retry, &e.message, e.permanent).await;
            match outcome {
                Ok(Outcome::Retry(at)) => {
                    tracing::warn!(job = %claimed.job.id, retry_at = %at, reason = %e.message, "job attempt failed")
                }
                Ok(Outcome::Failed) => {
                    tracing::error!(job = %claimed.job.id, reason = %e.message, "job failed");
                    after_failure(state, &claimed, false).await;
                }
                Err(db) => tracing::warn!(job = %claimed.job.id, error = %db, "could not record a failed job"),
            }
        }
    }
}

/// A job given up: what it was working on learns so.
async fn after_failure(state: &AppState, claimed: &Claimed, interrupted: bool) {
    if Kind::parse(&claimed.job.kind) == Some(Kind::Export) {
        if let Err(e) = (state.job_handlers.export_given_up)(state, claimed, interrupted).await {
            tracing::warn!(job = %claimed.job.id, error = %e, "could not mark the export failed");
        }
    }
}

/// While this server holds the `scheduler` lease, queue a sweep per period.
/// The sweep's key is its period, so a sweep is queued once even if two
/// servers briefly both think they hold the lease.
async fn schedule(state: Arc<AppState>, owner: String) {
    let settings = state.settings.background.clone();
    let every = settings.reminder_sweep;
    loop {
        let now = state.clock.now();
        match lease::acquire(state.db.conn(), "scheduler", &owner, now, every * 3).await {
            Ok(Some(_)) => {
                if let Err(e) = queue_sweep(&state, now).await {
                    tracing::warn!(error = %e, "could not queue the reminder sweep");
                }
            }
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "could not take the scheduler lease"),
        }
        sleep(every.to_std().unwrap_or(std::time::Duration::from_secs(300)).min(settings.job_poll * 60)).await;
    }
}

/// Queue the sweep of the period `now` falls in.
pub async fn queue_sweep(state: &AppState, now: DateTime<Utc>) -> Result<bool, sea_orm::DbErr> {
    let period = state.settings.background.reminder_sweep.num_seconds().max(1);
    let slot = now.timestamp() / period;
    super::enqueue(state.db.conn(), now, Kind::Sweep, &format!("sweep:{slot}"), serde_json::json!({ "slot": slot }))
        .await
}
