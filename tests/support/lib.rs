//! Test and benchmark support: start the real application on a loopback
//! port with its own database (a fresh SQLite file, or a UUID-named
//! PostgreSQL database when `TEST_DATABASE_URL` is set) and drive it over HTTP.
pub mod load;

use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};

use base64::Engine;
use reqwest::{Client, StatusCode};
use rocket::fairing::AdHoc;
use rocket::figment::Figment;
use sea_orm::{ColumnTrait, ConnectionTrait, Database, DatabaseConnection, EntityTrait, QueryFilter};
use serde_json::{json, Value};

pub use app;

/// The migration that stores a claim's draft as one sealed document.
pub const CLAIM_DOCUMENTS: &str = "m20261203_000019_claim_documents";

pub struct TestApp {
    pub address: String,
    pub database_url: String,
    /// The SQLite file, when running on SQLite.
    pub sqlite_path: Option<PathBuf>,
    pub data_dir: tempfile::TempDir,
    pub figment: Figment,
    /// The database handle of the running server (its writer lock figures).
    pub served_db: app::db::Db,
    /// The serving process's state (its database, caches and session
    /// memory), for work that should look as if the server did it.
    pub served_state: app::AppState,
    /// The running server's clock: tests set it, and `state()` shares it.
    pub clock: app::clock::Clock,
    /// The running server's audit sequencer.
    pub audit: std::sync::Arc<app::audit::Sequencer>,
    shutdown: rocket::Shutdown,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.clone().notify();
    }
}

fn random_key() -> String {
    let bytes: Vec<u8> = (0..32).map(|_| rand_byte()).collect();
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn rand_byte() -> u8 {
    uuid::Uuid::new_v4().as_bytes()[7]
}

/// Create a fresh database and return its URL: a UUID-named PostgreSQL
/// database under `TEST_DATABASE_URL` when set, else a SQLite file.
pub async fn fresh_database(data_dir: &std::path::Path) -> (String, Option<PathBuf>) {
    let postgres = std::env::var("TEST_DATABASE_URL").ok().filter(|u| !u.is_empty());
    fresh_database_at(postgres.as_deref(), data_dir).await
}

/// Like `fresh_database`, with the PostgreSQL server named by the caller.
pub async fn fresh_database_at(postgres: Option<&str>, data_dir: &std::path::Path) -> (String, Option<PathBuf>) {
    match postgres {
        Some(base) => {
            let name = format!("portal_test_{}", uuid::Uuid::new_v4().simple());
            let admin = Database::connect(base).await.expect("connect to TEST_DATABASE_URL");
            admin.execute_unprepared(&format!("CREATE DATABASE \"{name}\"")).await.expect("create test database");
            admin.close().await.ok();
            let (prefix, _) = base.rsplit_once('/').expect("TEST_DATABASE_URL has a database name");
            (format!("{prefix}/{name}"), None)
        }
        _ => {
            let path = data_dir.join("portal.db");
            (format!("sqlite://{}?mode=rwc", path.display()), Some(path))
        }
    }
}

/// The figment a test app runs with; `customise` may override anything.
pub fn test_figment(database_url: &str, data_dir: &std::path::Path) -> Figment {
    app::figment()
        .merge(("address", "127.0.0.1"))
        .merge(("port", 0))
        .merge(("log_level", "off"))
        .merge(("cli_colors", false))
        .merge(("shutdown.ctrlc", false))
        .merge(("database_url", database_url))
        .merge(("data_dir", data_dir.display().to_string()))
        .merge(("jwt_secret", random_key()))
        .merge(("master_key", random_key()))
        .merge(("blind_index_key", random_key()))
        .merge(("db_max_connections", 8))
        // Every test registers from 127.0.0.1; the limit has a test of its own.
        .merge(("registrations_per_ip_per_hour", 10_000))
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|f| f).await
}

/// Everything the test process logs, at the production level (info).
#[derive(Clone, Default)]
pub struct CapturedLogs(Arc<Mutex<Vec<u8>>>);

impl CapturedLogs {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).to_string()
    }
}

