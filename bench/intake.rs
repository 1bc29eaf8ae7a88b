//! Intake throughput benchmark: `cargo bench --bench intake`.
//!
//! Starts the release-built application on loopback (SQLite, then
//! PostgreSQL when reachable), and drives complete intakes — create the
//! claim, fill the whole draft, sign the three consent documents, submit —
//! from 64 concurrent clients over
//! HTTP. Sign-in is excluded: sessions are opened directly before the clock
//! starts. Prints intakes/s and latency percentiles per intake, and the same
//! build's `GET /health` requests/s as the ceiling of the HTTP stack. Then
//! what bounds it: the machine's CPU time per intake and per `/health`
//! request (all processes, from /proc/stat, with the hypervisor's steal),
//! on SQLite how much of the run the one writer lock was held, and the
//! database trips per intake as the app counts them.
//!
//! Environment: BENCH_INTAKES (default 3000), BENCH_CLIENTS (64), BENCH_SQLITE_CONNECTIONS and
//! BENCH_PG_CONNECTIONS (the server's pool size, default 16),
//! BENCH_POSTGRES_URL (default postgres://postgres@127.0.0.1:5432/test; "off" skips).
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use portal::app;
use sea_orm::ActiveModelTrait;
use uuid::Uuid;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Create `n` claimants and open a session for each, without argon2 (the
/// password step is not what this benchmark measures).
async fn claimant_tokens(state: &app::AppState, n: usize) -> Vec<String> {
    let hash = app::auth::service::dummy_hash();
    let now = state.clock.now();
    let mut tokens = Vec::with_capacity(n);
    for chunk in (0..n).collect::<Vec<_>>().chunks(500) {
        let txn = state.db.begin_write().await.expect("begin");
        for i in chunk {
            let id = Uuid::new_v4();
            let email = app::domain::Email::parse(&format!("bench{i}-{}@example.jp", id.simple())).expect("email");
            let user =
                app::auth::service::new_user_row(&state.keys, id, &email, hash.clone(), app::auth::Role::Claimant, now)
                    .insert(&*txn)
                    .await
                    .expect("user");
            let session =
                app::auth::service::open_session(state, &txn, &Default::default(), &user, app::auth::Role::Claimant)
                    .await
                    .expect("session");
            tokens.push(session.token);
        }
        txn.commit().await.expect("commit");
    }
    tokens
}

async fn one_intake(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    draft: &serde_json::Value,
    documents: &[String],
) -> Result<(), String> {
    let created = http
        .post(format!("{base}/api/v1/claims"))
        .bearer_auth(token)
        .json(&serde_json::json!({"case": "benesse-2014"}))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if created.status() != reqwest::StatusCode::CREATED {
        return Err(format!("create: {}", created.status()));
    }
    let body: serde_json::Value = created.json().await.map_err(|e| e.to_string())?;
    let id = body["id"].as_str().ok_or("no id")?.to_string();
    let saved = http
        .put(format!("{base}/api/v1/claims/{id}"))
        .bearer_auth(token)
        .json(draft)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if !saved.status().is_success() {
        return Err(format!("save: {}", saved.status()));
    }
    let _ = saved.bytes().await;
    for document in documents {
        let signed = http
            .post(format!("{base}/api/v1/claims/{id}/consents"))
            .bearer_auth(token)
            .json(&serde_json::json!({"document_id": document, "signer_name": "山田 花子"}))
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if signed.status() != reqwest::StatusCode::CREATED {
            return Err(format!("sign: {}", signed.status()));
        }
        let _ = signed.bytes().await;
    }
    let submitted = http
        .post(format!("{base}/api/v1/claims/{id}/submit"))
        .bearer_auth(token)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if !submitted.status().is_success() {
        return Err(format!("submit: {}", submitted.status()));
    }
    let _ = submitted.bytes().await;
    Ok(())
}

/// A complete draft whose people are nobody else's (distinct birth dates),
/// as in real intake, where possible duplicates are rare.
fn distinct_draft(i: usize) -> serde_json::Value {
    let day = |base: (i32, u32, u32), offset: usize| {
        let d = chrono::NaiveDate::from_ymd_opt(base.0, base.1, base.2).unwrap_or_default()
            + chrono::Duration::days(offset as i64);
        d.to_string()
    };
    let mut draft = portal::complete_draft("やまだ", &day((1950, 1, 1), i % 15_000));
    draft["persons"][1]["birth_date"] = serde_json::json!(day((1995, 1, 1), i % 9_000));
    draft
}

struct Figures {
    intakes: usize,
    errors: usize,
    seconds: f64,
    p50: f64,
    p99: f64,
    max: f64,
    health_rps: f64,
    /// Machine-wide busy CPU time (every process: client, server, PostgreSQL) per intake.
    cpu_ms_per_intake: f64,
    cpu_ms_per_health: f64,
    /// The share of CPU time the hypervisor gave to other guests during the run.
    steal_share: f64,
    /// The SQLite writer lock during the measured run (none on PostgreSQL).
    writer: Option<app::db::WriterFigures>,
    /// Database trips during the measured run, as the app counted them.
    trips: app::db::TripFigures,
}

/// Machine-wide CPU time from /proc/stat, in milliseconds.
struct MachineCpu {
    busy_ms: f64,
    idle_ms: f64,
    steal_ms: f64,
}

impl MachineCpu {
    fn now() -> Self {
        let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
        let ticks: Vec<f64> =
            stat.lines().next().unwrap_or_default().split_whitespace().skip(1).filter_map(|v| v.parse().ok()).collect();
        // Fields: user nice system idle iowait irq softirq steal, in USER_HZ (100) ticks.
        let at = |i: usize| ticks.get(i).copied().unwrap_or(0.0) * 10.0;
        Self { busy_ms: at(0) + at(1) + at(2) + at(5) + at(6), idle_ms: at(3) + at(4), steal_ms: at(7) }
    }
    fn since(&self, earlier: &Self) -> Self {
        Self {
            busy_ms: self.busy_ms - earlier.busy_ms,
            idle_ms: self.idle_ms - earlier.idle_ms,
            steal_ms: self.steal_ms - earlier.steal_ms,
        }
    }
    fn steal_share(&self) -> f64 {
        let total = self.busy_ms + self.idle_ms + self.steal_ms;
        if total > 0.0 {
            self.steal_ms / total
        } else {
            0.0
        }
    }
}

async fn drive(base: String, tokens: Vec<String>, clients: usize) -> (Vec<Duration>, usize, Duration) {
    let http = reqwest::Client::builder().pool_max_idle_per_host(clients).build().expect("client");
    let documents: serde_json::Value = http
        .get(format!("{base}/api/v1/cases/benesse-2014/documents"))
        .send()
        .await
        .expect("documents")
        .json()
        .await
        .expect("documents json");
    let documents: Arc<Vec<String>> = Arc::new(
        documents.as_array().expect("a list").iter().filter_map(|d| d["id"].as_str().map(str::to_string)).collect(),
    );
    let tokens = Arc::new(tokens);
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let (http, base, tokens, next, documents) =
            (http.clone(), base.clone(), tokens.clone(), next.clone(), documents.clone());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut errors = 0;
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(token) = tokens.get(i) else { break };
                let draft = distinct_draft(i);
                let t = Instant::now();
                match one_intake(&http, &base, token, &draft, &documents).await {
                    Ok(()) => latencies.push(t.elapsed()),
                    Err(e) => {
                        errors += 1;
                        if errors < 3 {
                            eprintln!("intake failed: {e}");
                        }
                    }
                }
            }
            (latencies, errors)
        }));
    }
    let mut all = Vec::new();
    let mut errors = 0;
    for t in tasks {
        let (l, e) = t.await.expect("client task");
        all.extend(l);
        errors += e;
    }
    (all, errors, started.elapsed())
}

