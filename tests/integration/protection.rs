use portal::{spawn_app, TestApp};
use reqwest::StatusCode;
use serde_json::json;

/// Personal data that must never appear in plain text at rest.
const CANARIES: [&str; 8] = [
    "カナリアタロウ",
    "金糸雀",
    "canary.pii@example.jp",
    "09087654321",
    "9876543",
    "金糸雀町7-7-7",
    "ZQ9XK7CANARY",
    "カナリア商事",
];

async fn plant_canary(app: &TestApp) {
    let api = app.claimant("canary.pii@example.jp").await;
    let id = api.post("/claims", json!({"case": "benesse-2014"})).await.body["id"].as_str().unwrap().to_string();
    let draft = json!({
        "persons": [{"relation": "self", "family_name": "金糸雀", "given_name": "太郎",
                     "family_name_kana": "かなりあ", "given_name_kana": "たろう",
                     "birth_date": "1977-07-07", "gender": "male"}],
        "address": {"postal_code": "987-6543", "prefecture": "北海道", "city": "札幌市",
                    "line1": "金糸雀町7-7-7", "line2": ""},
        "phone": "090-8765-4321",
        "email": "canary.pii@example.jp",
        "leaked_items": ["name"],
        "apology_letter_received": true,
        "registration_code": "ZQ9XK7CANARY",
        "apology_option": "none",
        "harms": [{"kind": "call", "date": "2014-09-09", "sender": "カナリア商事", "note": ""}]
    });
    let r = api.put(&format!("/claims/{id}"), draft).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    api.sign_as(&id, "金糸雀 太郎").await;
    assert_eq!(api.post(&format!("/claims/{id}/submit"), json!({})).await.status, StatusCode::OK);
    // The claim reads back in full for its owner, so the data is really there.
    let back = api.get(&format!("/claims/{id}")).await;
    assert_eq!(back.body["address"]["line1"], "金糸雀町7-7-7");
}

#[tokio::test]
async fn canary_personal_data_is_nowhere_in_plain_text_at_rest() {
    let app = spawn_app().await;
    plant_canary(&app).await;
    let found = portal::find_in(&app.bytes_at_rest(), &CANARIES);
    assert!(found.is_empty(), "plaintext PII at rest: {found:?}");
}

#[tokio::test]
async fn pages_carry_a_content_security_policy_and_are_not_cached() {
    let app = spawn_app().await;
    let res = reqwest::get(format!("{}/login", app.address)).await.unwrap();
    let csp = res.headers()["content-security-policy"].to_str().unwrap().to_string();
    assert!(csp.contains("default-src 'none'") && csp.contains("frame-ancestors 'none'"), "{csp}");
    assert_eq!(res.headers()["x-content-type-options"], "nosniff");
    assert_eq!(res.headers()["cache-control"], "no-store");
}

#[tokio::test]
async fn user_input_is_escaped_in_pages() {
    let app = spawn_app().await;
    let browser = app.browser();
    let page = browser.get("/register").await;
    let r = browser.submit(&page, "/register", &[("email", "<script>alert(1)</script>"), ("password", "x")]).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(!r.html.contains("<script>alert(1)</script>"));
    assert!(r.html.contains("&lt;script&gt;"));
}

#[tokio::test]
async fn the_openapi_document_describes_every_api_route() {
    let app = spawn_app().await;
    let doc = app.api().get("/openapi.json").await.body;
    assert_eq!(doc["openapi"], "3.1.0");
    // Each capability mounts its routes at ignition (its `stage()` fairing).
    let rocket = app::build(portal::test_figment("sqlite::memory:", app.data_dir.path()))
        .ignite()
        .await
        .expect("the app ignites");
    let mut missing = vec![];
    let mut checked = 0;
    for route in rocket.routes() {
        let path = route.uri.path().to_string();
        let Some(api_path) = path.strip_prefix("/api/v1") else {
            continue;
        };
        if api_path == "/openapi.json" {
            continue;
        }
        // Rocket writes `<id>`, OpenAPI `{id}`.
        let openapi_path = api_path.replace('<', "{").replace('>', "}");
        let method = route.method.as_str().to_lowercase();
        checked += 1;
        if doc["paths"][&openapi_path][&method].is_null() {
            missing.push(format!("{method} {openapi_path}"));
        }
    }
    assert!(checked > 50, "the mounted API routes were read: {checked}");
    assert!(missing.is_empty(), "undocumented routes: {missing:?}");
}