impl std::io::Write for CapturedLogs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Install (once) a log subscriber that keeps every line in memory, so tests
/// can search the logs. It must come before any Rocket starts: Rocket
/// installs its own logger otherwise.
pub fn captured_logs() -> CapturedLogs {
    static CAPTURED: OnceLock<CapturedLogs> = OnceLock::new();
    CAPTURED
        .get_or_init(|| {
            let sink = CapturedLogs::default();
            let writer = sink.clone();
            let _ = tracing_subscriber::fmt()
                .with_max_level(tracing_subscriber::filter::LevelFilter::INFO)
                .with_ansi(false)
                .with_writer(move || writer.clone())
                .try_init();
            sink
        })
        .clone()
}

pub async fn spawn_app_with(customise: impl FnOnce(Figment) -> Figment) -> TestApp {
    captured_logs();
    let postgres = std::env::var("TEST_DATABASE_URL").ok().filter(|u| !u.is_empty());
    spawn_app_at(postgres.as_deref(), customise).await
}

/// Start the app on SQLite (`None`) or on a fresh database of the given PostgreSQL server.
pub async fn spawn_app_at(postgres: Option<&str>, customise: impl FnOnce(Figment) -> Figment) -> TestApp {
    let data_dir = tempfile::tempdir().expect("tempdir");
    let (database_url, sqlite_path) = fresh_database_at(postgres, data_dir.path()).await;
    let figment = customise(test_figment(&database_url, data_dir.path()));
    let (tx, rx) = tokio::sync::oneshot::channel::<u16>();
    let tx = std::sync::Mutex::new(Some(tx));
    let rocket = app::build(figment.clone())
        .attach(AdHoc::on_liftoff("Report port", move |r| {
            let port = r.config().port;
            Box::pin(async move {
                if let Some(tx) = tx.lock().unwrap().take() {
                    let _ = tx.send(port);
                }
            })
        }))
        .ignite()
        .await
        .expect("the app ignites");
    let shutdown = rocket.shutdown();
    let served = rocket.state::<app::AppState>().expect("the app manages its state");
    let (served_db, clock) = (served.db.clone(), served.clock.clone());
    let served_state = served.worker();
    let audit = served.audit.clone();
    tokio::spawn(async move {
        let _ = rocket.launch().await;
    });
    let port = rx.await.expect("the app lifts off");
    TestApp {
        address: format!("http://127.0.0.1:{port}"),
        database_url,
        sqlite_path,
        data_dir,
        figment,
        served_db,
        served_state,
        clock,
        audit,
        shutdown,
    }
}

impl TestApp {
    /// Sequence what is pending, then verify the audit log as `app audit verify` does.
    pub async fn audit_report(&self) -> app::audit::TreeReport {
        // A pass refuses to extend a log that disagrees with its checkpoints;
        // the report says why.
        let _ = self.audit.pass().await;
        self.audit.verify(&[]).await.expect("the audit log can be read")
    }
}

/// A JSON API caller that holds a bearer token.
#[derive(Clone)]
pub struct ApiClient {
    pub base: String,
    pub http: Client,
    pub token: Option<String>,
    pub lang: &'static str,
}

pub struct Reply {
    pub status: StatusCode,
    pub body: Value,
}

impl ApiClient {
    pub async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Reply {
        let mut req =
            self.http.request(method, format!("{}/api/v1{}", self.base, path)).header("Accept-Language", self.lang);
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await.expect("request sent");
        let status = res.status();
        let text = res.text().await.unwrap_or_default();
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Reply { status, body }
    }
    pub async fn get(&self, path: &str) -> Reply {
        self.call(reqwest::Method::GET, path, None).await
    }
    pub async fn post(&self, path: &str, body: Value) -> Reply {
        self.call(reqwest::Method::POST, path, Some(body)).await
    }
    /// Upload a file as `multipart/form-data` (`kind` + `file`).
    pub async fn upload(
        &self,
        path: &str,
        kind: &str,
        bytes: Vec<u8>,
        file_name: &str,
        idempotency_key: Option<&str>,
    ) -> Reply {
        let part = reqwest::multipart::Part::bytes(bytes).file_name(file_name.to_string());
        let form = reqwest::multipart::Form::new().text("kind", kind.to_string()).part("file", part);
        let mut req = self
            .http
            .post(format!("{}/api/v1{}", self.base, path))
            .header("Accept-Language", self.lang)
            .multipart(form);
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        if let Some(k) = idempotency_key {
            req = req.header("Idempotency-Key", k);
        }
        let res = req.send().await.expect("request sent");
        let status = res.status();
        let text = res.text().await.unwrap_or_default();
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Reply { status, body }
    }