async fn health_ceiling(base: &str, clients: usize, duration: Duration) -> (usize, f64) {
    let http = reqwest::Client::builder().pool_max_idle_per_host(clients).build().expect("client");
    let count = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let (http, url, count) = (http.clone(), format!("{base}/health"), count.clone());
        tasks.push(tokio::spawn(async move {
            while started.elapsed() < duration {
                if let Ok(r) = http.get(&url).send().await {
                    if r.status().is_success() && r.bytes().await.is_ok() {
                        count.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    let count = count.load(Ordering::Relaxed);
    (count, count as f64 / started.elapsed().as_secs_f64())
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx].as_secs_f64() * 1000.0
}

fn run_backend(postgres: Option<&str>, intakes: usize, clients: usize, connections: usize) -> Figures {
    // The server gets its own runtime (2 workers, like the machine's 2 cores);
    // the clients run on another, so neither starves the other's scheduler.
    let server_rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("rt");
    let client_rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("rt");
    let app = server_rt.block_on(portal::spawn_app_at(postgres, |f| f.merge(("db_max_connections", connections))));
    let base = app.address.clone();
    let warmup = 200.min(intakes / 5);
    let tokens = client_rt.block_on(async {
        let state = app.state().await;
        claimant_tokens(&state, warmup + intakes).await
    });
    let (warm, measured) = tokens.split_at(warmup);
    client_rt.block_on(drive(base.clone(), warm.to_vec(), clients));
    let writer_before = app.served_db.writer_figures();
    let trips_before = app.served_db.trip_figures();
    let cpu_before = MachineCpu::now();
    let (mut latencies, errors, elapsed) = client_rt.block_on(drive(base.clone(), measured.to_vec(), clients));
    let cpu = MachineCpu::now().since(&cpu_before);
    let writer_after = app.served_db.writer_figures();
    let trips = app.served_db.trip_figures() - trips_before;
    let writer = writer_after.zip(writer_before).map(|(after, before)| after - before);
    latencies.sort();
    let cpu_health_before = MachineCpu::now();
    let (health_requests, health_rps) = client_rt.block_on(health_ceiling(&base, clients, Duration::from_secs(3)));
    let cpu_health = MachineCpu::now().since(&cpu_health_before);
    let figures = Figures {
        intakes: latencies.len(),
        errors,
        seconds: elapsed.as_secs_f64(),
        p50: percentile(&latencies, 0.50),
        p99: percentile(&latencies, 0.99),
        max: percentile(&latencies, 1.0),
        health_rps,
        cpu_ms_per_intake: cpu.busy_ms / latencies.len().max(1) as f64,
        cpu_ms_per_health: cpu_health.busy_ms / health_requests.max(1) as f64,
        steal_share: cpu.steal_share(),
        writer,
        trips,
    };
    drop(app);
    server_rt.shutdown_timeout(Duration::from_secs(2));
    figures
}

fn main() {
    // `cargo test --all-targets` runs bench binaries without `--bench`: do nothing then.
    if !std::env::args().any(|a| a == "--bench") {
        println!("intake benchmark: run it with `cargo bench --bench intake`");
        return;
    }
    // The allocator settings the server binary runs with.
    app::tune_allocator();
    let intakes = env_usize("BENCH_INTAKES", 3000);
    let clients = env_usize("BENCH_CLIENTS", 64);
    let postgres =
        std::env::var("BENCH_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let mut backends: Vec<(&str, Option<&str>)> = vec![("sqlite", None)];
    if postgres != "off" {
        backends.push(("postgres", Some(postgres.as_str())));
    }
    let mut results = Vec::new();
    for (name, url) in backends {
        let connections =
            env_usize(if url.is_some() { "BENCH_PG_CONNECTIONS" } else { "BENCH_SQLITE_CONNECTIONS" }, 16);
        results.push((name, run_backend(url, intakes, clients, connections)));
    }
    println!("Complete intakes (create + fill + sign 3 documents + submit; sign-in excluded), {clients} concurrent clients, {intakes} intakes per backend, release build, {cores} cores");
    println!(
        "{:<10} {:>8} {:>7} {:>8} {:>10} {:>9} {:>9} {:>9} {:>13}",
        "backend", "intakes", "errors", "seconds", "intakes/s", "p50 ms", "p99 ms", "max ms", "/health req/s"
    );
    for (name, f) in &results {
        println!(
            "{:<10} {:>8} {:>7} {:>8.2} {:>10.0} {:>9.1} {:>9.1} {:>9.1} {:>13.0}",
            name,
            f.intakes,
            f.errors,
            f.seconds,
            f.intakes as f64 / f.seconds,
            f.p50,
            f.p99,
            f.max,
            f.health_rps
        );
    }
    println!();
    println!("Machine CPU (all processes, from /proc/stat) and the SQLite writer lock during the measured intakes:");
    println!(
        "{:<10} {:>17} {:>19} {:>7} {:>22} {:>15} {:>15}",
        "backend",
        "CPU ms per intake",
        "CPU ms per /health",
        "steal",
        "writer lock held",
        "per write txn",
        "write txns"
    );
    for (name, f) in &results {
        let (held, per_txn, txns) = match f.writer {
            Some(w) if w.transactions > 0 => (
                format!("{:.0} % of the run", w.held.as_secs_f64() / f.seconds * 100.0),
                format!("{:.2} ms", w.held.as_secs_f64() * 1000.0 / w.transactions as f64),
                format!("{:.1}/intake", w.transactions as f64 / f.intakes.max(1) as f64),
            ),
            _ => ("-".into(), "-".into(), "-".into()),
        };
        println!(
            "{:<10} {:>17.2} {:>19.3} {:>6.0}% {:>22} {:>15} {:>15}",
            name,
            f.cpu_ms_per_intake,
            f.cpu_ms_per_health,
            f.steal_share * 100.0,
            held,
            per_txn,
            txns
        );
    }
    println!();
    println!("Database trips per intake, counted by the app (a trip: a statement, BEGIN/COMMIT/ROLLBACK, a pool acquire, a ping):");
    println!(
        "{:<10} {:>7} {:>11} {:>14} {:>9} {:>6}",
        "backend", "trips", "statements", "BEGIN/COMMIT", "acquires", "pings"
    );
    for (name, f) in &results {
        let per = |n: u64| n as f64 / f.intakes.max(1) as f64;
        println!(
            "{:<10} {:>7.1} {:>11.1} {:>14.1} {:>9.1} {:>6.1}",
            name,
            per(f.trips.total()),
            per(f.trips.statements),
            per(f.trips.transaction_control),
            per(f.trips.acquires),
            per(f.trips.pings)
        );
    }
    println!(
        "Targets: at most 24 trips per intake; machine CPU per intake at most 3.0 ms on SQLite and 5.0 ms on PostgreSQL; p99 under 200 ms at 64 clients."
    );
}
