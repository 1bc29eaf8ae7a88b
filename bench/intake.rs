//! Intake throughput benchmark: `cargo bench --bench intake`.
//!
//! Starts the release-built application on loopback (SQLite, then
//! PostgreSQL when reachable), and drives complete intakes — create the
//! claim, fill the whole draft, sign the three consent documents, submit —
//! from 64 concurrent clients over
//! HTTP. Sign-in is excluded: sessions are opened directly before the clock
//! starts. Prints intakes/s and latency percentiles per intake, and the same
//! build's `GET /health` requests/s as the ceiling of the HTTP stack.
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
    let mut tokens = Vec::with_capacity(n);
    for chunk in (0..n).collect::<Vec<_>>().chunks(500) {
        let txn = state.db.begin_write().await.expect("begin");
        for i in chunk {
            let id = Uuid::new_v4();
            let email = app::domain::Email::parse(&format!("bench{i}-{}@example.jp", id.simple())).expect("email");
            let user =
                app::auth::service::new_user_row(&state.keys, id, &email, hash.clone(), app::auth::Role::Claimant)
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

async fn health_ceiling(base: &str, clients: usize, duration: Duration) -> f64 {
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
    count.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64()
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
    let (mut latencies, errors, elapsed) = client_rt.block_on(drive(base.clone(), measured.to_vec(), clients));
    latencies.sort();
    let health_rps = client_rt.block_on(health_ceiling(&base, clients, Duration::from_secs(3)));
    let figures = Figures {
        intakes: latencies.len(),
        errors,
        seconds: elapsed.as_secs_f64(),
        p50: percentile(&latencies, 0.50),
        p99: percentile(&latencies, 0.99),
        max: percentile(&latencies, 1.0),
        health_rps,
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
    println!("Complete intakes (create + fill + sign 3 documents + submit; sign-in excluded), {clients} concurrent clients, {intakes} intakes per backend, release build, {} cores", std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1));
    println!(
        "{:<10} {:>8} {:>7} {:>8} {:>10} {:>9} {:>9} {:>9} {:>13}",
        "backend", "intakes", "errors", "seconds", "intakes/s", "p50 ms", "p99 ms", "max ms", "/health req/s"
    );
    let mut backends: Vec<(&str, Option<&str>)> = vec![("sqlite", None)];
    if postgres != "off" {
        backends.push(("postgres", Some(postgres.as_str())));
    }
    for (name, url) in backends {
        let connections =
            env_usize(if url.is_some() { "BENCH_PG_CONNECTIONS" } else { "BENCH_SQLITE_CONNECTIONS" }, 16);
        let f = run_backend(url, intakes, clients, connections);
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
    println!("Target: at least 1000 intakes/s with p99 under 200 ms.");
}