    /// The raw response of a GET under `/api/v1` (for file downloads).
    pub async fn fetch(&self, path: &str) -> reqwest::Response {
        let mut req = self.http.get(format!("{}/api/v1{}", self.base, path));
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        req.send().await.expect("request sent")
    }

    /// The bytes of a stored evidence file.
    pub async fn download(&self, evidence_id: &str) -> Vec<u8> {
        let res = self.fetch(&format!("/evidence/{evidence_id}/content")).await;
        assert_eq!(res.status(), StatusCode::OK, "download {evidence_id}");
        res.bytes().await.expect("body").to_vec()
    }

    pub async fn delete(&self, path: &str) -> Reply {
        self.call(reqwest::Method::DELETE, path, None).await
    }

    pub async fn put(&self, path: &str, body: Value) -> Reply {
        self.call(reqwest::Method::PUT, path, Some(body)).await
    }

    /// Sign every current document of a claim as `signer` (the name of the
    /// claimant in `complete_draft` is 山田 花子). Returns the signatures made.
    pub async fn sign_as(&self, claim_id: &str, signer: &str) -> Vec<Value> {
        let state = self.get(&format!("/claims/{claim_id}/consents")).await;
        assert_eq!(state.status, StatusCode::OK, "consents: {:?}", state.body);
        let mut made = Vec::new();
        for doc in state.body["documents"].as_array().expect("documents") {
            if doc["signed"] == true {
                continue;
            }
            let id = doc["document"]["id"].as_str().expect("document id");
            let r = self
                .post(&format!("/claims/{claim_id}/consents"), json!({"document_id": id, "signer_name": signer}))
                .await;
            assert_eq!(r.status, StatusCode::CREATED, "sign {}: {:?}", doc["document"]["kind"], r.body);
            made.extend(r.body.as_array().expect("signatures").iter().cloned());
        }
        made
    }

    /// Sign everything as the claimant of `complete_draft`.
    pub async fn sign_all(&self, claim_id: &str) -> Vec<Value> {
        self.sign_as(claim_id, "山田 花子").await
    }
}

impl TestApp {
    pub fn api(&self) -> ApiClient {
        ApiClient { base: self.address.clone(), http: Client::new(), token: None, lang: "ja" }
    }

    /// Register a claimant through the API, open the confirmation link,
    /// and return a signed-in client.
    pub async fn claimant(&self, email: &str) -> ApiClient {
        let api = self.claimant_unconfirmed(email).await;
        self.confirm_address(email).await;
        api
    }

