//! S12: personal data never reaches the logs or URLs. Captures every log
//! line the app emits at the production level (info) while a claimant works
//! with canary values, including refused input, then searches for them.
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test]
async fn personal_data_never_reaches_the_logs_or_urls() {
    let logs = portal::captured_logs();
    let app = portal::spawn_app().await;
    let canaries = [
        "ログカナリア",
        "ろぐかなりあ",
        "logcanary@example.jp",
        "08011112222",
        "1112222",
        "カナリア町1-1",
        "LOGCANARY99",
        "987654321",
    ];

    let api = app.claimant("logcanary@example.jp").await;
    let id = api.post("/claims", json!({"case": "benesse-2014"})).await.body["id"].as_str().unwrap().to_string();
    let mut draft = portal::complete_draft("ろぐかなりあ", "1980-05-05");
    draft["persons"][0]["family_name"] = json!("ログカナリア");
    draft["address"]["line1"] = json!("カナリア町1-1");
    draft["address"]["postal_code"] = json!("111-2222");
    draft["phone"] = json!("080-1111-2222");
    draft["registration_code"] = json!("LOGCANARY99");
    assert_eq!(api.put(&format!("/claims/{id}"), draft.clone()).await.status, StatusCode::OK);
    // Refused input is not echoed into the logs either.
    let mut bad = draft.clone();
    bad["phone"] = json!("08011112222x");
    bad["persons"][0]["given_name_kana"] = json!("ログカナリア漢字");
    assert_eq!(api.put(&format!("/claims/{id}"), bad).await.status, StatusCode::UNPROCESSABLE_ENTITY);
    api.sign_as(&id, "ログカナリア 花子").await;
    assert_eq!(api.post(&format!("/claims/{id}/submit"), json!({})).await.status, StatusCode::OK);
    // A failed login with the canary address.
    app.api().post("/auth/login", json!({"email": "logcanary@example.jp", "password": "wrong password"})).await;
    // Bodies that parse as JSON but hold a value of the wrong type: the
    // refusal names where, never what (Rocket's own guard logged the body).
    let typed = app.api().post("/auth/login", json!({"email": "logcanary@example.jp", "password": 987654321})).await;
    assert_eq!(typed.status, StatusCode::UNPROCESSABLE_ENTITY);
    let mut numeric = draft.clone();
    numeric["phone"] = json!(8011112222u64);
    assert_eq!(api.put(&format!("/claims/{id}"), numeric).await.status, StatusCode::UNPROCESSABLE_ENTITY);

    // The same through the pages, recording every URL the browser visits.
    let browser = app.browser();
    let page = browser.get("/register").await;
    let mut urls = vec![page.url.clone()];
    let sent = browser
        .submit(
            &page,
            "/register",
            &[("email", "page.logcanary@example.jp"), ("password", "correct horse battery staple")],
        )
        .await;
    urls.push(sent.url.clone());
    let login = browser.get("/login").await;
    let home = browser
        .submit(
            &login,
            "/login",
            &[("email", "page.logcanary@example.jp"), ("password", "correct horse battery staple")],
        )
        .await;
    urls.push(home.url.clone());
    let identity = browser.submit(&home, "/claims", &[("case", "benesse-2014")]).await;
    urls.push(identity.url.clone());
    let claim = identity.url.trim_end_matches("/identity").to_string();
    let path =
        claim.split_once("127.0.0.1").map(|(_, p)| p.split_once('/').map(|(_, p)| format!("/{p}")).unwrap()).unwrap();
    let next = browser
        .submit(
            &identity,
            &format!("{path}/identity"),
            &[
                ("family_name", "ログカナリア"),
                ("given_name", "花子"),
                ("family_name_kana", "ろぐかなりあ"),
                ("given_name_kana", "はなこ"),
                ("birth_date", "1980-05-05"),
                ("gender", "female"),
            ],
        )
        .await;
    urls.push(next.url.clone());
    // A form field of the wrong type (a tick box given words).
    let me = browser.get("/me").await;
    let refused = browser
        .post_form(
            "/me/preferences",
            &[
                ("csrf".into(), me.csrf()),
                ("language".into(), "ja".into()),
                ("reminders".into(), "ログカナリア".into()),
            ],
        )
        .await;
    assert!(refused.status.is_client_error(), "{}", refused.status);

    let text = logs.text();
    assert!(text.contains("/api/v1/claims"), "request lines were captured, so the search means something");
    for canary in canaries {
        let line = text.lines().find(|l| l.contains(canary)).unwrap_or_default();
        assert!(!text.contains(canary), "{canary} appeared in the logs: {line}");
        for url in &urls {
            assert!(!url.contains(canary), "{canary} appeared in a URL: {url}");
        }
    }
    assert!(!text.contains("page.logcanary"), "an e-mail address appeared in the logs");
}

