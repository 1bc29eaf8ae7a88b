//! S23: kill -9 the server during a batch of uploads, restart, reconcile:
//! every upload that was confirmed is retrievable with its hash, and no
//! orphaned object remains. Runs the real release binary named by
//! `PORTAL_APP_BIN`; `.ci/run` builds it and runs this test with `--ignored`
//! (a test cannot build the binary itself while cargo holds the build lock).
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

use base64::Engine;
use reqwest::StatusCode;
use serde_json::json;
use sha2::{Digest, Sha256};

pub(crate) fn app_binary() -> PathBuf {
    PathBuf::from(std::env::var("PORTAL_APP_BIN").expect("PORTAL_APP_BIN names the release binary (see .ci/run)"))
}

pub(crate) struct Server {
    pub(crate) child: Child,
    pub(crate) base: String,
}

fn env_for(data: &std::path::Path, keys: &[String; 3]) -> Vec<(String, String)> {
    vec![
        ("APP_DATA_DIR".into(), data.display().to_string()),
        ("APP_JWT_SECRET".into(), keys[0].clone()),
        ("APP_MASTER_KEY".into(), keys[1].clone()),
        ("APP_BLIND_INDEX_KEY".into(), keys[2].clone()),
        ("ROCKET_LOG_LEVEL".into(), "off".into()),
        ("RUST_LOG".into(), "error".into()),
    ]
}

/// The three secrets a release build needs, random for one test.
fn random_keys() -> [String; 3] {
    std::array::from_fn(|_| base64::engine::general_purpose::STANDARD.encode(uuid::Uuid::new_v4().as_bytes().repeat(2)))
}

async fn start(data: &std::path::Path, keys: &[String; 3]) -> Server {
    start_with(env_for(data, keys)).await
}

