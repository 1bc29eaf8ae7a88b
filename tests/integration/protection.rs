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
    let rocket = app::build(portal::test_figment("sqlite::memory:", app.data_dir.path()));
    let mut missing = vec![];
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
        if doc["paths"][&openapi_path][&method].is_null() {
            missing.push(format!("{method} {openapi_path}"));
        }
    }
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
