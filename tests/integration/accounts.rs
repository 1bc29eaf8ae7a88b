use portal::{complete_draft, spawn_app, spawn_app_with, SmtpServer};
use reqwest::StatusCode;
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
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

/// Registration says the same for a known address as for a new one; the
/// owner of the known address hears that someone tried (S2, enumeration).
#[tokio::test]
async fn registering_a_known_address_answers_as_a_new_one_does_and_tells_its_owner() {
    let smtp = SmtpServer::start();
    let app = spawn_app_with(|f| smtp.configure(f)).await;
    app.claimant("hanako@example.jp").await;
    let known = app
        .api()
        .post("/auth/register", json!({"email": "HANAKO@example.jp", "password": "another long password"}))
        .await;
    let new = app
        .api()
        .post("/auth/register", json!({"email": "taro@example.jp", "password": "another long password"}))
        .await;
    assert_eq!((known.status, &known.body), (new.status, &new.body));
    assert_eq!(known.status, StatusCode::ACCEPTED);
    // The old password still signs in; the new one does not.
    app.login("hanako@example.jp", "correct horse battery staple").await;
    let taken =
        app.api().post("/auth/login", json!({"email": "hanako@example.jp", "password": "another long password"})).await;
    assert_eq!(taken.status, StatusCode::UNAUTHORIZED);
    // Three mails: hanako's link, the warning to hanako, taro's link.
    let mails = smtp.wait_for(3, 20).await;
    let to_hanako: Vec<_> = mails.iter().filter(|m| m.to.iter().any(|to| to.contains("hanako@example.jp"))).collect();
    assert_eq!(to_hanako.len(), 2, "{mails:?}");
    assert!(
        to_hanako.iter().any(|m| m.subject.contains("登録") && !m.body.contains("/confirm?token=")),
        "{to_hanako:?}"
    );
    let to_taro: Vec<_> = mails.iter().filter(|m| m.to.iter().any(|to| to.contains("taro@example.jp"))).collect();
    assert!(to_taro[0].body.contains("/confirm?token="), "{to_taro:?}");
}

/// The link in the mail proves the address; before it a claim can be
/// drafted but not submitted, and the claimant is told why in words.
#[tokio::test]
async fn a_claim_is_submitted_only_after_the_address_is_confirmed_by_the_link_in_the_mail() {
    let smtp = SmtpServer::start();
    let app = spawn_app_with(|f| smtp.configure(f)).await;
    let mut api = app.claimant_unconfirmed("hanako@example.jp").await;
    api.lang = "en";
    assert_eq!(api.get("/me").await.body["email_confirmed"], false);
    let claim = api.post("/claims", json!({"case": "benesse-2014"})).await.body["id"].as_str().unwrap().to_string();
    assert_eq!(
        api.put(&format!("/claims/{claim}"), complete_draft("やまだ", "1980-05-05")).await.status,
        StatusCode::OK
    );
    api.sign_all(&claim).await;
    assert!(api.get(&format!("/claims/{claim}")).await.body["missing"]
        .as_array()
        .unwrap()
        .contains(&json!("email_confirmation")));
    let refused = api.post(&format!("/claims/{claim}/submit"), json!({})).await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY, "{:?}", refused.body);
    assert!(
        refused.body["error"]["fields"]["email_confirmation"].as_str().unwrap().contains("not confirmed"),
        "{:?}",
        refused.body
    );

    // The link from the mail, as received by the mail server.
    let mail = smtp.wait_for(1, 20).await.remove(0);
    let link = mail.body.split_whitespace().find(|w| w.contains("/confirm?token=")).expect("a link").to_string();
    assert!(link.starts_with("http"), "{link}");
    let path = &link[link.find("/confirm").unwrap()..];
    // A link with a character changed is refused in words.
    let broken = app.browser().get(&format!("{}x", path)).await;
    assert_eq!(broken.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(broken.html.contains("このリンクは使えません"), "{}", broken.html);
    let opened = app.browser().get(path).await;
    assert_eq!(opened.status, StatusCode::OK);
    assert!(opened.html.contains("メールアドレスを確認しました"), "{}", opened.html);
    assert_eq!(api.get("/me").await.body["email_confirmed"], true);
    let submitted = api.post(&format!("/claims/{claim}/submit"), json!({})).await;
    assert_eq!(submitted.status, StatusCode::OK, "{:?}", submitted.body);

    // The token is nowhere at rest: the kept copy of the mail says where it led, not the token.
    let token = &path["/confirm?token=".len()..];
    assert!(portal::find_in(&app.bytes_at_rest(), &[token]).is_empty(), "the link's token is stored");
    let db = app.db().await;
    let confirmed = entities::audit_event::Entity::find()
        .filter(entities::audit_event::Column::Action.eq("account.address_confirmed"))
        .count(&db)
        .await
        .unwrap();
    assert_eq!(confirmed, 1);
}

/// Registration is limited per client address and for the whole portal,
/// before any password is hashed.
#[tokio::test]
async fn registrations_are_limited_per_address_and_portal_wide() {
    let app = spawn_app_with(|f| f.merge(("registrations_per_ip_per_hour", 2))).await;
    let mut api = app.api();
    api.lang = "en";
    for n in 0..2 {
        let r = api
            .post(
                "/auth/register",
                json!({"email": format!("r{n}@example.jp"), "password": "correct horse battery staple"}),
            )
            .await;
        assert_eq!(r.status, StatusCode::ACCEPTED);
    }
    let r =
        api.post("/auth/register", json!({"email": "r9@example.jp", "password": "correct horse battery staple"})).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(r.body["error"]["code"], "too_many_requests");
    // The page says so too, keeping what was typed.
    let browser = app.browser();
    let page = browser.get("/register").await;
    let refused = browser
        .submit(&page, "/register", &[("email", "r9@example.jp"), ("password", "correct horse battery staple")])
        .await;
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(refused.input_value("email").as_deref(), Some("r9@example.jp"));

    let app = spawn_app_with(|f| f.merge(("registrations_per_minute", 1))).await;
    let first = app
        .api()
        .post("/auth/register", json!({"email": "a@example.jp", "password": "correct horse battery staple"}))
        .await;
    assert_eq!(first.status, StatusCode::ACCEPTED);
    let second = app
        .api()
        .post("/auth/register", json!({"email": "b@example.jp", "password": "correct horse battery staple"}))
        .await;
    assert_eq!(second.status, StatusCode::TOO_MANY_REQUESTS);
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