#[tokio::test]
async fn the_health_check_reports_the_database() {
    let app = spawn_app().await;
    let r = app.api();
    let res = r.http.get(format!("{}/health", app.address)).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
}

/// S27: what Chromium sends on a same-origin form POST (Fetch Metadata
/// `same-origin`; `Origin: null` under a `no-referrer` policy) is accepted,
/// and a cross-site POST with a valid session cookie is refused.
#[tokio::test]
async fn a_signed_in_form_post_as_a_browser_sends_it_is_accepted_and_a_cross_site_one_refused() {
    let app = spawn_app().await;
    let creds = json!({"email": "origin@example.jp", "password": "correct horse battery staple"});
    app.api().post("/auth/register", creds).await;
    let browser = app.browser_signed_in("origin@example.jp", "correct horse battery staple").await;
    let home = browser.get("/").await;
    let csrf = home.csrf();
    let join = |site: &'static str, origin: &'static str| {
        browser
            .http
            .post(format!("{}/claims", app.address))
            .header("Sec-Fetch-Site", site)
            .header("Origin", origin)
            .form(&[("csrf", csrf.as_str()), ("case", "benesse-2014")])
    };
    let cross = join("cross-site", "https://attacker.example").send().await.unwrap();
    assert_eq!(cross.status(), StatusCode::FORBIDDEN, "a cross-site POST is refused");
    let same = join("same-origin", "null").send().await.unwrap();
    assert_eq!(same.status(), StatusCode::OK, "Chromium's same-origin POST is accepted");
    assert!(same.url().path().starts_with("/claims/"), "the claim was started: {}", same.url());
}

/// S27: pages send a referrer policy under which a browser's POST carries a
/// real Origin, and a CSP that lets the upload script reach our own address.
#[tokio::test]
async fn pages_let_a_browser_send_its_origin_and_the_upload_script_connect_home() {
    let app = spawn_app().await;
    let res = reqwest::get(format!("{}/login", app.address)).await.unwrap();
    let policy = res.headers()["referrer-policy"].to_str().unwrap();
    assert_ne!(policy, "no-referrer", "under no-referrer a browser sends Origin: null on every POST");
    let csp = res.headers()["content-security-policy"].to_str().unwrap();
    assert!(csp.split(';').any(|d| d.trim() == "connect-src 'self'"), "{csp}");
}

/// Behind TLS (secure cookies) every answer asks browsers to keep to TLS;
/// on plain-HTTP development setups it does not, or the browser would refuse them.
#[tokio::test]
async fn hsts_is_sent_exactly_when_cookies_are_secure() {
    let secure = portal::spawn_app_with(|f| f.merge(("cookie_secure", true))).await;
    let res = reqwest::get(format!("{}/health", secure.address)).await.unwrap();
    let hsts = res.headers().get("strict-transport-security").map(|v| v.to_str().unwrap().to_string());
    assert_eq!(hsts.as_deref(), Some("max-age=63072000; includeSubDomains"));
    let plain = spawn_app().await;
    let res = reqwest::get(format!("{}/health", plain.address)).await.unwrap();
    assert!(res.headers().get("strict-transport-security").is_none());
}

/// S8: fields a claimant does not own (status, owner, number, tier, round)
/// are not taken from a request body.
#[tokio::test]
async fn a_claimant_cannot_set_status_owner_or_tier_through_the_api() {
    let app = spawn_app().await;
    let api = app.claimant("hanako@example.jp").await;
    let other = app.claimant("taro@example.jp").await;
    let taro = other.get("/me").await.body["id"].clone();
    let id = api.post("/claims", json!({"case": "benesse-2014", "status": "verified"})).await.body["id"]
        .as_str()
        .unwrap()
        .to_string();
    let mut draft = portal::complete_draft("やまだ", "1980-05-05");
    for (field, value) in [
        ("status", json!("verified")),
        ("claimant_id", taro.clone()),
        ("number", json!("BN-999999")),
        ("tier", json!(1)),
        ("round_id", json!(uuid::Uuid::new_v4().to_string())),
        ("needs_reverification", json!(false)),
    ] {
        draft[field] = value;
    }
    let r = api.put(&format!("/claims/{id}"), draft).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let claim = api.get(&format!("/claims/{id}")).await.body;
    assert_eq!(claim["status"], "draft");
    assert_ne!(claim["number"], "BN-999999");
    assert_eq!(other.get(&format!("/claims/{id}")).await.status, StatusCode::NOT_FOUND, "still hanako's");
}

