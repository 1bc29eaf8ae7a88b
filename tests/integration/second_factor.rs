//! The staff second factor (TOTP): enrolment, per-session verification,
//! one use per code, claimants not concerned.
use portal::spawn_app;
use reqwest::StatusCode;
use serde_json::json;

fn code_for(secret: &str, offset_steps: i64) -> String {
    portal::totp_code(secret, offset_steps)
}

#[tokio::test]
async fn a_lawyer_enrols_a_second_factor_and_each_session_must_pass_it() {
    let app = spawn_app().await;
    let mut lawyer = app.staff("lawyer@example.jp", app::auth::Role::Lawyer).await;
    lawyer.lang = "en";
    let me = lawyer.get("/me").await.body;
    assert_eq!(me["second_factor"], json!({"enrolled": false, "verified": false}));
    assert_eq!(lawyer.post("/auth/totp/verify", json!({"code": "123456"})).await.status, StatusCode::CONFLICT);

    let setup = lawyer.post("/auth/totp/setup", json!({})).await;
    assert_eq!(setup.status, StatusCode::CREATED, "{:?}", setup.body);
    let secret = setup.body["secret"].as_str().unwrap().to_string();
    assert!(setup.body["otpauth_url"].as_str().unwrap().starts_with("otpauth://totp/"));

    // A wrong code is refused beside the field, in the caller's language.
    let wrong = lawyer.post("/auth/totp/verify", json!({"code": "000000"})).await;
    assert_eq!(wrong.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        wrong.body["error"]["fields"]["code"],
        "The authenticator code is wrong or was already used. Enter a new code."
    );
    let code = code_for(&secret, 0);
    assert_eq!(lawyer.post("/auth/totp/verify", json!({"code": code})).await.status, StatusCode::NO_CONTENT);
    assert_eq!(lawyer.get("/me").await.body["second_factor"], json!({"enrolled": true, "verified": true}));
    // The same code is not accepted twice, and enrolment cannot be restarted.
    assert_eq!(lawyer.post("/auth/totp/verify", json!({"code": code})).await.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(lawyer.post("/auth/totp/setup", json!({})).await.status, StatusCode::CONFLICT);

    // A new session starts unverified and passes with the next code.
    let again = app.login("lawyer@example.jp", "staff password long enough").await;
    assert_eq!(again.get("/me").await.body["second_factor"], json!({"enrolled": true, "verified": false}));
    let next = code_for(&secret, 1);
    assert_eq!(again.post("/auth/totp/verify", json!({"code": next})).await.status, StatusCode::NO_CONTENT);
    assert_eq!(again.get("/me").await.body["second_factor"]["verified"], true);

    // The secret is stored sealed, never in clear.
    let found = portal::find_in(&app.bytes_at_rest(), &[secret.as_str()]);
    assert!(found.is_empty(), "the TOTP secret is at rest in clear");
    let db = app.db().await;
    use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
    for action in ["auth.totp_setup", "auth.totp_enrolled", "auth.mfa_verified", "auth.mfa_failed"] {
        let n = entities::audit_event::Entity::find()
            .filter(entities::audit_event::Column::Action.eq(action))
            .count(&db)
            .await
            .unwrap();
        assert!(n >= 1, "{action} is audited");
    }
}

#[tokio::test]
async fn claimants_have_no_second_factor_routes() {
    let app = spawn_app().await;
    let claimant = app.claimant("hanako@example.jp").await;
    assert_eq!(claimant.post("/auth/totp/setup", json!({})).await.status, StatusCode::NOT_FOUND);
    assert_eq!(claimant.post("/auth/totp/verify", json!({"code": "123456"})).await.status, StatusCode::NOT_FOUND);
}

/// Guessing second-factor codes or the erasure password counts against the
/// account, not the address: the per-address limit is set out of reach here,
/// and five wrong guesses still lock the account and end all its sessions.
#[tokio::test]
async fn guessing_codes_or_passwords_locks_the_account_whatever_the_address() {
    let app = portal::spawn_app_with(|f| f.merge(("login_attempts_per_ip_per_minute", 10_000))).await;
    let (verified, secret) = app.staff_verified("lawyer@example.jp", app::auth::Role::Lawyer).await;
    let guesser = app.login("lawyer@example.jp", "staff password long enough").await;
    let wrong = portal::totp_code(&secret, 10);
    for n in 1..5 {
        let r = guesser.post("/auth/totp/verify", json!({"code": wrong})).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "guess {n}: {:?}", r.body);
    }
    let fifth = guesser.post("/auth/totp/verify", json!({"code": wrong})).await;
    assert_eq!(fifth.status, StatusCode::UNAUTHORIZED, "the fifth wrong code ends the session");
    assert_eq!(verified.get("/me").await.status, StatusCode::UNAUTHORIZED, "every session of the account ends");
    let login = app
        .api()
        .post("/auth/login", json!({"email": "lawyer@example.jp", "password": "staff password long enough"}))
        .await;
    assert_eq!(login.status, StatusCode::UNAUTHORIZED, "the account is locked");
    app.clock.set(chrono::Utc::now() + chrono::Duration::minutes(16));
    app.login("lawyer@example.jp", "staff password long enough").await;

    // The erasure's password check counts the same way.
    let claimant = app.claimant("hanako@example.jp").await;
    for n in 1..5 {
        let r = claimant.post("/me/erase", json!({"password": "a wrong guess"})).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "guess {n}");
    }
    assert_eq!(claimant.post("/me/erase", json!({"password": "a wrong guess"})).await.status, StatusCode::UNAUTHORIZED);
    let r = claimant.post("/me/erase", json!({"password": "correct horse battery staple"})).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "the session is over");
    let login = app
        .api()
        .post("/auth/login", json!({"email": "hanako@example.jp", "password": "correct horse battery staple"}))
        .await;
    assert_eq!(login.status, StatusCode::UNAUTHORIZED, "and the account locked");
}
