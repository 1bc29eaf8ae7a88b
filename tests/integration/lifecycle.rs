//! An account's life: a password change ends the other sessions, an unused
//! session ends, administrators disable accounts and end their sessions,
//! and the bootstrap administrator's generated password is replaced first.
use app::auth::Role;
use chrono::Duration;
use portal::spawn_app;
use reqwest::StatusCode;
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use serde_json::json;

const PASSWORD: &str = "correct horse battery staple";

#[tokio::test]
async fn changing_the_password_ends_every_other_session_and_the_old_password_stops_working() {
    let app = spawn_app().await;
    let mut here = app.claimant("hanako@example.jp").await;
    here.lang = "en";
    let elsewhere = app.login("hanako@example.jp", PASSWORD).await;
    let change = |current: &str, new: &str| json!({"current_password": current, "new_password": new});

    let wrong = here.put("/me/password", change("not my password", "a brand new passphrase")).await;
    assert_eq!(wrong.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(wrong.body["error"]["fields"]["current_password"], "The password is not correct.");
    let weak = here.put("/me/password", change(PASSWORD, "short")).await;
    assert_eq!(weak.body["error"]["fields"]["new_password"], "Use at least 8 characters.");
    assert_eq!(elsewhere.get("/me").await.status, StatusCode::OK, "nothing changed yet");

    let done = here.put("/me/password", change(PASSWORD, "a brand new passphrase")).await;
    assert_eq!(done.status, StatusCode::NO_CONTENT, "{:?}", done.body);
    assert_eq!(here.get("/me").await.status, StatusCode::OK, "this session goes on");
    assert_eq!(elsewhere.get("/me").await.status, StatusCode::UNAUTHORIZED, "the other one ended");
    let old = app.api().post("/auth/login", json!({"email": "hanako@example.jp", "password": PASSWORD})).await;
    assert_eq!(old.status, StatusCode::UNAUTHORIZED);
    app.login("hanako@example.jp", "a brand new passphrase").await;

    let db = app.db().await;
    let audited = entities::audit_event::Entity::find()
        .filter(entities::audit_event::Column::Action.eq("auth.password_changed"))
        .one(&db)
        .await
        .unwrap()
        .expect("audited");
    assert!(audited.detail.contains(r#""other_sessions_ended":1"#), "{}", audited.detail);

    // The page does the same, with the errors beside the fields.
    let browser = app.browser_signed_in("hanako@example.jp", "a brand new passphrase").await;
    let page = browser.get("/account/password").await;
    let refused =
        browser.submit(&page, "/account/password", &[("current_password", "nope"), ("new_password", "x")]).await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(refused.texts("#f-current_password-error").len(), 1, "{}", refused.html);
    let changed = browser
        .submit(
            &page,
            "/account/password",
            &[("current_password", "a brand new passphrase"), ("new_password", "yet another passphrase")],
        )
        .await;
    assert!(changed.url.ends_with("/account/password?done=true"), "{}", changed.url);
    assert!(changed.html.contains("パスワードを変更しました"));
}

#[tokio::test]
async fn an_unused_session_ends_after_thirty_minutes_for_staff_and_two_hours_for_claimants() {
    let app = spawn_app().await;
    app.clock.set(chrono::Utc::now());
    let claimant = app.claimant("hanako@example.jp").await;
    let (lawyer, _) = app.staff_verified("lawyer@example.jp", Role::Lawyer).await;
    app.clock.advance(Duration::minutes(29));
    assert_eq!(lawyer.get("/me").await.status, StatusCode::OK, "used within the half hour");
    app.clock.advance(Duration::minutes(31));
    assert_eq!(lawyer.get("/me").await.status, StatusCode::UNAUTHORIZED, "31 minutes unused");
    // The claimant used the portal 60 minutes ago at most: still signed in, and each use counts.
    assert_eq!(claimant.get("/me").await.status, StatusCode::OK);
    app.clock.advance(Duration::minutes(119));
    assert_eq!(claimant.get("/me").await.status, StatusCode::OK);
    app.clock.advance(Duration::minutes(121));
    assert_eq!(claimant.get("/me").await.status, StatusCode::UNAUTHORIZED, "two hours unused");
}

#[tokio::test]
async fn an_administrator_disables_an_account_and_ends_its_sessions_but_not_their_own() {
    let app = spawn_app().await;
    let (mut admin, _) = app.staff_verified("admin2@example.jp", Role::Admin).await;
    admin.lang = "en";
    let (lawyer, _) = app.staff_verified("lawyer@example.jp", Role::Lawyer).await;
    app.add_to_case("lawyer@example.jp").await;
    let lawyer_id = lawyer.get("/me").await.body["id"].as_str().unwrap().to_string();
    let admin_id = admin.get("/me").await.body["id"].as_str().unwrap().to_string();

    let ended = admin.post(&format!("/admin/users/{lawyer_id}/sessions/end"), json!({})).await;
    assert_eq!(ended.status, StatusCode::OK, "{:?}", ended.body);
    assert_eq!(ended.body["sessions_ended"], 1);
    assert_eq!(lawyer.get("/me").await.status, StatusCode::UNAUTHORIZED);

    let again = app.login("lawyer@example.jp", "staff password long enough").await;
    let off = admin.put(&format!("/admin/users/{lawyer_id}/disabled"), json!({"disabled": true})).await;
    assert_eq!(off.status, StatusCode::NO_CONTENT);
    assert_eq!(again.get("/me").await.status, StatusCode::UNAUTHORIZED, "disabling ends its sessions");
    let refused = app
        .api()
        .post("/auth/login", json!({"email": "lawyer@example.jp", "password": "staff password long enough"}))
        .await;
    let unknown =
        app.api().post("/auth/login", json!({"email": "nobody@example.jp", "password": "whatever it is"})).await;
    assert_eq!((refused.status, &refused.body), (unknown.status, &unknown.body), "as for anyone unknown");
    let on = admin.put(&format!("/admin/users/{lawyer_id}/disabled"), json!({"disabled": false})).await;
    assert_eq!(on.status, StatusCode::NO_CONTENT);
    app.login("lawyer@example.jp", "staff password long enough").await;

    let own = admin.put(&format!("/admin/users/{admin_id}/disabled"), json!({"disabled": true})).await;
    assert_eq!(own.status, StatusCode::CONFLICT);
    assert_eq!(own.body["error"]["message"], "You cannot do this to your own account.");

    // From the members page too.
    let browser = app.staff_browser("admin3@example.jp", Role::Admin).await;
    let page = browser.get("/admin/cases/benesse-2014/members").await;
    let after = browser
        .submit(&page, &format!("/admin/users/{lawyer_id}/disabled"), &[("case", "benesse-2014"), ("disabled", "true")])
        .await;
    assert!(after.url.ends_with("/admin/cases/benesse-2014/members"), "{}", after.url);
    assert!(after.html.contains("アカウントを有効に戻す"), "the page offers to enable it again");

    let db = app.db().await;
    for action in ["account.sessions_ended", "account.disabled", "account.enabled"] {
        let n = entities::audit_event::Entity::find()
            .filter(entities::audit_event::Column::Action.eq(action))
            .count(&db)
            .await
            .unwrap();
        assert!(n >= 1, "{action} is audited");
    }
}

#[tokio::test]
async fn the_bootstrap_administrator_reads_the_password_from_a_private_file_and_must_replace_it_first() {
    let logs = portal::captured_logs();
    let app = spawn_app().await;
    let file = app.data_dir.path().join(app::auth::lifecycle::BOOTSTRAP_FILE);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600);
    }
    let text = std::fs::read_to_string(&file).unwrap();
    let password = text.lines().find_map(|l| l.strip_prefix("password: ")).expect("the password").to_string();
    let email = text.lines().find_map(|l| l.strip_prefix("e-mail: ")).expect("the e-mail").to_string();
    assert!(!logs.text().contains(&password), "never in the log");

    let mut admin = app.login(&email, &password).await;
    admin.lang = "en";
    let first = admin.get("/admin/alerts").await;
    assert_eq!(first.status, StatusCode::FORBIDDEN);
    assert_eq!(first.body["error"]["code"], "password_change_required");
    let browser = app.browser_signed_in(&email, &password).await;
    assert!(browser.get("/admin").await.url.ends_with("/account/password"), "pages lead to the password page");

    let done = admin
        .put("/me/password", json!({"current_password": password, "new_password": "the administrator's own"}))
        .await;
    assert_eq!(done.status, StatusCode::NO_CONTENT, "{:?}", done.body);
    assert!(!file.exists(), "the spent password's file is gone");
    let next = admin.get("/admin/alerts").await;
    assert_eq!(next.body["error"]["code"], "second_factor_required", "then the second factor, as for all staff");
}
