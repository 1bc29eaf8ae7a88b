//! Operator commands: `app serve` (the default), `app user create`,
//! `app audit verify`, `app evidence reconcile`, `app roster import`,
//! `app case add-member`, `app claims downgrade-documents`; with the `dev` feature, `app dev …` (`crate::dev`).
use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::audit::Actor;
use crate::auth::{service, Role};
use crate::{AppState, Settings};

#[derive(Parser)]
#[command(name = "app", about = "Claimant intake portal for data-leak class actions")]
pub struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the web portal (the default).
    Serve,
    /// Manage accounts.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Audit log tools.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Evidence store tools.
    Evidence {
        #[command(subcommand)]
        command: EvidenceCommand,
    },
    /// Cases: who works on them.
    Case {
        #[command(subcommand)]
        command: CaseCommand,
    },
    /// The defendant's notice roster.
    Roster {
        #[command(subcommand)]
        command: RosterCommand,
    },
    /// Claims: the layout their drafts are stored in.
    Claims {
        #[command(subcommand)]
        command: ClaimsCommand,
    },
    /// Tools for development and benchmarks (built with the `dev` feature).
    #[cfg(feature = "dev")]
    Dev {
        #[command(subcommand)]
        command: crate::dev::DevCommand,
    },
}

#[derive(Subcommand)]
enum CaseCommand {
    /// Make a lawyer (by e-mail) a member of a case: lawyers read only their cases' claims.
    AddMember {
        #[arg(long)]
        case: String,
        #[arg(long)]
        email: String,
    },
}

#[derive(Subcommand)]
enum ClaimsCommand {
    /// Write every claim's draft back as rows (people and harms sealed one
    /// by one), the layout versions before the sealed document read. Run it
    /// with every app server stopped, before migrating the schema below
    /// `m20261203_000019_claim_documents`; a portal started afterwards
    /// rewrites the claims as documents again.
    DowngradeDocuments,
}

#[derive(Subcommand)]
enum RosterCommand {
    /// Import a notice roster (CSV with a header: registration_code,kana_name,birth_date,postal_code,phone).
    /// Only keyed hashes are stored. All-or-nothing: a failed import leaves nothing behind.
    Import {
        #[arg(long)]
        case: String,
        file: std::path::PathBuf,
    },
}

#[derive(Subcommand)]
enum EvidenceCommand {
    /// Remove orphaned and unfinished objects; report rows whose object is missing.
    Reconcile {
        /// Leave objects younger than this alone (an upload may be about to commit).
        #[arg(long, default_value_t = 15)]
        grace_minutes: u64,
    },
}

#[derive(Subcommand)]
enum UserCommand {
    /// Create an account; the password is read from standard input.
    Create {
        #[arg(long)]
        email: String,
        #[arg(long, value_parser = ["claimant", "lawyer", "admin"])]
        role: String,
        /// Read the password from standard input (required: never pass it as an argument).
        #[arg(long, required = true)]
        password_stdin: bool,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Rebuild the audit tree from the events and check it against every
    /// checkpoint (database, data directory, evidence store, and the files
    /// given); report the first event that is wrong or missing.
    Verify {
        /// A checkpoint saved earlier (from `app audit checkpoint`).
        #[arg(long = "against", value_name = "FILE")]
        against: Vec<PathBuf>,
    },
    /// Print the latest signed checkpoint and the key that verifies it, for
    /// keeping somewhere the portal cannot write.
    Checkpoint,
}

pub async fn run(cli: Cli) -> ExitCode {
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => match crate::build(crate::figment()).launch().await {
            Ok(_) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: the portal could not start: {e}");
                ExitCode::FAILURE
            }
        },
        Command::User { command: UserCommand::Create { email, role, .. } } => user_create(&email, &role).await,
        Command::Evidence { command: EvidenceCommand::Reconcile { grace_minutes } } => {
            evidence_reconcile(grace_minutes).await
        }
        Command::Case { command: CaseCommand::AddMember { case, email } } => case_add_member(&case, &email).await,
        Command::Roster { command: RosterCommand::Import { case, file } } => roster_import(&case, &file).await,
        Command::Claims { command: ClaimsCommand::DowngradeDocuments } => claims_downgrade().await,
        #[cfg(feature = "dev")]
        Command::Dev { command } => crate::dev::run(command).await,
        Command::Audit { command: AuditCommand::Verify { against } } => audit_verify(&against).await,
        Command::Audit { command: AuditCommand::Checkpoint } => audit_checkpoint().await,
    }
}

