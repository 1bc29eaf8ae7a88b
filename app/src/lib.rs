//! The claimant intake portal for data-leak class actions.
//!
//! `build(figment)` assembles the Rocket application; `main.rs` only
//! launches it or runs a CLI subcommand. Capabilities live in their own
//! modules (`auth`, `cases`, `claims`, `intake`, `review`, `rounds`, …),
//! each with pure `domain` rules, `service` use cases over the database, and
//! thin `api` (JSON under `/api/v1`) and `pages` (HTML) handlers that call
//! the same services, mounted by the capability's own `stage()` fairing.
//! The modules' one-way order is checked by `layers`; no function is over
//! 80 lines (`clippy::too_many_lines`, threshold in `clippy.toml`).
#![warn(clippy::too_many_lines)]
pub mod audit;
pub mod auth;
pub mod body;
pub mod cases;
pub mod claims;
pub mod cli;
pub mod clock;
pub mod config;
pub mod consent;
pub mod crypto;
pub mod db;
#[cfg(feature = "dev")]
pub mod dev;
pub mod domain;
pub mod error;
pub mod evidence;
pub mod i18n;
pub mod intake;
pub mod jobs;
#[cfg(test)]
mod layers;
pub mod mail;
pub mod me;
mod openapi;
pub mod reminders;
pub mod review;
pub mod roster;
pub mod rounds;
mod web;

use std::net::IpAddr;
use std::num::NonZeroU32;

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use rocket::fairing::AdHoc;
use rocket::figment::Figment;
use rocket::{Build, Rocket};
use rocket_dyn_templates::Template;

pub use config::{figment, Settings};
use crypto::Keyring;
use db::Db;
use error::{AppError, AppResult};

/// Everything a request handler may need, managed by Rocket.
pub struct AppState {
    pub db: Db,
    pub keys: Keyring,
    pub settings: Settings,
    pub login_limiter: DefaultKeyedRateLimiter<IpAddr>,
    /// New accounts: per client address, and for the whole portal.
    pub registrations: auth::registration::RegistrationLimits,
    /// Verified against when a login names no usable account (S2).
    pub dummy_hash: String,
    pub cases: cases::service::CaseCache,
    /// Sessions as last read, so most signed-in requests need no read.
    pub sessions: std::sync::Arc<auth::sessions::SessionCache>,
    /// Published consent documents, which never change once published.
    pub documents: std::sync::Arc<consent::service::DocumentCache>,
    pub roster_imports: roster::service::ImportCache,
    pub store: std::sync::Arc<dyn evidence::store::EvidenceStore>,
    /// Where every rule takes "now" from.
    pub clock: clock::Clock,
    /// The SMTP sender; `None` when no server is configured (mail waits in the outbox).
    pub mailer: Option<std::sync::Arc<mail::smtp::Mailer>>,
    /// Numbers audit events and signs the audit tree's checkpoints.
    pub audit: std::sync::Arc<audit::Sequencer>,
    /// The work of the background jobs that capabilities above `jobs` own.
    pub job_handlers: jobs::Handlers,
    /// Who hears of what happens to claims (review, of submissions).
    pub claim_listeners: claims::Listeners,
    /// Wakes this server's idle job runners when a job is queued here, so
    /// it starts at once instead of at the next poll.
    pub jobs_queued: jobs::Wake,
}

/// Which capability does each kind of background job.
fn job_handlers() -> jobs::Handlers {
    jobs::Handlers {
        export: rounds::export::export_job,
        export_given_up: rounds::export::export_given_up,
        sweep: reminders::sweep_job,
        signals: review::desk::signals_job,
    }
}

