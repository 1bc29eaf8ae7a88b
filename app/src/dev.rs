//! Development and benchmark tools, in the binary only when it is built
//! with the `dev` feature (the benchmark scripts and the test suite do; a
//! release build for production does not): synthetic rosters and rounds,
//! lookup timing, the per-byte cost of evidence.
use std::process::ExitCode;

use clap::Subcommand;

use crate::cli::{bar, state};

#[derive(Subcommand)]
pub enum DevCommand {
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

pub async fn run(command: DevCommand) -> ExitCode {
    match command {
        DevCommand::GenRoster { rows, seed, bad_every, out } => gen_roster(rows, seed, bad_every, out.as_deref()),
        DevCommand::SeedRound { case, plaintiffs, files, file_bytes, plain_dir } => {
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
        DevCommand::BenchLookup { case, rows, seed, samples } => bench_lookup(&case, rows, seed, samples).await,
        DevCommand::CryptoSpeed { mb } => crypto_speed(mb),
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