/// An error as an operator reads it, with each refused field; exit failure.
fn failed(e: &crate::error::AppError) -> ExitCode {
    eprintln!("error: {}", e.message(crate::i18n::Lang::En));
    for (field, message) in e.field_messages(crate::i18n::Lang::En) {
        eprintln!("  {field}: {message}");
    }
    ExitCode::FAILURE
}

/// `app user create`: the password from standard input, never an argument.
async fn user_create(email: &str, role: &str) -> ExitCode {
    let state = match state().await {
        Ok(s) => s,
        Err(code) => return code,
    };
    let mut password = String::new();
    if std::io::stdin().read_to_string(&mut password).is_err() {
        eprintln!("error: could not read the password from standard input");
        return ExitCode::FAILURE;
    }
    let password = password.trim_end_matches(['\r', '\n']);
    let (email, password) = match service::parse_credentials(email, password) {
        Ok(v) => v,
        Err(errors) => {
            for (field, message) in crate::error::translate_fields(&errors, crate::i18n::Lang::En) {
                eprintln!("error: {field}: {message}");
            }
            return ExitCode::FAILURE;
        }
    };
    let role = Role::parse(role).unwrap_or(Role::Claimant);
    match service::create_account(&state, &Actor::default(), &email, &password, role, crate::i18n::Lang::Ja).await {
        Ok(account) => {
            println!("created {} {} ({})", account.role.as_str(), account.email, account.id);
            ExitCode::SUCCESS
        }
        Err(e) => failed(&e),
    }
}