/// Start the release binary with `env` on a free port; wait for `/health`.
pub(crate) async fn start_with(env: Vec<(String, String)>) -> Server {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut child = Command::new(app_binary())
        .arg("serve")
        .envs(env)
        .env("ROCKET_PORT", port.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("the app binary starts");
    let base = format!("http://127.0.0.1:{port}");
    for _ in 0..200 {
        if reqwest::get(format!("{base}/health")).await.is_ok_and(|r| r.status().is_success()) {
            return Server { child, base };
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("the app did not come up");
}

#[tokio::test]
#[ignore = "needs the release binary: run by .ci/run with PORTAL_APP_BIN"]
async fn confirmed_uploads_survive_a_kill_9_and_no_orphan_remains() {
    let data = tempfile::tempdir().unwrap();
    let keys = random_keys();
    let mut server = start(data.path(), &keys).await;
    let http = reqwest::Client::new();
    let api = |base: &str, token: Option<String>| portal::ApiClient {
        base: base.to_string(),
        http: http.clone(),
        token,
        lang: "en",
    };
    let creds = json!({"email": "crash@example.jp", "password": "correct horse battery staple"});
    api(&server.base, None).post("/auth/register", creds.clone()).await;
    let token = api(&server.base, None).post("/auth/login", creds).await.body["token"].as_str().unwrap().to_string();
    let caller = api(&server.base, Some(token.clone()));
    let claim = caller.post("/claims", json!({"case": "benesse-2014"})).await.body["id"].as_str().unwrap().to_string();

    // 8 clients upload 1 MB files; the server is killed once 6 are confirmed.
    let confirmed: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let mut tasks = vec![];
    for client in 0..8 {
        let (http, base, token, claim, confirmed) =
            (http.clone(), server.base.clone(), token.clone(), claim.clone(), confirmed.clone());
        tasks.push(tokio::spawn(async move {
            for n in 0..3 {
                let mut file = app::evidence::jpeg::fixtures::plain_jpeg(1_000_000);
                file.extend_from_slice(format!("{client}-{n}").as_bytes());
                let part = reqwest::multipart::Part::bytes(file.clone()).file_name("photo.jpg");
                let form = reqwest::multipart::Form::new().text("kind", "direct_mail").part("file", part);
                let sent = http
                    .post(format!("{base}/api/v1/claims/{claim}/evidence"))
                    .bearer_auth(&token)
                    .multipart(form)
                    .send()
                    .await;
                let Ok(res) = sent else { return };
                if res.status() != StatusCode::CREATED {
                    return;
                }
                let Ok(body) = res.json::<serde_json::Value>().await else { return };
                assert_eq!(body["sha256"], hex::encode(Sha256::digest(&file)));
                confirmed
                    .lock()
                    .unwrap()
                    .push((body["id"].as_str().unwrap().to_string(), hex::encode(Sha256::digest(&file))));
            }
        }));
    }
    for _ in 0..400 {
        if confirmed.lock().unwrap().len() >= 6 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    server.child.kill().unwrap(); // SIGKILL
    server.child.wait().unwrap();
    for t in tasks {
        let _ = t.await;
    }
    let confirmed = confirmed.lock().unwrap().clone();
    assert!(confirmed.len() >= 6, "uploads were confirmed before the kill: {}", confirmed.len());

    // Reconcile with no grace period (nothing is in flight now).
    let out = Command::new(app_binary())
        .args(["evidence", "reconcile", "--grace-minutes", "0"])
        .envs(env_for(data.path(), &keys))
        .output()
        .unwrap();
    assert!(out.status.success(), "no confirmed row lost its object: {}", String::from_utf8_lossy(&out.stdout));

    let mut server = start(data.path(), &keys).await;
    let caller = api(&server.base, Some(token.clone()));
    for (id, sha) in &confirmed {
        assert_eq!(&hex::encode(Sha256::digest(caller.download(id).await)), sha, "{id}");
    }
    let listed = caller.get(&format!("/claims/{claim}/evidence")).await.body;
    let rows = listed.as_array().unwrap().len();
    // The store also keeps the audit log's latest checkpoint.
    let objects = std::fs::read_dir(data.path().join("evidence/objects"))
        .unwrap()
        .filter(|e| e.as_ref().unwrap().file_name() != app::evidence::store::CHECKPOINT_OBJECT)
        .count();
    let unfinished = std::fs::read_dir(data.path().join("evidence/incoming")).unwrap().count();
    assert_eq!(objects, rows, "every object has its row and every row its object");
    assert_eq!(unfinished, 0, "no partial upload remains");
    server.child.kill().unwrap();
    let _ = server.child.wait();
}

/// Sessions are checked from memory (the session cache): a logout on one
/// app server is refused by the server that took it at once, and by a
/// second server on the same SQLite database within a second (it reads the
/// session change counter twice a second).
#[tokio::test]
#[ignore = "needs the release binary: run by .ci/run with PORTAL_APP_BIN"]
async fn a_logout_on_one_app_server_is_refused_by_another_within_a_second() {
    let data = tempfile::tempdir().unwrap();
    let keys = random_keys();
    let refused_after = logout_seen_by_the_other_server(env_for(data.path(), &keys)).await;
    assert!(
        refused_after <= app::auth::sessions::RECHECK_AFTER + std::time::Duration::from_millis(250),
        "the other server refused the session {refused_after:?} after the logout"
    );
}

/// On PostgreSQL the logout's notification reaches the other server with
/// its commit: it refuses the session at once, though it had read it just
/// before (without the notification it would trust that read for a second).
#[tokio::test]
#[ignore = "needs the release binary and PostgreSQL: run by .ci/run"]
async fn a_logout_on_one_app_server_is_refused_by_another_at_once_on_postgresql() {
    let base = std::env::var("TEST_DATABASE_URL").expect("TEST_DATABASE_URL names the PostgreSQL server");
    let data = tempfile::tempdir().unwrap();
    let (database_url, _) = portal::fresh_database_at(Some(&base), data.path()).await;
    let keys = random_keys();
    let mut env = env_for(data.path(), &keys);
    env.push(("DATABASE_URL".into(), database_url));
    let refused_after = logout_seen_by_the_other_server(env).await;
    assert!(
        refused_after < std::time::Duration::from_millis(300),
        "the other server refused the session {refused_after:?} after the logout"
    );
}

/// Two app servers on one database: sign in on the first, let both read
/// the session, log out on the first; how long until the second refuses.
async fn logout_seen_by_the_other_server(env: Vec<(String, String)>) -> std::time::Duration {
    let mut first = start_with(env.clone()).await;
    let mut second = start_with(env).await;
    let http = reqwest::Client::new();
    let creds = json!({"email": "two@example.jp", "password": "correct horse battery staple"});
    let on = |base: &str, token: Option<String>| portal::ApiClient {
        base: base.to_string(),
        http: http.clone(),
        token,
        lang: "en",
    };
    on(&first.base, None).post("/auth/register", creds.clone()).await;
    let token = on(&first.base, None).post("/auth/login", creds).await.body["token"].as_str().unwrap().to_string();
    let me = |base: &str| {
        let (http, url, token) = (http.clone(), format!("{base}/api/v1/me"), token.clone());
        async move { http.get(url).bearer_auth(token).send().await.unwrap().status() }
    };
    // Both servers have the session in memory now, the second just read it.
    assert_eq!(me(&first.base).await, StatusCode::OK);
    assert_eq!(me(&second.base).await, StatusCode::OK);

    let out = http.post(format!("{}/api/v1/auth/logout", first.base)).bearer_auth(&token).send().await.unwrap();
    assert!(out.status().is_success(), "logout: {}", out.status());
    let logged_out = std::time::Instant::now();
    assert_eq!(me(&first.base).await, StatusCode::UNAUTHORIZED, "the server that took the logout refuses at once");
    let refused_after = loop {
        if me(&second.base).await == StatusCode::UNAUTHORIZED {
            break logged_out.elapsed();
        }
        assert!(logged_out.elapsed() < std::time::Duration::from_secs(3), "the other server still accepts the session");
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    };
    for server in [&mut first, &mut second] {
        server.child.kill().unwrap();
        let _ = server.child.wait();
    }
    refused_after
}

/// The app's state on the server's own database and keys (the test
/// process opens sessions directly, as the intake benchmark does).
async fn state_for(data: &std::path::Path, keys: &[String; 3]) -> app::AppState {
    let url = format!("sqlite://{}?mode=rwc", data.join("portal.db").display());
    let figment = portal::test_figment(&url, data)
        .merge(("jwt_secret", keys[0].clone()))
        .merge(("master_key", keys[1].clone()))
        .merge(("blind_index_key", keys[2].clone()));
    app::AppState::start(app::Settings::from_figment(&figment).expect("settings")).await.expect("state")
}

/// Killing the server in the middle of intakes (16 clients, as the intake
/// benchmark drives them) loses no acknowledged step, and after a restart
/// the sequencer numbers every event, the killed one's too; the log verifies.
#[tokio::test]
#[ignore = "needs the release binary: run by .ci/run with PORTAL_APP_BIN"]
async fn a_kill_9_in_the_middle_of_intakes_loses_no_acknowledged_write_and_leaves_no_event_unsequenced() {
    use portal::load::{self, Progress};
    let data = tempfile::tempdir().unwrap();
    let keys = random_keys();
    let mut server = start(data.path(), &keys).await;
    let tokens = load::claimant_tokens(&state_for(data.path(), &keys).await, 600).await;
    let http = reqwest::Client::new();
    let documents = Arc::new(load::documents(&http, &server.base).await);
    let tokens = Arc::new(tokens);
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let finished: Arc<Mutex<Vec<(String, Progress)>>> = Arc::default();
    let submitted = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut tasks = vec![];
    for _ in 0..16 {
        let (http, base, documents, tokens, next, finished, submitted) = (
            http.clone(),
            server.base.clone(),
            documents.clone(),
            tokens.clone(),
            next.clone(),
            finished.clone(),
            submitted.clone(),
        );
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(token) = tokens.get(i) else { return };
                let mut progress = Progress::default();
                let outcome =
                    load::one_intake(&http, &base, token, &load::distinct_draft(i), &documents, &mut progress).await;
                if progress.submitted {
                    submitted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
                finished.lock().unwrap().push((token.clone(), progress));
                if outcome.is_err() {
                    return; // the server is gone
                }
            }
        }));
    }
    for _ in 0..600 {
        if submitted.load(std::sync::atomic::Ordering::Relaxed) >= 60 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    server.child.kill().unwrap(); // SIGKILL, with intakes in flight
    server.child.wait().unwrap();
    for t in tasks {
        let _ = t.await;
    }
    let finished = finished.lock().unwrap().clone();
    let acknowledged = finished.iter().filter(|(_, p)| p.submitted).count();
    assert!(acknowledged >= 60, "intakes were submitted before the kill: {acknowledged}");
    let cut_short = finished.iter().filter(|(_, p)| p.claim.is_some() && !p.submitted).count();

    let mut server = start(data.path(), &keys).await;
    for (token, progress) in &finished {
        let Some(claim) = &progress.claim else { continue };
        let caller =
            portal::ApiClient { base: server.base.clone(), http: http.clone(), token: Some(token.clone()), lang: "en" };
        let r = caller.get(&format!("/claims/{claim}")).await;
        assert_eq!(r.status, StatusCode::OK, "an acknowledged claim is there after the restart");
        if progress.saved {
            assert_eq!(r.body["persons"].as_array().map(Vec::len), Some(2), "the saved draft is there: {claim}");
        }
        let missing_consents = r.body["consent"]["missing"].as_array().map(Vec::len).unwrap_or(0);
        assert!(missing_consents + progress.signed <= 3, "every acknowledged signature is there: {claim}");
        if progress.submitted {
            assert_eq!(r.body["status"], "submitted", "an acknowledged submission is there: {claim}");
        }
    }

    // The restarted server takes the sequencer lease once the killed one's
    // runs out, and numbers every event that was committed.
    let db = sea_orm::Database::connect(format!("sqlite://{}", data.path().join("portal.db").display())).await.unwrap();
    let unsequenced = || async {
        use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
        entities::audit_event::Entity::find()
            .filter(entities::audit_event::Column::Seq.is_null())
            .count(&db)
            .await
            .unwrap()
    };
    let restarted = std::time::Instant::now();
    while unsequenced().await > 0 {
        assert!(restarted.elapsed() < std::time::Duration::from_secs(15), "events left unsequenced after the restart");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let out = Command::new(app_binary()).args(["audit", "verify"]).envs(env_for(data.path(), &keys)).output().unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && said.contains("intact"), "the audit log verifies after the crash: {said}");
    eprintln!("{acknowledged} intakes acknowledged before the kill, {cut_short} cut short; {}", said.trim());
    server.child.kill().unwrap();
    let _ = server.child.wait();
}