    /// Register a claimant through the API and sign in, the address not yet confirmed.
    pub async fn claimant_unconfirmed(&self, email: &str) -> ApiClient {
        let api = self.api();
        let password = "correct horse battery staple";
        let r = api.post("/auth/register", json!({"email": email, "password": password})).await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "register: {:?}", r.body);
        self.login(email, password).await
    }

    /// The link the confirmation mail for `email` carries (made as the
    /// portal makes it, with the portal's key), without a mail server.
    pub async fn confirmation_link(&self, email: &str) -> String {
        let settings = app::Settings::from_figment(&self.figment).expect("settings");
        let keys = app::crypto::Keyring::new(&settings.keys);
        let index = app::auth::service::email_index(&keys, &app::domain::Email::parse(email).expect("e-mail"));
        let db = self.db().await;
        let user = entities::user::Entity::find()
            .filter(entities::user::Column::EmailIndex.eq(index))
            .one(&db)
            .await
            .expect("query")
            .expect("a registered account");
        let token = app::auth::registration::link_token(&keys, user.id, chrono::Utc::now()).expect("token");
        format!("/confirm?token={token}")
    }

    /// Open the confirmation link for `email`, as its owner does from the mail.
    pub async fn confirm_address(&self, email: &str) {
        let link = self.confirmation_link(email).await;
        let res = self.browser().http.get(format!("{}{link}", self.address)).send().await.expect("confirm");
        assert_eq!(res.status(), StatusCode::OK, "confirm {email}");
    }

    pub async fn login(&self, email: &str, password: &str) -> ApiClient {
        let mut api = self.api();
        let r = api.post("/auth/login", json!({"email": email, "password": password})).await;
        assert_eq!(r.status, StatusCode::OK, "login: {:?}", r.body);
        api.token = Some(r.body["token"].as_str().expect("token").to_string());
        api
    }

    /// An application state on the same database, for set-up that has no
    /// public route yet (staff accounts) and for inspection.
    pub async fn state(&self) -> app::AppState {
        let settings = app::Settings::from_figment(&self.figment).expect("settings");
        let mut state = app::AppState::start(settings).await.expect("state");
        state.clock = self.clock.clone();
        state
    }

    /// Create a staff account with `role` and return a signed-in client.
    pub async fn staff(&self, email: &str, role: app::auth::Role) -> ApiClient {
        let state = self.state().await;
        let email_v = app::domain::Email::parse(email).unwrap();
        let password = app::auth::Password::parse("staff password long enough").unwrap();
        app::auth::service::create_account(&state, &Default::default(), &email_v, &password, role, app::i18n::Lang::Ja)
            .await
            .expect("staff account");
        self.login(email, "staff password long enough").await
    }

    /// A staff account whose session passed the TOTP second factor, and its secret.
    pub async fn staff_verified(&self, email: &str, role: app::auth::Role) -> (ApiClient, String) {
        let api = self.staff(email, role).await;
        let setup = api.post("/auth/totp/setup", json!({})).await;
        assert_eq!(setup.status, StatusCode::CREATED, "totp setup: {:?}", setup.body);
        let secret = setup.body["secret"].as_str().expect("secret").to_string();
        let r = api.post("/auth/totp/verify", json!({"code": totp_code(&secret, 0)})).await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "totp verify: {:?}", r.body);
        (api, secret)
    }

    /// Make the lawyer with `email` a member of the Benesse case.
    pub async fn add_to_case(&self, email: &str) {
        let state = self.state().await;
        app::review::admin::add_member_by(&state, &Default::default(), None, "benesse-2014", email)
            .await
            .expect("add member");
    }

    /// A claimant's submitted claim: `draft` filled in, every document signed as `signer`.
    pub async fn submitted_claim(&self, email: &str, draft: Value, signer: &str) -> (ApiClient, String) {
        let api = self.claimant(email).await;
        let id = api.post("/claims", json!({"case": "benesse-2014"})).await.body["id"].as_str().unwrap().to_string();
        let r = api.put(&format!("/claims/{id}"), draft).await;
        assert_eq!(r.status, StatusCode::OK, "fill: {:?}", r.body);
        api.sign_as(&id, signer).await;
        let r = api.post(&format!("/claims/{id}/submit"), json!({})).await;
        assert_eq!(r.status, StatusCode::OK, "submit: {:?}", r.body);
        (api, id)
    }

    /// Open a filing round of the Benesse case (cut-off today, filing in ten
    /// days) with the default tier policy, as `admin`; returns its id.
    pub async fn open_round(&self, admin: &ApiClient) -> String {
        let today = self.clock.today();
        let created = admin
            .post(
                "/admin/cases/benesse-2014/rounds",
                json!({"name": "第1次提訴", "court": "東京地方裁判所", "cut_off": today.to_string(),
                       "filing_date": (today + chrono::Duration::days(10)).to_string()}),
            )
            .await;
        assert_eq!(created.status, StatusCode::CREATED, "round: {:?}", created.body);
        let round = created.body["id"].as_str().expect("round id").to_string();
        let policy = serde_json::to_value(app::rounds::domain::benesse_default_policy()).unwrap();
        let set = admin.put(&format!("/admin/rounds/{round}/policy"), policy).await;
        assert_eq!(set.status, StatusCode::CREATED, "policy: {:?}", set.body);
        round
    }

    /// Everything the database holds at rest: the SQLite file and its
    /// write-ahead log, or a `pg_dump` of the PostgreSQL database.
    pub fn bytes_at_rest(&self) -> Vec<u8> {
        match &self.sqlite_path {
            Some(path) => {
                let mut bytes = std::fs::read(path).unwrap();
                bytes.extend(std::fs::read(path.with_extension("db-wal")).unwrap_or_default());
                assert!(bytes.len() > 10_000, "the database file was read");
                bytes
            }
            None => {
                let dump = std::process::Command::new("pg_dump")
                    .arg("--no-owner")
                    .arg(&self.database_url)
                    .output()
                    .expect("pg_dump is installed with the PostgreSQL client");
                assert!(dump.status.success(), "{}", String::from_utf8_lossy(&dump.stderr));
                assert!(String::from_utf8_lossy(&dump.stdout).contains("COPY public.claims"));
                dump.stdout
            }
        }
    }

    /// Files in the local evidence store (object files only).
    /// The evidence store's objects: files and bundles (not the audit
    /// log's checkpoint, which the store keeps a copy of).
    pub fn stored_objects(&self) -> Vec<PathBuf> {
        let dir = self.data_dir.path().join("evidence").join("objects");
        let checkpoint = std::ffi::OsStr::new(app::evidence::store::CHECKPOINT_OBJECT);
        std::fs::read_dir(dir)
            .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.file_name() != Some(checkpoint)).collect())
            .unwrap_or_default()
    }

    pub async fn db(&self) -> DatabaseConnection {
        Database::connect(&self.database_url).await.expect("db")
    }

    /// Undo migrations down to just before `name`, as an operator would:
    /// below the claim-document migration, the claims are first written
    /// back as rows (`app claims downgrade-documents`).
    pub async fn migrate_down_to_before(&self, db: &DatabaseConnection, name: &str) {
        use migration::MigratorTrait;
        let names: Vec<String> = migration::Migrator::migrations().iter().map(|m| m.name().to_string()).collect();
        let at = |n: &str| names.iter().position(|m| m == n).unwrap_or_else(|| panic!("no migration {n}: {names:?}"));
        if at(name) <= at(CLAIM_DOCUMENTS) {
            app::claims::documents::downgrade_documents(&self.served_db, &self.served_state.keys)
                .await
                .expect("claims written back as rows");
        }
        migration::Migrator::down(db, Some((names.len() - at(name)) as u32)).await.expect("migrate down");
    }

    /// A browser signed in through the login page.
    pub async fn browser_signed_in(&self, email: &str, password: &str) -> Browser {
        let browser = self.browser();
        let login = browser.get("/login").await;
        let home = browser.submit(&login, "/login", &[("email", email), ("password", password)]).await;
        assert_eq!(home.status, StatusCode::OK, "sign in as {email}");
        browser
    }

    /// A new staff account signed in on a browser that enrolled and passed
    /// the second factor through the pages, as a person does.
    pub async fn staff_browser(&self, email: &str, role: app::auth::Role) -> Browser {
        drop(self.staff(email, role).await);
        let browser = self.browser_signed_in(email, "staff password long enough").await;
        let page = browser.get("/staff/second-factor").await;
        let enrol = browser.submit(&page, "/staff/second-factor/setup", &[]).await;
        let secret = enrol.texts("code.secret").pop().expect("the key is shown");
        self.pass_second_factor(&browser, &secret, 0).await;
        browser
    }

    /// A browser signed in as an enrolled staff member (`secret` from
    /// `staff_verified`), past the second factor with the next code.
    pub async fn staff_browser_enrolled(&self, email: &str, secret: &str) -> Browser {
        let browser = self.browser_signed_in(email, "staff password long enough").await;
        self.pass_second_factor(&browser, secret, 1).await;
        browser
    }

    async fn pass_second_factor(&self, browser: &Browser, secret: &str, step: i64) {
        let page = browser.get("/staff/second-factor").await;
        let code = totp_code(secret, step);
        let done = browser.submit(&page, "/staff/second-factor", &[("code", code.as_str())]).await;
        assert!(!done.url.ends_with("/staff/second-factor"), "second factor refused: {}", done.status);
    }

    /// A browser: keeps cookies, follows redirects.
    pub fn browser(&self) -> Browser {
        Browser { base: self.address.clone(), http: Client::builder().cookie_store(true).build().expect("client") }
    }
}

