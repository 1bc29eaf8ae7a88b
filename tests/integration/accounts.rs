use portal::{spawn_app, spawn_app_with};
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test]
async fn a_claimant_registers_logs_in_and_sees_their_account() {
    let app = spawn_app().await;
    let api = app.claimant("hanako@example.jp").await;
    let me = api.get("/me").await;
    assert_eq!(me.status, StatusCode::OK);
    assert_eq!(me.body["email"], "hanako@example.jp");
    assert_eq!(me.body["role"], "claimant");
}

#[tokio::test]
async fn logout_revokes_the_token_on_the_server() {
    let app = spawn_app().await;
    let api = app.claimant("hanako@example.jp").await;
    let r = api.post("/auth/logout", json!({})).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let me = api.get("/me").await;
    assert_eq!(me.status, StatusCode::UNAUTHORIZED);
    assert_eq!(me.body["error"]["code"], "unauthenticated");
}

#[tokio::test]
async fn a_weak_password_is_refused_in_the_callers_language() {
    let app = spawn_app().await;
    let mut api = app.api();
    let r = api.post("/auth/register", json!({"email": "a@example.jp", "password": "password1"})).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body["error"]["fields"]["password"].as_str().unwrap().contains("流出"), "{:?}", r.body);
    api.lang = "en";
    let r = api.post("/auth/register", json!({"email": "not-an-email", "password": "short"})).await;
    assert_eq!(r.body["error"]["fields"]["email"], "Enter an e-mail address like hanako@example.jp.");
    assert_eq!(r.body["error"]["fields"]["password"], "Use at least 8 characters.");
}

#[tokio::test]
async fn a_second_registration_with_the_same_email_is_refused() {
    let app = spawn_app().await;
    app.claimant("hanako@example.jp").await;
    let r = app
        .api()
        .post("/auth/register", json!({"email": "HANAKO@example.jp", "password": "another long password"}))
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body["error"]["fields"]["email"].is_string());
}

#[tokio::test]
async fn login_answers_the_same_for_an_unknown_account_and_a_wrong_password() {
    let app = spawn_app().await;
    app.claimant("hanako@example.jp").await;
    let api = app.api();
    let unknown = api.post("/auth/login", json!({"email": "nobody@example.jp", "password": "whatever it is"})).await;
    let wrong = api.post("/auth/login", json!({"email": "hanako@example.jp", "password": "not the password"})).await;
    assert_eq!(unknown.status, StatusCode::UNAUTHORIZED);
    assert_eq!(unknown.status, wrong.status);
    assert_eq!(unknown.body, wrong.body);
}

#[tokio::test]
async fn repeated_failures_lock_the_account_even_for_the_right_password() {
    let app = spawn_app_with(|f| f.merge(("login_max_failures", 3))).await;
    app.claimant("hanako@example.jp").await;
    let api = app.api();
    for _ in 0..3 {
        let r = api.post("/auth/login", json!({"email": "hanako@example.jp", "password": "wrong password"})).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    }
    let r = api
        .post("/auth/login", json!({"email": "hanako@example.jp", "password": "correct horse battery staple"}))
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "a locked account must not log in");
}

#[tokio::test]
async fn too_many_attempts_from_one_address_answer_429() {
    let app = spawn_app_with(|f| f.merge(("login_attempts_per_ip_per_minute", 3))).await;
    let api = app.api();
    let mut statuses = vec![];
    for _ in 0..5 {
        statuses
            .push(api.post("/auth/login", json!({"email": "x@example.jp", "password": "whatever it is"})).await.status);
    }
    assert_eq!(&statuses[..3], &[StatusCode::UNAUTHORIZED; 3]);
    assert_eq!(statuses[4], StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn forged_and_altered_tokens_are_refused() {
    let app = spawn_app().await;
    let api = app.claimant("hanako@example.jp").await;
    let token = api.token.clone().unwrap();
    let parts: Vec<&str> = token.split('.').collect();
    // alg=none with the same claims.
    let none_header = base64_url(br#"{"alg":"none","typ":"JWT"}"#);
    let mut forged = api.clone();
    forged.token = Some(format!("{none_header}.{}.", parts[1]));
    assert_eq!(forged.get("/me").await.status, StatusCode::UNAUTHORIZED);
    // A flipped signature byte.
    let mut sig = parts[2].to_string();
    let last = sig.pop().unwrap();
    sig.push(if last == 'A' { 'B' } else { 'A' });
    forged.token = Some(format!("{}.{}.{}", parts[0], parts[1], sig));
    assert_eq!(forged.get("/me").await.status, StatusCode::UNAUTHORIZED);
}

fn base64_url(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Behind the operator's reverse proxy (`APP_TRUSTED_PROXIES`), the per-address
/// login limit and the audit trail see each client, not the proxy; from any
/// other peer `X-Forwarded-For` is ignored, so nobody can pick an address.
#[tokio::test]
async fn behind_a_trusted_proxy_each_client_keeps_its_own_address() {
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
    async fn login(app: &portal::TestApp, from: &str) -> StatusCode {
        reqwest::Client::new()
            .post(format!("{}/api/v1/auth/login", app.address))
            .header("X-Forwarded-For", from)
            .json(&json!({"email": "nobody@example.jp", "password": "not the password"}))
            .send()
            .await
            .unwrap()
            .status()
    }
    let proxied = spawn_app_with(|f| {
        f.merge(("trusted_proxies", "127.0.0.1/32, 10.0.0.0/8")).merge(("login_attempts_per_ip_per_minute", 2))
    })
    .await;
    for _ in 0..2 {
        assert_eq!(login(&proxied, "203.0.113.5").await, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(login(&proxied, "203.0.113.5").await, StatusCode::TOO_MANY_REQUESTS, "that client is throttled");
    assert_eq!(
        login(&proxied, "198.51.100.1, 203.0.113.6, 10.0.0.2").await,
        StatusCode::UNAUTHORIZED,
        "another is not"
    );
    let db = proxied.db().await;
    let audited = entities::audit_event::Entity::find()
        .filter(entities::audit_event::Column::Ip.eq("203.0.113.6"))
        .all(&db)
        .await
        .unwrap();
    assert_eq!(audited.len(), 1, "the audit trail names the client, not the proxy");

    let direct = spawn_app_with(|f| f.merge(("login_attempts_per_ip_per_minute", 2))).await;
    for from in ["203.0.113.5", "203.0.113.6"] {
        assert_eq!(login(&direct, from).await, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(login(&direct, "203.0.113.7").await, StatusCode::TOO_MANY_REQUESTS, "the header is not believed");
}