/// `app evidence reconcile`: fails when a row has no object.
async fn evidence_reconcile(grace_minutes: u64) -> ExitCode {
    let state = match state().await {
        Ok(s) => s,
        Err(code) => return code,
    };
    let grace = std::time::Duration::from_secs(grace_minutes * 60);
    match crate::evidence::service::reconcile(&state, grace).await {
        Ok(report) => {
            println!(
                "removed {} orphaned and {} unfinished objects; {} rows have no object",
                report.orphans_removed,
                report.unfinished_removed,
                report.missing_objects.len()
            );
            for id in &report.missing_objects {
                println!("  missing object for evidence {id}");
            }
            if report.missing_objects.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => failed(&e),
    }
}

/// `app case add-member`.
async fn case_add_member(case: &str, email: &str) -> ExitCode {
    let state = match state().await {
        Ok(s) => s,
        Err(code) => return code,
    };
    match crate::review::admin::add_member_by(&state, &Actor::default(), None, case, email).await {
        Ok(member) => {
            println!("{} ({}) is a member of {case}", member.email, member.user_id);
            ExitCode::SUCCESS
        }
        Err(e) => failed(&e),
    }
}

async fn audit_verify(against: &[PathBuf]) -> ExitCode {
    let mut given = Vec::new();
    for path in against {
        match std::fs::read_to_string(path) {
            Ok(note) => given.push(note),
            Err(e) => {
                eprintln!("error: cannot read {}: {e}", path.display());
                return ExitCode::FAILURE;
            }
        }
    }
    let state = match state().await {
        Ok(s) => s,
        Err(code) => return code,
    };
    if let Err(e) = state.audit.pass().await {
        eprintln!("warning: could not sequence pending events: {e}");
    }
    match state.audit.verify(&given).await {
        Ok(report) if report.ok => {
            println!(
                "audit log intact: {} events, root {}, checked against checkpoints up to {} ({} pending)",
                report.checked, report.root, report.checkpoint_size, report.pending
            );
            ExitCode::SUCCESS
        }
        Ok(report) => {
            let at = report.first_bad_seq.map(|s| format!(" at event {s}")).unwrap_or_default();
            println!(
                "audit log BROKEN{at}: {} ({} events verified before it)",
                report.reason.unwrap_or_default(),
                report.checked
            );
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `app claims downgrade-documents`. Connects without the start-up steps,
/// which would rewrite the claims as documents first.
async fn claims_downgrade() -> ExitCode {
    let settings = match settings() {
        Ok(s) => s,
        Err(code) => return code,
    };
    let db = match crate::db::Db::connect(&settings.database_url, 1).await {
        Ok(db) => db,
        Err(e) => {
            eprintln!("error: cannot connect to the database: {e}");
            return ExitCode::FAILURE;
        }
    };
    let keys = crate::crypto::Keyring::new(&settings.keys);
    match crate::claims::documents::downgrade_documents(&db, &keys).await {
        Ok(n) => {
            eprintln!("{n} claims written back as rows");
            ExitCode::SUCCESS
        }
        Err(e) => failed(&e),
    }
}

async fn audit_checkpoint() -> ExitCode {
    let state = match state().await {
        Ok(s) => s,
        Err(code) => return code,
    };
    if let Err(e) = state.audit.pass().await {
        eprintln!("warning: could not sequence pending events: {e}");
    }
    match crate::audit::latest_checkpoint(state.db.conn()).await {
        Ok(Some(c)) => {
            print!("{}", c.note);
            eprintln!("verifier key: {}", state.audit.key().verifier_key());
            ExitCode::SUCCESS
        }
        Ok(None) => {
            eprintln!("no checkpoint yet: the audit log is empty");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

pub(crate) fn bar(len: u64, template: &str) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(len);
    bar.set_style(
        indicatif::ProgressStyle::with_template(template)
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar
}

async fn roster_import(case: &str, file: &std::path::Path) -> ExitCode {
    let state = match state().await {
        Ok(s) => s,
        Err(code) => return code,
    };
    let opened = std::fs::File::open(file).and_then(|f| Ok((f.metadata()?.len(), f)));
    let (size, reader) = match opened {
        Ok(v) => v,
        Err(e) => {
            eprintln!("error: cannot open {}: {e}", file.display());
            return ExitCode::FAILURE;
        }
    };
    let progress = std::sync::Arc::new(crate::roster::service::Progress::default());
    let bar = bar(size, "{spinner} [{elapsed_precise}] [{wide_bar}] {bytes}/{total_bytes} {msg} ({eta} left)");
    let ticker = {
        let (bar, progress) = (bar.clone(), progress.clone());
        rocket::tokio::spawn(async move {
            loop {
                bar.set_position(progress.bytes_read.load(std::sync::atomic::Ordering::Relaxed));
                let lines = progress.rows.load(std::sync::atomic::Ordering::Relaxed);
                let parts = progress.parts_written.load(std::sync::atomic::Ordering::Relaxed);
                bar.set_message(if parts == 0 {
                    format!("{lines} lines")
                } else {
                    let total = crate::roster::service::SPILL_FILES;
                    format!("{lines} lines read; sorting and writing part {parts}/{total}")
                });
                rocket::tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            }
        })
    };
    let source = file.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
    let started = std::time::Instant::now();
    let result = crate::roster::service::import(&state, case, &source, reader, progress).await;
    ticker.abort();
    bar.finish_and_clear();
    match result {
        Ok(report) => {
            for (line, why) in &report.rejected {
                eprintln!("line {line}: skipped: {why}");
            }
            if report.rows_rejected > report.rejected.len() as u64 {
                eprintln!("… and {} more skipped lines", report.rows_rejected - report.rejected.len() as u64);
            }
            let secs = started.elapsed().as_secs_f64();
            println!(
                "imported {} lines ({} skipped) into case {case} in {secs:.1} s ({:.0} lines/s); import {}",
                report.rows_imported,
                report.rows_rejected,
                report.rows_imported as f64 / secs.max(1e-9),
                report.import_id
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: the import failed and left nothing behind: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The settings from the environment and `Rocket.toml`, or the error said.
fn settings() -> Result<Settings, ExitCode> {
    Settings::from_figment(&crate::figment()).map_err(|e| {
        eprintln!("error: {e}");
        ExitCode::FAILURE
    })
}

pub(crate) async fn state() -> Result<AppState, ExitCode> {
    AppState::start(settings()?).await.map_err(|e| {
        eprintln!("error: {e}");
        ExitCode::FAILURE
    })
}