impl AppState {
    /// Connect, migrate, seed: the start-up sequence shared by the server and the CLI.
    pub async fn start(settings: Settings) -> Result<Self, String> {
        let db = Db::connect(&settings.database_url, settings.db_max_connections)
            .await
            .map_err(|e| format!("cannot connect to the database: {e}"))?;
        db.migrate().await.map_err(|e| format!("database migration failed: {e}"))?;
        let shipped = cases::seed::seed_cases(&db).await.map_err(|e| format!("seeding cases failed: {e}"))?;
        consent::seed::seed_documents(&db, shipped)
            .await
            .map_err(|e| format!("seeding consent documents failed: {e}"))?;
        let keys = Keyring::new(&settings.keys);
        let upgraded = claims::documents::upgrade_documents(&db, &keys)
            .await
            .map_err(|e| format!("rewriting claims as sealed documents failed: {}", e.chain()))?;
        if upgraded > 0 {
            tracing::info!(claims = upgraded, "claims rewritten as sealed documents");
        }
        let store: std::sync::Arc<dyn evidence::store::EvidenceStore> =
            match &settings.s3 {
                Some(s3) => {
                    let store = evidence::s3::S3Store::new(s3.expose());
                    if let Err(e) = store.ensure_bucket().await {
                        tracing::warn!(error = %e, "the S3 evidence store is not reachable yet");
                    }
                    std::sync::Arc::new(store)
                }
                None => std::sync::Arc::new(evidence::store::LocalStore::open(&settings.evidence_dir).await.map_err(
                    |e| format!("cannot open the evidence directory {}: {e}", settings.evidence_dir.display()),
                )?),
            };
        let mailer = mail::smtp::Mailer::from_settings(&settings.background)?.map(std::sync::Arc::new);
        let per_minute = NonZeroU32::new(settings.login_attempts_per_ip_per_minute).unwrap_or(NonZeroU32::MIN);
        let log_key = audit::checkpoint::LogKey::new(
            audit::checkpoint::LogKey::origin_for(&settings.background.public_url),
            &keys.audit_signing_seed(),
        );
        let copy = std::sync::Arc::new(evidence::store::CheckpointInStore(store.clone()));
        let audit = audit::Sequencer::new(db.clone(), log_key, settings.data_dir.clone(), copy);
        Ok(Self {
            mailer,
            audit: std::sync::Arc::new(audit),
            db,
            keys,
            login_limiter: RateLimiter::keyed(Quota::per_minute(per_minute)),
            registrations: auth::registration::RegistrationLimits::new(&settings),
            dummy_hash: auth::service::dummy_hash(),
            cases: Default::default(),
            sessions: Default::default(),
            documents: Default::default(),
            roster_imports: Default::default(),
            store,
            settings,
            clock: clock::Clock::system(),
            job_handlers: job_handlers(),
            claim_listeners: claims::Listeners { submitted: review::desk::on_submitted },
            jobs_queued: Default::default(),
        })
    }
}

impl AppState {
    /// A state for background work (bundle exports) sharing this one's
    /// database pool, keys, settings and store, with caches of its own.
    pub fn worker(&self) -> Self {
        let per_minute = NonZeroU32::new(self.settings.login_attempts_per_ip_per_minute).unwrap_or(NonZeroU32::MIN);
        Self {
            db: self.db.clone(),
            keys: self.keys.clone(),
            settings: self.settings.clone(),
            login_limiter: RateLimiter::keyed(Quota::per_minute(per_minute)),
            registrations: auth::registration::RegistrationLimits::new(&self.settings),
            dummy_hash: self.dummy_hash.clone(),
            cases: Default::default(),
            sessions: self.sessions.clone(),
            documents: self.documents.clone(),
            roster_imports: Default::default(),
            store: self.store.clone(),
            clock: self.clock.clone(),
            mailer: self.mailer.clone(),
            audit: self.audit.clone(),
            job_handlers: self.job_handlers,
            claim_listeners: self.claim_listeners,
            jobs_queued: self.jobs_queued.clone(),
        }
    }
}

/// glibc keeps freed memory per thread arena and raises its mmap threshold
/// after large frees (argon2 allocates 19 MiB per hash), so a long-running
/// server's RSS creeps up with blocking-pool threads. A fixed threshold and
/// two arenas keep large buffers returned to the system. Called first thing
/// by the binary, and by the benchmarks so that they measure the same
/// allocator as the server runs with.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub fn tune_allocator() {
    // SAFETY: mallopt only adjusts allocator parameters; called before any threads start.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
        libc::mallopt(libc::M_MMAP_THRESHOLD, 256 * 1024);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn tune_allocator() {}

/// The date in Japan at an instant.
pub fn today_of(at: chrono::DateTime<chrono::Utc>) -> chrono::NaiveDate {
    chrono::FixedOffset::east_opt(9 * 3600)
        .map(|jst| at.with_timezone(&jst).date_naive())
        .unwrap_or_else(|| at.date_naive())
}