/// S13: SQL the portal writes by hand is a constant with bound values; no
/// statement is built from text at run time.
#[test]
fn hand_written_sql_is_constant_text_with_bound_values() {
    fn sources(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap().map(Result::unwrap) {
            let path = entry.path();
            if path.is_dir() {
                sources(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    let mut files = Vec::new();
    sources(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("app/src"), &mut files);
    let mut raw_calls = 0;
    let mut built = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        for call in ["execute_unprepared(", "Statement::from_string(", "from_sql_and_values("] {
            for (at, _) in text.match_indices(call) {
                if text[..at].ends_with("fn ") {
                    continue; // a definition, not a call
                }
                raw_calls += 1;
                let args = text[at + call.len()..].trim_start();
                // The SQL is the first argument, or the second after the backend.
                let sql = if call == "Statement::from_string(" || call == "from_sql_and_values(" {
                    args.split_once(',').map(|(_, rest)| rest.trim_start()).unwrap_or(args)
                } else {
                    args
                };
                // A literal, or a `const` (an upper-case name).
                let constant = sql.split([',', ')']).next().unwrap_or_default().trim();
                let named_const = !constant.is_empty()
                    && constant.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
                // The write transaction's `ConnectionTrait` forwards its
                // caller's SQL, which this scan checks where it is written.
                let forwarded = file.ends_with("app/src/db.rs") && constant == "sql";
                if !(sql.starts_with('"')
                    || sql.starts_with("r#\"")
                    || sql.starts_with("r\"")
                    || named_const
                    || forwarded)
                {
                    built.push(format!("{}: {}", file.display(), &text[at..(at + 80).min(text.len())]));
                }
            }
        }
    }
    assert!(raw_calls > 0, "the scan found the hand-written SQL it is meant to check");
    assert!(built.is_empty(), "SQL built at run time: {built:#?}");
}

/// S4: the session cookie a sign-in sets is HttpOnly and SameSite, and
/// Secure with the `__Host-` prefix when the portal is served behind TLS.
#[tokio::test]
async fn the_session_cookie_is_http_only_same_site_and_secure_behind_tls() {
    for secure in [false, true] {
        let app = portal::spawn_app_with(|f| f.merge(("cookie_secure", secure))).await;
        app.claimant("hanako@example.jp").await;
        let http =
            reqwest::Client::builder().cookie_store(true).redirect(reqwest::redirect::Policy::none()).build().unwrap();
        let login = http.get(format!("{}/login", app.address)).send().await.unwrap().text().await.unwrap();
        let page = portal::Page { status: StatusCode::OK, url: String::new(), html: login };
        let form = [
            ("csrf", page.csrf()),
            ("email", "hanako@example.jp".to_string()),
            ("password", "correct horse battery staple".to_string()),
        ];
        let res = http.post(format!("{}/login", app.address)).form(&form).send().await.unwrap();
        assert!(res.status().is_redirection(), "{}", res.status());
        let cookie = res
            .headers()
            .get_all("set-cookie")
            .iter()
            .map(|v| v.to_str().unwrap().to_string())
            .find(|c| c.starts_with("session=") || c.starts_with("__Host-session="))
            .expect("a session cookie");
        assert!(
            cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax") && cookie.contains("Path=/"),
            "{cookie}"
        );
        assert_eq!(cookie.contains("Secure"), secure, "{cookie}");
        // Behind TLS the browser keeps it only for this host, over HTTPS, for the whole site.
        assert_eq!(cookie.starts_with("__Host-"), secure, "{cookie}");
    }
}