/// Which of `needles` occur in `haystack` as UTF-8 bytes.
pub fn find_in<'a>(haystack: &[u8], needles: &[&'a str]) -> Vec<&'a str> {
    needles.iter().copied().filter(|c| haystack.windows(c.len()).any(|w| w == c.as_bytes())).collect()
}

/// A cookie-keeping HTML client that submits forms like a person would.
pub struct Browser {
    pub base: String,
    pub http: Client,
}

pub struct Page {
    pub status: StatusCode,
    pub url: String,
    pub html: String,
}

impl Page {
    pub fn doc(&self) -> scraper::Html {
        scraper::Html::parse_document(&self.html)
    }
    /// Text of every element matching `selector`.
    pub fn texts(&self, selector: &str) -> Vec<String> {
        let sel = scraper::Selector::parse(selector).expect("selector");
        self.doc().select(&sel).map(|e| e.text().collect::<String>().trim().to_string()).collect()
    }
    /// The value attribute of the input named `name`.
    pub fn input_value(&self, name: &str) -> Option<String> {
        let sel = scraper::Selector::parse(&format!("[name=\"{name}\"]")).expect("selector");
        self.doc().select(&sel).next().and_then(|e| e.value().attr("value").map(str::to_string))
    }
    pub fn csrf(&self) -> String {
        self.input_value("csrf").expect("the page has a CSRF token")
    }
}

