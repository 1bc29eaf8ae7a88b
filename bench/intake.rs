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
//! Then, on PostgreSQL, one and two app servers as separate processes of
//! the release binary (`cargo build --release -p app` first) on one
//! database, the clients spread over them, and `app audit verify` after each.
//!
//! Environment: BENCH_INTAKES (default 3000), BENCH_CLIENTS (64), BENCH_SQLITE_CONNECTIONS and
//! BENCH_PG_CONNECTIONS (the server's pool size, default 16),
//! BENCH_POSTGRES_URL (default postgres://postgres@127.0.0.1:5432/test; "off" skips),
//! BENCH_APP_BIN (the release binary; default `$CARGO_TARGET_DIR/release/app` when it exists).
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use portal::{app, load};

/// Intakes traced request by request, before the measured run.
const TRACED: usize = 5;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
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
    /// The trips of each request of one intake (see `trace_steps`).
    steps: Vec<(&'static str, app::db::TripFigures)>,
    /// Events still unsequenced when the last intake was answered, and how
    /// long until the sequencer had numbered them all.
    audit_pending_at_end: u64,
    audit_lag: Duration,
    /// `app audit verify` after the run.
    audit: app::audit::TreeReport,
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
    drive_servers(vec![base], tokens, clients).await
}

/// Drive intakes from `clients` clients, client k talking to `bases[k % n]`.
async fn drive_servers(bases: Vec<String>, tokens: Vec<String>, clients: usize) -> (Vec<Duration>, usize, Duration) {
    let http = reqwest::Client::builder().pool_max_idle_per_host(clients).build().expect("client");
    let documents = Arc::new(load::documents(&http, &bases[0]).await);
    let tokens = Arc::new(tokens);
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for client in 0..clients {
        let base = bases[client % bases.len()].clone();
        let (http, tokens, next, documents) = (http.clone(), tokens.clone(), next.clone(), documents.clone());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut errors = 0;
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(token) = tokens.get(i) else { break };
                let draft = load::distinct_draft(i);
                let t = Instant::now();
                match load::one_intake(&http, &base, token, &draft, &documents, &mut Default::default()).await {
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

/// Unsequenced events now, and the time until there are none.
async fn audit_lag(app: &portal::TestApp) -> (u64, Duration) {
    use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
    let start = Instant::now();
    let pending = || {
        entities::audit_event::Entity::find()
            .filter(entities::audit_event::Column::Seq.is_null())
            .count(app.served_db.conn())
    };
    let at_end = pending().await.unwrap_or(0);
    while pending().await.unwrap_or(0) > 0 && start.elapsed() < Duration::from_secs(30) {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    (at_end, start.elapsed())
}

/// The trips of each request of one intake, on an otherwise idle server
/// with the audit sequencer held (its work is counted in the run's total,
/// not here). The least of `runs` intakes per step: other background work
/// (job polling) can only add to a step.
async fn trace_steps(app: &portal::TestApp, tokens: &[String]) -> Vec<(&'static str, app::db::TripFigures)> {
    use load::Step;
    let http = reqwest::Client::new();
    let base = app.address.as_str();
    let documents = load::documents(&http, base).await;
    let steps: Vec<Step> = [Step::Create, Step::Save]
        .into_iter()
        .chain(documents.iter().map(|_| Step::Sign))
        .chain([Step::Submit])
        .collect();
    let mut least: Vec<Option<app::db::TripFigures>> = vec![None; steps.len()];
    let _held = app.audit.hold().await;
    for (i, token) in tokens.iter().enumerate() {
        let draft = load::distinct_draft(1_000_000 + i);
        let mut claim = String::new();
        let mut signed = 0;
        for (k, step) in steps.iter().enumerate() {
            let document = if *step == Step::Sign { documents[signed].as_str() } else { "" };
            // A pooled connection's release ping runs after the answer.
            tokio::time::sleep(Duration::from_millis(20)).await;
            let before = app.served_db.trip_figures();
            match load::step(&http, base, token, *step, &claim, &draft, document).await {
                Ok(Some(id)) => claim = id,
                Ok(None) => {}
                Err(e) => panic!("traced intake: {e}"),
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
            let trips = app.served_db.trip_figures() - before;
            if *step == Step::Sign {
                signed += 1;
            }
            if least[k].is_none_or(|l| trips.total() < l.total()) {
                least[k] = Some(trips);
            }
        }
    }
    steps.iter().zip(least).map(|(s, t)| (s.label(), t.unwrap_or_default())).collect()
}

fn run_backend(postgres: Option<&str>, intakes: usize, clients: usize, connections: usize) -> Figures {
    // The server gets its own runtime (2 workers, like the machine's 2 cores);
    // the clients run on another, so neither starves the other's scheduler.
    let server_rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("rt");
    let client_rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("rt");
    let app = server_rt.block_on(portal::spawn_app_at(postgres, |f| f.merge(("db_max_connections", connections))));
    let base = app.address.clone();
    let warmup = 200.min(intakes / 5);
    // Sessions opened by the serving process, as its sign-in does: the
    // first request finds its session in memory.
    let tokens = server_rt.block_on(load::claimant_tokens(&app.served_state, warmup + TRACED + intakes));
    let (warm, rest) = tokens.split_at(warmup);
    let (traced, measured) = rest.split_at(TRACED);
    client_rt.block_on(drive(base.clone(), warm.to_vec(), clients));
    let steps = server_rt.block_on(trace_steps(&app, traced));
    let writer_before = app.served_db.writer_figures();
    let trips_before = app.served_db.trip_figures();
    let cpu_before = MachineCpu::now();
    let (mut latencies, errors, elapsed) = client_rt.block_on(drive(base.clone(), measured.to_vec(), clients));
    let cpu = MachineCpu::now().since(&cpu_before);
    let writer_after = app.served_db.writer_figures();
    let trips = app.served_db.trip_figures() - trips_before;
    let (audit_pending_at_end, audit_lag) = server_rt.block_on(audit_lag(&app));
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
        steps,
        audit_pending_at_end,
        audit_lag,
        audit: server_rt.block_on(app.audit_report()),
    };
    drop(app);
    server_rt.shutdown_timeout(Duration::from_secs(2));
    figures
}

/// One app server as its own process (the release binary), on `database_url`.
struct Process {
    child: std::process::Child,
    base: String,
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn process_env(database_url: &str, data: &std::path::Path, keys: &[String; 3]) -> Vec<(String, String)> {
    vec![
        ("DATABASE_URL".into(), database_url.into()),
        ("APP_DATA_DIR".into(), data.display().to_string()),
        ("APP_JWT_SECRET".into(), keys[0].clone()),
        ("APP_MASTER_KEY".into(), keys[1].clone()),
        ("APP_BLIND_INDEX_KEY".into(), keys[2].clone()),
        ("APP_DB_MAX_CONNECTIONS".into(), env_usize("BENCH_PG_CONNECTIONS", 16).to_string()),
        ("ROCKET_LOG_LEVEL".into(), "off".into()),
        ("RUST_LOG".into(), "error".into()),
    ]
}

async fn start_process(binary: &std::path::Path, env: Vec<(String, String)>) -> Process {
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port").local_addr().expect("addr").port();
    let child = std::process::Command::new(binary)
        .arg("serve")
        .envs(env)
        .env("ROCKET_PORT", port.to_string())
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("the app binary starts");
    let process = Process { child, base: format!("http://127.0.0.1:{port}") };
    for _ in 0..400 {
        if reqwest::get(format!("{}/health", process.base)).await.is_ok_and(|r| r.status().is_success()) {
            return process;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the app process did not come up");
}

/// The release binary for the multi-process mode: `BENCH_APP_BIN`, else
/// `target/release/app` when built (`cargo build --release -p app`).
fn app_binary() -> Option<std::path::PathBuf> {
    if let Ok(path) = std::env::var("BENCH_APP_BIN") {
        return Some(path.into());
    }
    let target = std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "target".into());
    let path = std::path::Path::new(&target).join("release").join("app");
    path.exists().then_some(path)
}

/// Figures of the multi-process mode.
struct ProcessFigures {
    processes: usize,
    intakes: usize,
    errors: usize,
    seconds: f64,
    p50: f64,
    p99: f64,
    cpu_ms_per_intake: f64,
    verify: String,
}

/// `processes` app servers as processes of the release binary on one fresh
/// PostgreSQL database, the clients spread over them; then `app audit verify`.
fn run_processes(
    binary: &std::path::Path,
    postgres: &str,
    processes: usize,
    intakes: usize,
    clients: usize,
) -> ProcessFigures {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("rt");
    rt.block_on(async {
        let dir = tempfile::tempdir().expect("tempdir");
        let (database_url, _) = portal::fresh_database_at(Some(postgres), dir.path()).await;
        let keys: [String; 3] = std::array::from_fn(|_| {
            use base64::Engine;
            base64::engine::general_purpose::STANDARD.encode(uuid::Uuid::new_v4().as_bytes().repeat(2))
        });
        let mut servers = Vec::new();
        for n in 0..processes {
            let data = dir.path().join(format!("server{n}"));
            servers.push(start_process(binary, process_env(&database_url, &data, &keys)).await);
        }
        let figment = portal::test_figment(&database_url, dir.path())
            .merge(("jwt_secret", keys[0].clone()))
            .merge(("master_key", keys[1].clone()))
            .merge(("blind_index_key", keys[2].clone()));
        let state =
            app::AppState::start(app::Settings::from_figment(&figment).expect("settings")).await.expect("state");
        let warmup = 200.min(intakes / 5);
        let tokens = load::claimant_tokens(&state, warmup + intakes).await;
        let bases: Vec<String> = servers.iter().map(|s| s.base.clone()).collect();
        let (warm, measured) = tokens.split_at(warmup);
        drive_servers(bases.clone(), warm.to_vec(), clients).await;
        let cpu_before = MachineCpu::now();
        let (mut latencies, errors, elapsed) = drive_servers(bases, measured.to_vec(), clients).await;
        let cpu = MachineCpu::now().since(&cpu_before);
        latencies.sort();
        tokio::time::sleep(Duration::from_secs(2)).await;
        let out = std::process::Command::new(binary)
            .args(["audit", "verify"])
            .envs(process_env(&database_url, &dir.path().join("server0"), &keys))
            .env("RUST_LOG", "off")
            .output()
            .expect("app audit verify runs");
        let verify = String::from_utf8_lossy(&out.stdout).trim().to_string();
        drop(servers);
        ProcessFigures {
            processes,
            intakes: latencies.len(),
            errors,
            seconds: elapsed.as_secs_f64(),
            p50: percentile(&latencies, 0.50),
            p99: percentile(&latencies, 0.99),
            cpu_ms_per_intake: cpu.busy_ms / latencies.len().max(1) as f64,
            verify: if out.status.success() { verify } else { format!("FAILED: {verify}") },
        }
    })
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
    println!();
    println!("Trips of each request of one intake on an idle server (the least of {TRACED} intakes; the sequencer's work left out):");
    for (name, f) in &results {
        println!(
            "{:<10} {:<22} {:>7} {:>11} {:>14} {:>9} {:>6}",
            name, "request", "trips", "statements", "BEGIN/COMMIT", "acquires", "pings"
        );
        for (label, t) in &f.steps {
            println!(
                "{:<10} {:<22} {:>7} {:>11} {:>14} {:>9} {:>6}",
                "",
                label,
                t.total(),
                t.statements,
                t.transaction_control,
                t.acquires,
                t.pings
            );
        }
    }
    println!();
    println!("The audit log after the run (`app audit verify`):");
    for (name, f) in &results {
        let verdict = if f.audit.ok { "verifies".to_string() } else { format!("FAILS: {:?}", f.audit.reason) };
        println!(
            "{:<10} {} events, {}; {} events unsequenced at the last answer, all sequenced {:.0} ms later",
            name,
            f.audit.checked,
            verdict,
            f.audit_pending_at_end,
            f.audit_lag.as_secs_f64() * 1000.0
        );
    }
    if let Some(binary) = app_binary().filter(|_| postgres != "off") {
        println!();
        println!("PostgreSQL with app servers as separate processes ({}), clients spread over them:", binary.display());
        println!(
            "{:<10} {:>8} {:>7} {:>10} {:>9} {:>9} {:>17}  audit log afterwards",
            "processes", "intakes", "errors", "intakes/s", "p50 ms", "p99 ms", "CPU ms per intake"
        );
        for processes in [1, 2] {
            let f = run_processes(&binary, &postgres, processes, intakes, clients);
            println!(
                "{:<10} {:>8} {:>7} {:>10.0} {:>9.1} {:>9.1} {:>17.2}  {}",
                f.processes,
                f.intakes,
                f.errors,
                f.intakes as f64 / f.seconds,
                f.p50,
                f.p99,
                f.cpu_ms_per_intake,
                f.verify
            );
        }
    }
    println!(
        "Targets: at most 24 trips per intake; machine CPU per intake at most 3.0 ms on SQLite and 5.0 ms on PostgreSQL; p99 under 200 ms at 64 clients."
    );
}
