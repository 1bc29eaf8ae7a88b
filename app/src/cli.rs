//! Operator commands: `app serve` (the default), `app user create`,
//! `app audit verify`, `app evidence reconcile`, `app roster import`,
//! `app dev gen-roster`.
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
    /// Tools for development and benchmarks.
    Dev {
        #[command(subcommand)]
        command: DevCommand,
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
enum DevCommand {
    /// Write a synthetic roster (deterministic for a seed) to a file or standard output.
    GenRoster {
        #[arg(long)]
        rows: u64,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Spoil every n-th line (0: none) so that imports have lines to reject.
        #[arg(long, default_value_t = 0)]
        bad_every: u64,
        #[arg(long)]
        out: Option<std::path::PathBuf>,
    },
    /// Make a synthetic frozen round for the export benchmark (claims with a
    /// child each, evidence uploaded through the real path); also writes the
    /// plaintext files to a directory. Prints the round id.
    SeedRound {
        #[arg(long, default_value = "benesse-2014")]
        case: String,
        #[arg(long)]
        plaintiffs: u64,
        #[arg(long)]
        files: u64,
        #[arg(long, default_value_t = 50_000)]
        file_bytes: usize,
        #[arg(long)]
        plain_dir: std::path::PathBuf,
    },
    /// Time roster lookups (the verification query) for lines of a synthetic
    /// roster already imported with the same seed; half the samples are absent.
    BenchLookup {
        #[arg(long)]
        case: String,
        #[arg(long)]
        rows: u64,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        #[arg(long, default_value_t = 2000)]
        samples: u64,
    },
    /// Measure, on one core, what every evidence byte must go through: the
    /// SHA-256 digest and the chunked AEAD sealing. Prints MB/s and CPU
    /// milliseconds per MB; the evidence benchmark compares them with its
    /// budget.
    CryptoSpeed {
        #[arg(long, default_value_t = 256)]
        mb: usize,
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
            match service::create_account(&state, &Actor::default(), &email, &password, role, crate::i18n::Lang::Ja)
                .await
            {
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
        Command::Case { command: CaseCommand::AddMember { case, email } } => {
            let state = match state().await {
                Ok(s) => s,
                Err(code) => return code,
            };
            let actor = crate::audit::Actor::default();
            match crate::review::admin::add_member_by(&state, &actor, None, &case, &email).await {
                Ok(member) => {
                    println!("{} ({}) is a member of {case}", member.email, member.user_id);
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
        Command::Roster { command: RosterCommand::Import { case, file } } => roster_import(&case, &file).await,
        Command::Dev { command: DevCommand::GenRoster { rows, seed, bad_every, out } } => {
            gen_roster(rows, seed, bad_every, out.as_deref())
        }
        Command::Dev { command: DevCommand::SeedRound { case, plaintiffs, files, file_bytes, plain_dir } } => {
            let state = match state().await {
                Ok(s) => s,
                Err(code) => return code,
            };
            let claims = plaintiffs.div_ceil(2);
            let bar = bar(claims, "{spinner} seeding claims {bar:40} {pos}/{len} ({eta})");
            let seeded =
                crate::rounds::synthetic::seed_round(&state, &case, plaintiffs, files, file_bytes, &plain_dir, |n| {
                    bar.set_position(n)
                })
                .await;
            bar.finish_and_clear();
            match seeded {
                Ok(id) => {
                    println!("{id}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Dev { command: DevCommand::BenchLookup { case, rows, seed, samples } } => {
            bench_lookup(&case, rows, seed, samples).await
        }
        Command::Dev { command: DevCommand::CryptoSpeed { mb } } => crypto_speed(mb),
        Command::Audit { command: AuditCommand::Verify { against } } => audit_verify(&against).await,
        Command::Audit { command: AuditCommand::Checkpoint } => audit_checkpoint().await,
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

fn bar(len: u64, template: &str) -> indicatif::ProgressBar {
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

async fn bench_lookup(case: &str, rows: u64, seed: u64, samples: u64) -> ExitCode {
    use crate::roster::domain::{keys_of_row, parse_row};
    let state = match state().await {
        Ok(s) => s,
        Err(code) => return code,
    };
    let case = match crate::cases::service::by_slug(state.db.conn(), case).await {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {}", e.message(crate::i18n::Lang::En));
            return ExitCode::FAILURE;
        }
    };
    let mut times = Vec::with_capacity(samples as usize);
    let (mut hits, mut misses) = (0u64, 0u64);
    for i in 0..samples {
        // Even samples are lines of the roster; odd ones come from another seed.
        let line = (i.wrapping_mul(7_919_993)) % rows.max(1);
        let fields = crate::roster::synthetic::row(if i % 2 == 0 { seed } else { seed ^ 0xdead_beef }, line);
        let refs: Vec<&str> = fields.iter().map(String::as_str).collect();
        let Ok(row) = parse_row(&refs) else { continue };
        let hashes = [keys_of_row(&state.keys, &row)];
        let started = std::time::Instant::now();
        match crate::roster::service::lookup(&state, case.model.id, &hashes).await {
            Ok(found) => {
                times.push(started.elapsed());
                // A line of the roster must be found by every value it has.
                let all = crate::roster::service::RosterMatch {
                    code: row.code.is_some(),
                    identity: true,
                    phone: row.phone.is_some(),
                    postal_kana: true,
                };
                if i % 2 == 0 && found != all {
                    eprintln!("error: roster line {line} was not found by all its values: {found:?}");
                    return ExitCode::FAILURE;
                }
                if found.identity || found.code {
                    hits += 1
                } else {
                    misses += 1
                }
            }
            Err(e) => {
                eprintln!("error: {}", e.message(crate::i18n::Lang::En));
                return ExitCode::FAILURE;
            }
        }
    }
    times.sort();
    let pct = |p: f64| times.get(((times.len() as f64 - 1.0) * p).round() as usize).map(|d| d.as_secs_f64() * 1000.0);
    println!(
        "lookups: {} ({} found, {} not found); p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms (one statement: each key's bucket by primary key)",
        times.len(),
        hits,
        misses,
        pct(0.5).unwrap_or(f64::NAN),
        pct(0.99).unwrap_or(f64::NAN),
        pct(1.0).unwrap_or(f64::NAN)
    );
    ExitCode::SUCCESS
}

/// One core's speed at the per-byte work of an evidence upload.
fn crypto_speed(mb: usize) -> ExitCode {
    use crate::evidence::domain::{ChunkSealer, CHUNK};
    use sha2::{Digest, Sha256};
    use std::time::Instant;
    let bytes = mb.max(1) * 1_000_000;
    let mut data = vec![0u8; CHUNK];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut data);
    let key = crate::crypto::DataKey::generate();
    let chunks = bytes / CHUNK;
    let megabytes = (chunks * CHUNK) as f64 / 1e6;
    let report = |what: &str, seconds: f64| {
        println!("{what:<28} {:>8.0} MB/s {:>7.3} ms/MB", megabytes / seconds, seconds * 1000.0 / megabytes);
    };

    let started = Instant::now();
    let mut hasher = Sha256::new();
    for _ in 0..chunks {
        hasher.update(&data);
    }
    std::hint::black_box(hasher.finalize());
    report("sha-256", started.elapsed().as_secs_f64());

    let mut sealer = ChunkSealer::new(key.bytes());
    let mut buf = Vec::with_capacity(CHUNK + 16);
    let started = Instant::now();
    for _ in 0..chunks {
        buf.clear();
        buf.extend_from_slice(&data);
        if sealer.seal_in_place(&mut buf, false).is_err() {
            eprintln!("sealing failed");
            return ExitCode::FAILURE;
        }
        std::hint::black_box(&buf);
    }
    report("xchacha20-poly1305 sealing", started.elapsed().as_secs_f64());
    ExitCode::SUCCESS
}

fn gen_roster(rows: u64, seed: u64, bad_every: u64, out: Option<&std::path::Path>) -> ExitCode {
    let bar = bar(rows, "{spinner} [{elapsed_precise}] [{wide_bar}] {pos}/{len} lines");
    let tick = |n| bar.set_position(n);
    let written = match out {
        Some(path) => std::fs::File::create(path).and_then(|f| {
            crate::roster::synthetic::write(&mut std::io::BufWriter::new(f), seed, rows, bad_every, tick)
        }),
        None => {
            bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
            crate::roster::synthetic::write(
                &mut std::io::BufWriter::new(std::io::stdout().lock()),
                seed,
                rows,
                bad_every,
                tick,
            )
        }
    };
    bar.finish_and_clear();
    match written {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
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