impl Browser {
    pub async fn get(&self, path: &str) -> Page {
        let res = self.http.get(format!("{}{}", self.base, path)).send().await.expect("get");
        Page { status: res.status(), url: res.url().to_string(), html: res.text().await.unwrap_or_default() }
    }

    /// Submit a form with the CSRF token of the page it is on.
    pub async fn submit(&self, page: &Page, action: &str, fields: &[(&str, &str)]) -> Page {
        let mut form: Vec<(String, String)> = vec![("csrf".into(), page.csrf())];
        form.extend(fields.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        self.post_form(action, &form).await
    }

    pub async fn post_form(&self, action: &str, form: &[(String, String)]) -> Page {
        let res = self.http.post(format!("{}{}", self.base, action)).form(form).send().await.expect("post");
        Page { status: res.status(), url: res.url().to_string(), html: res.text().await.unwrap_or_default() }
    }
}

/// The TOTP code for `secret` now (`offset_steps` × 30 s away).
pub fn totp_code(secret: &str, offset_steps: i64) -> String {
    let totp = totp_rs::Builder::new()
        .with_secret(totp_rs::Secret::try_from_base32(secret).expect("base32 secret"))
        .with_account_name("test")
        .build()
        .expect("totp");
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_secs() as i64;
    totp.generate((now + offset_steps * 30) as u64).to_string()
}

/// A complete, valid draft for the API, with a given claimant name.
pub fn complete_draft(family_kana: &str, birth_date: &str) -> Value {
    json!({
        "persons": [
            {"relation": "self", "family_name": "山田", "given_name": "花子",
             "family_name_kana": family_kana, "given_name_kana": "はなこ",
             "birth_date": birth_date, "gender": "female"},
            {"relation": "child", "family_name": "山田", "given_name": "一郎",
             "family_name_kana": family_kana, "given_name_kana": "いちろう",
             "birth_date": "2009-04-02", "gender": "male"}
        ],
        "address": {"postal_code": "100-0001", "prefecture": "東京都", "city": "千代田区",
                    "line1": "千代田1-1", "line2": "101号室"},
        "phone": "090-1234-5678",
        "email": "contact@example.jp",
        "leaked_items": ["name", "address", "phone", "birth_date"],
        "services": ["shinkenzemi"],
        "apology_letter_received": true,
        "registration_code": "AB12-CD34",
        "apology_option": "book_card_500",
        "learned_of_leak_on": "2014-07-10",
        "harms": [{"kind": "direct_mail", "date": "2014-08-01", "sender": "某教育サービス", "note": "見覚えのない会社からのDM"}]
    })
}

/// A real S3-protocol server (s3s-fs) on a loopback port, storing objects
/// in a temporary directory. Dropping it stops the server.
pub struct S3Server {
    pub endpoint: String,
    /// Where objects are kept: a temporary directory unless one was given.
    pub root: PathBuf,
    _temp: Option<tempfile::TempDir>,
    task: tokio::task::JoinHandle<()>,
}

pub const S3_ACCESS_KEY: &str = "portal-test";
pub const S3_SECRET_KEY: &str = "portal-test-secret";

impl S3Server {
    pub async fn start() -> S3Server {
        Self::start_in(None).await
    }