/// Path ids are UUIDs; anything else is simply not found.
pub fn parse_id(raw: &str) -> AppResult<uuid::Uuid> {
    raw.parse().map_err(|_| AppError::NotFound)
}

/// Assemble the application. Settings are validated, the database
/// connected and migrated, and the shipped case seeded at ignition; any
/// failure stops the launch with a clear message.
pub fn build(figment: Figment) -> Rocket<Build> {
    rocket::custom(config::with_upload_limits(figment))
        .attach(AdHoc::try_on_ignite("Portal state", |rocket| async move {
            match ignite(rocket.figment()).await {
                Ok(state) => Ok(rocket.manage(state)),
                Err(e) => {
                    tracing::error!("{e}");
                    eprintln!("error: {e}");
                    Err(rocket)
                }
            }
        }))
        .attach(Template::custom(|engines| {
            engines.tera.register_function("t", i18n::tera_function());
            engines.tera.register_filter("yen", web::yen_filter);
            engines.tera.register_filter(
                "postal_code",
                web::text_filter(|s| domain::PostalCode::parse(s).ok().map(|p| p.display())),
            );
            engines
                .tera
                .register_filter("phone", web::text_filter(|s| domain::Phone::parse(s).ok().map(|p| p.display())));
            engines.tera.register_filter("approx_date", web::approx_date_filter);
        }))
        .attach(web::SecurityHeaders)
        .attach(AdHoc::on_liftoff("Background work", |rocket| {
            Box::pin(async move {
                if let Some(state) = rocket.state::<AppState>() {
                    if state.mailer.is_none() {
                        tracing::warn!("no SMTP server is configured (APP_SMTP_URL): mail waits in the outbox");
                    }
                    jobs::runner::spawn(state.worker(), state.mailer.clone());
                    state.audit.clone().spawn();
                    state.sessions.clone().listen(&state.db);
                    state.sessions.clone().watch(&state.db);
                }
            })
        }))
        .attach(AdHoc::on_liftoff("Announce address", |rocket| {
            Box::pin(async move {
                let c = rocket.config();
                println!("Portal ready at http://{}:{}/", c.address, c.port);
            })
        }))
        .attach(web::stage())
        .attach(auth::stage())
        .attach(cases::stage())
        .attach(audit::stage())
        .attach(intake::stage())
        .attach(evidence::stage())
        .attach(consent::stage())
        .attach(me::stage())
        .attach(review::stage())
        .attach(rounds::stage())
        .mount("/api/v1", openapi::routes())
}

/// The start-up the server does before it listens: settings, the state
/// (connect, migrate, seed), leftover uploads cleared, the bootstrap
/// administrator created on the first start.
async fn ignite(figment: &Figment) -> Result<AppState, String> {
    let state = AppState::start(Settings::from_figment(figment).map_err(|e| e.to_string())?).await?;
    // Uploads cut short by a crash or a lost database commit leave
    // objects behind; clear those older than the grace period.
    match evidence::service::reconcile(&state, evidence::service::RECONCILE_GRACE).await {
        Ok(report) if !report.missing_objects.is_empty() => {
            tracing::warn!(missing = report.missing_objects.len(), "evidence rows whose object is missing")
        }
        Ok(report) => tracing::info!(
            orphans = report.orphans_removed,
            unfinished = report.unfinished_removed,
            "evidence store reconciled"
        ),
        Err(e) => tracing::warn!(error = %e, "evidence reconciliation failed; continuing"),
    }
    let created = auth::service::bootstrap_admin(&state)
        .await
        .map_err(|e| format!("could not create the bootstrap administrator: {e}"))?;
    if let Some((email, password)) = created {
        // Into a file only the operator can read: never a terminal or a
        // container log, never the log.
        let path = auth::lifecycle::write_bootstrap_file(&state.settings, &email, &password)
            .map_err(|e| format!("could not write the bootstrap administrator's password file: {e}"))?;
        println!(
            "\n  Bootstrap administrator created: {email}\n  Its one-time password is in {} (readable by this user only);\n  a new one is chosen at the first sign-in.\n",
            path.display()
        );
    }
    Ok(state)
}
