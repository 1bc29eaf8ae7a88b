//! Operator commands: `app serve` (the default), `app user create`,
//! `app audit verify`.
use std::io::Read;
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
    /// Recompute the hash chain and report the first broken event.
    Verify,
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
        Command::User { command: UserCommand::Create { email, role, .. } } => {
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
            let (email, password) = match service::parse_credentials(&email, password) {
                Ok(v) => v,
                Err(errors) => {
                    for (field, message) in crate::error::translate_fields(&errors, crate::i18n::Lang::En) {
                        eprintln!("error: {field}: {message}");
                    }
                    return ExitCode::FAILURE;
                }
            };
            let role = Role::parse(&role).unwrap_or(Role::Claimant);
            match service::create_account(&state, &Actor::default(), &email, &password, role).await {
                Ok(account) => {
                    println!("created {} {} ({})", account.role.as_str(), account.email, account.id);
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: {}", e.message(crate::i18n::Lang::En));
                    for (field, message) in e.field_messages(crate::i18n::Lang::En) {
                        eprintln!("  {field}: {message}");
                    }
                    ExitCode::FAILURE
                }
            }
        }
        Command::Evidence { command: EvidenceCommand::Reconcile { grace_minutes } } => {
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
                Err(e) => {
                    eprintln!("error: {}", e.message(crate::i18n::Lang::En));
                    ExitCode::FAILURE
                }
            }
        }
        Command::Audit { command: AuditCommand::Verify } => {
            let state = match state().await {
                Ok(s) => s,
                Err(code) => return code,
            };
            match crate::audit::verify_chain(state.db.conn()).await {
                Ok(report) if report.ok => {
                    println!("audit chain intact: {} events", report.checked);
                    ExitCode::SUCCESS
                }
                Ok(report) => {
                    println!(
                        "audit chain BROKEN at event {}: {} ({} events verified before it)",
                        report.first_bad_seq.unwrap_or_default(),
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
    }
}

async fn state() -> Result<AppState, ExitCode> {
    let settings = Settings::from_figment(&crate::figment()).map_err(|e| {
        eprintln!("error: {e}");
        ExitCode::FAILURE
    })?;
    AppState::start(settings).await.map_err(|e| {
        eprintln!("error: {e}");
        ExitCode::FAILURE
    })
}