    /// Serve objects from `root` (a new temporary directory if `None`).
    pub async fn start_in(root: Option<PathBuf>) -> S3Server {
        use hyper_util::rt::{TokioExecutor, TokioIo};
        let (root, temp) = match root {
            Some(r) => (r, None),
            None => {
                let t = tempfile::tempdir().expect("tempdir");
                (t.path().to_path_buf(), Some(t))
            }
        };
        let fs = s3s_fs::FileSystem::new(&root).expect("s3s-fs");
        let mut builder = s3s::service::S3ServiceBuilder::new(fs);
        builder.set_auth(s3s::auth::SimpleAuth::from_single(S3_ACCESS_KEY, S3_SECRET_KEY));
        let service = builder.build();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let endpoint = format!("http://{}", listener.local_addr().expect("addr"));
        let task = tokio::spawn(async move {
            let mut connections = tokio::task::JoinSet::new();
            while let Ok((socket, _)) = listener.accept().await {
                let service = service.clone();
                connections.spawn(async move {
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(socket), service)
                        .await;
                });
            }
        });
        S3Server { endpoint, root, _temp: temp, task }
    }

    /// Stop answering (the store goes down); open connections are dropped.
    pub fn stop(&self) {
        self.task.abort();
    }

    /// Every stored object file under the server's directory.
    pub fn object_files(&self) -> Vec<PathBuf> {
        fn walk(dir: &std::path::Path, out: &mut Vec<PathBuf>) {
            if let Ok(entries) = std::fs::read_dir(dir) {
                for e in entries.flatten() {
                    let p = e.path();
                    if p.is_dir() {
                        walk(&p, out);
                    } else {
                        out.push(p);
                    }
                }
            }
        }
        let mut out = vec![];
        walk(&self.root, &mut out);
        out
    }