/// S28: whatever a body holds — bytes that are not UTF-8, JSON of the wrong
/// shape, far too much, a broken multipart body — no log line repeats it.
/// Every route that takes a body is sent each, as a claimant and as an
/// administrator who passed the second factor.
#[tokio::test]
async fn no_body_reaches_the_log_whatever_it_holds_on_any_route() {
    use crate::access_matrix::{Access, MATRIX};
    let logs = portal::captured_logs();
    let app = portal::spawn_app_with(|f| f.merge(("login_attempts_per_ip_per_minute", 10_000))).await;
    let claimant = app.claimant("bodycanary@example.jp").await;
    let claim =
        claimant.post("/claims", json!({"case": "benesse-2014"})).await.body["id"].as_str().unwrap().to_string();
    let (admin, _) = app.staff_verified("admin2@example.jp", app::auth::Role::Admin).await;
    const CANARY: &str = "BODYCANARY-金糸雀-0901234";
    let mut not_utf8 = format!("{{\"email\": \"{CANARY}\", \"password\": \"").into_bytes();
    not_utf8.extend_from_slice(&[0xff, 0xfe, 0xc3, 0x28]);
    not_utf8.extend_from_slice(format!("{CANARY}\"}}").as_bytes());
    let wrong_shape = json!({"email": [CANARY], "password": {"x": CANARY}, "persons": CANARY, "phone": 9012345678u64,
        "decision": {"v": CANARY}, "reason": [CANARY], "token": [CANARY], "name": 1, "current_password": [CANARY]})
    .to_string()
    .into_bytes();
    let too_much = CANARY.repeat(70_000).into_bytes();
    let form = format!("csrf=x&email={CANARY}&password=%FF%FE{CANARY}").into_bytes();
    let broken_multipart = format!("--XyZ\r\nContent-Disposition: form-data; name=\"kind\"\r\n\r\n{CANARY}\r\n--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{CANARY}.jpg\"\r\n\r\n{CANARY}").into_bytes();
    let bodies: [(&str, &[u8]); 5] = [
        ("application/json", &not_utf8),
        ("application/json", &wrong_shape),
        ("application/json", &too_much),
        ("multipart/form-data; boundary=XyZ", &broken_multipart),
        ("application/x-www-form-urlencoded", &form),
    ];
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let mut sent = 0;
    for (method, path, access) in MATRIX {
        if *method == "GET" || path.contains("logout") || path.ends_with("/withdraw") || path.ends_with("/erase") {
            continue;
        }
        let token = match access {
            Access::Admin | Access::Staff | Access::StaffSigningIn => admin.token.clone(),
            _ => claimant.token.clone(),
        };
        let concrete = path
            .replace("<id>", &claim)
            .replace("<_id>", &claim)
            .replace("<slug>", "benesse-2014")
            .replace("<step>", "identity")
            .replace("<index>", "0");
        let concrete = concrete.split('<').next().unwrap_or_default().trim_end_matches('/').to_string();
        for (content_type, body) in &bodies {
            let mut req = http
                .request(method.parse().unwrap(), format!("{}{concrete}", app.address))
                .header("Content-Type", *content_type)
                .body(body.to_vec());
            if let Some(token) = &token {
                req = req.bearer_auth(token);
            }
            let res = req.send().await.unwrap();
            assert!(res.status().as_u16() < 500, "{method} {concrete} ({content_type}): {}", res.status());
            sent += 1;
        }
    }
    assert!(sent > 200, "every route that takes a body was sent each ({sent})");
    let text = logs.text();
    assert!(
        !text.contains("BODYCANARY") && !text.contains("金糸雀") && !text.contains("0901234"),
        "a body reached the log"
    );
}