    /// Figment settings that point the app at this server.
    pub fn configure(&self, figment: Figment) -> Figment {
        figment
            .merge(("evidence_store", "s3"))
            .merge(("s3_endpoint", self.endpoint.clone()))
            .merge(("s3_bucket", "evidence"))
            .merge(("s3_access_key_id", S3_ACCESS_KEY))
            .merge(("s3_secret_access_key", S3_SECRET_KEY))
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A real SMTP server on loopback: aiosmtpd (PyPI), started from
/// `tests/support/smtp_server.py`, which writes each accepted message as
/// decoded JSON into a directory. It can be stopped and started again on the
/// same port, told to refuse (451) or to stall at RCPT.
pub struct SmtpServer {
    pub dir: tempfile::TempDir,
    pub port: u16,
    child: Mutex<Option<std::process::Child>>,
}

/// One message the SMTP server accepted.
#[derive(Clone, Debug, serde::Deserialize)]
pub struct Received {
    pub message_id: String,
    pub to: Vec<String>,
    pub subject: String,
    pub body: String,
}

/// Install aiosmtpd for this user when it is missing (once per test process).
fn ensure_aiosmtpd() {
    static READY: OnceLock<()> = OnceLock::new();
    READY.get_or_init(|| {
        let present =
            std::process::Command::new("python3").args(["-c", "import aiosmtpd"]).status().is_ok_and(|s| s.success());
        if !present {
            eprintln!("installing aiosmtpd (PyPI) for the SMTP tests");
            let installed = std::process::Command::new("python3")
                .args(["-m", "pip", "install", "--quiet", "--user", "aiosmtpd"])
                .status()
                .is_ok_and(|s| s.success());
            assert!(installed, "the SMTP tests need python3 with aiosmtpd: python3 -m pip install aiosmtpd");
        }
    });
}

impl SmtpServer {
    pub fn start() -> SmtpServer {
        ensure_aiosmtpd();
        let dir = tempfile::tempdir().expect("tempdir");
        let (child, port) = Self::spawn(dir.path(), 0);
        SmtpServer { dir, port, child: Mutex::new(Some(child)) }
    }

    fn spawn(dir: &std::path::Path, port: u16) -> (std::process::Child, u16) {
        use std::io::BufRead;
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/smtp_server.py");
        let mut child = std::process::Command::new("python3")
            .arg(script)
            .arg(dir)
            .arg(port.to_string())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::inherit())
            .spawn()
            .expect("python3 starts the SMTP server");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        std::io::BufReader::new(stdout).read_line(&mut line).expect("the SMTP server reports its port");
        let port = line.trim().strip_prefix("READY ").and_then(|p| p.parse().ok()).expect("READY <port>");
        (child, port)
    }

    /// `smtp://127.0.0.1:<port>` (plain SMTP on loopback).
    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// The app's settings for this server, with quick polling and retries.
    pub fn configure(&self, figment: Figment) -> Figment {
        figment
            .merge(("smtp_url", self.url()))
            .merge(("public_url", "https://portal.example.jp"))
            .merge(("job_poll_ms", 50))
            .merge(("job_retry_seconds", 1))
    }

    pub fn stop(&self) {
        if let Some(mut child) = self.child.lock().unwrap().take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Start again on the same port.
    pub fn restart(&self) {
        self.stop();
        let (child, _) = Self::spawn(self.dir.path(), self.port);
        *self.child.lock().unwrap() = Some(child);
    }

    fn flag(&self, name: &str, on: bool) {
        let path = self.dir.path().join(name);
        if on {
            std::fs::write(path, b"").unwrap();
        } else {
            let _ = std::fs::remove_file(path);
        }
    }

    /// Answer RCPT with 451 (try again later) while `on`.
    pub fn refuse(&self, on: bool) {
        self.flag("refuse", on);
    }

    /// Answer RCPT with this reply (a code and text) until `refuse(false)`.
    pub fn refuse_with(&self, reply: &str) {
        std::fs::write(self.dir.path().join("refuse"), reply).unwrap();
    }

    /// Hold every RCPT while `on`: the client has not sent the data yet.
    pub fn stall(&self, on: bool) {
        self.flag("stall", on);
    }

    /// Whether a client is being held at RCPT.
    pub fn stalling(&self) -> bool {
        self.dir.path().join("stalling").exists()
    }

    /// The messages accepted so far, in order.
    pub fn messages(&self) -> Vec<Received> {
        let Ok(entries) = std::fs::read_dir(self.dir.path().join("messages")) else {
            return Vec::new();
        };
        let mut paths: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        paths.sort();
        paths.iter().map(|p| serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()).collect()
    }

    /// Wait until at least `n` messages arrived (at most `seconds`).
    pub async fn wait_for(&self, n: usize, seconds: u64) -> Vec<Received> {
        for _ in 0..seconds * 20 {
            let got = self.messages();
            if got.len() >= n {
                return got;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("expected {n} messages, the SMTP server has {}", self.messages().len());
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        self.stop();
    }
}
