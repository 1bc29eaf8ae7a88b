//! Mail that reaches people, against a real SMTP server on loopback
//! (aiosmtpd): the right language, no personal data, and delivery that
//! survives a refusing or absent server.
use app::auth::Role;
use portal::{complete_draft, spawn_app_with, ApiClient, Received, SmtpServer, TestApp};
use reqwest::StatusCode;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::json;

async fn lawyer(app: &TestApp) -> ApiClient {
    let (lawyer, _) = app.staff_verified("lawyer@example.jp", Role::Lawyer).await;
    app.add_to_case("lawyer@example.jp").await;
    lawyer
}

/// The mail other than address confirmations (every claimant gets one).
fn notices(mails: Vec<Received>) -> Vec<Received> {
    mails.into_iter().filter(|m| !m.body.contains("/confirm?token=")).collect()
}

/// How many outbox rows are unsent once that number reaches `want` (or
/// after 10 s): the portal records a send a moment after the server holds it.
async fn unsent_settles_at(db: &sea_orm::DatabaseConnection, want: usize) -> usize {
    let mut unsent = usize::MAX;
    for _ in 0..200 {
        let rows = entities::outbox::Entity::find().filter(entities::outbox::Column::SentAt.is_null()).all(db).await;
        unsent = rows.unwrap().len();
        if unsent == want {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    unsent
}

/// A claimant registered in `lang` who opened the confirmation link (from
/// the mail server when there is one), with a submitted claim.
async fn claimant_in(
    app: &TestApp,
    smtp: Option<&SmtpServer>,
    email: &str,
    lang: &'static str,
) -> (ApiClient, String, String) {
    let mut api = app.api();
    api.lang = lang;
    let password = "correct horse battery staple";
    let r = api.post("/auth/register", json!({"email": email, "password": password})).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
    match smtp {
        Some(smtp) => {
            let mut link = None;
            for _ in 0..200 {
                link = smtp.messages().iter().filter(|m| m.to == [email]).find_map(|m| {
                    m.body.split_whitespace().find(|w| w.contains("/confirm?token=")).map(str::to_string)
                });
                if link.is_some() {
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            let link = link.expect("the confirmation mail arrives");
            let path = &link[link.find("/confirm").unwrap()..];
            assert_eq!(app.browser().get(path).await.status, StatusCode::OK);
        }
        None => app.confirm_address(email).await,
    }
    let mut api = app.login(email, password).await;
    api.lang = lang;
    let claim = api.post("/claims", json!({"case": "benesse-2014"})).await.body["id"].as_str().unwrap().to_string();
    assert_eq!(
        api.put(&format!("/claims/{claim}"), complete_draft("やまだ", "1980-05-05")).await.status,
        StatusCode::OK
    );
    api.sign_as(&claim, "山田 花子").await;
    let submitted = api.post(&format!("/claims/{claim}/submit"), json!({})).await;
    assert_eq!(submitted.status, StatusCode::OK, "{:?}", submitted.body);
    let number = submitted.body["number"].as_str().unwrap_or_default().to_string();
    (api, claim, number)
}

const REASON: &str = "おわびの手紙の写真が読み取れません";

#[tokio::test]
async fn a_deficiency_notice_arrives_in_the_claimants_language_with_no_personal_data() {
    let smtp = SmtpServer::start();
    let app = spawn_app_with(|f| smtp.configure(f)).await;
    let lawyer = lawyer(&app).await;
    let (_, ja_claim, ja_number) = claimant_in(&app, Some(&smtp), "hanako@example.jp", "ja").await;
    let (_, en_claim, en_number) = claimant_in(&app, Some(&smtp), "mary@example.jp", "en").await;
    assert!(!ja_number.is_empty() && !en_number.is_empty());
    for claim in [&ja_claim, &en_claim] {
        let r = lawyer
            .post(
                &format!("/review/claims/{claim}/decision"),
                json!({"decision": "request_info", "reason": REASON, "cure_days": 14}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    }
    let got = notices(smtp.wait_for(4, 20).await);
    assert_eq!(got.len(), 2);
    let deadline = app.clock.today() + chrono::Duration::days(14);
    let ja = got.iter().find(|m| m.to == ["hanako@example.jp"]).expect("the Japanese notice");
    let en = got.iter().find(|m| m.to == ["mary@example.jp"]).expect("the English notice");
    assert!(ja.subject.contains(&ja_number) && ja.subject.contains("追加の情報"), "{}", ja.subject);
    assert!(ja.body.contains(&deadline.format("%Y年%-m月%-d日").to_string()), "{}", ja.body);
    assert!(en.subject.contains(&en_number) && en.subject.starts_with('['), "{}", en.subject);
    assert!(en.body.contains(&deadline.format("%-d %B %Y").to_string()), "{}", en.body);
    assert!(!en.body.chars().any(|c| ('\u{3040}'..='\u{30ff}').contains(&c)), "English only: {}", en.body);
    for mail in [ja, en] {
        assert!(mail.body.contains("https://portal.example.jp/login"), "{}", mail.body);
        assert!(mail.message_id.ends_with("@portal.example.jp>"), "{}", mail.message_id);
        // The claim number and the deadline, never a reason, a name, an address or a phone.
        let text = format!("{}\n{}", mail.subject, mail.body);
        for personal in [REASON, "山田", "花子", "やまだ", "千代田", "100-0001", "090-1234-5678", "contact@example.jp"]
        {
            assert!(!text.contains(personal), "{personal:?} in {text}");
        }
    }
    // Recorded as sent (the portal records it once the server has answered,
    // so a moment after the server holds the message), audited.
    let db = app.db().await;
    let mut all_recorded = false;
    for _ in 0..200 {
        let rows = entities::outbox::Entity::find().all(&db).await.unwrap();
        all_recorded = rows.len() == 4 && rows.iter().all(|r| r.sent_at.is_some() && r.message_id.is_some());
        if all_recorded {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(all_recorded, "every mail recorded as sent");
    let audited = entities::audit_event::Entity::find()
        .filter(entities::audit_event::Column::Action.eq("mail.sent"))
        .all(&db)
        .await
        .unwrap();
    assert_eq!(audited.len(), 4, "two confirmations, two notices");
}

#[tokio::test]
async fn mail_waits_while_the_server_refuses_or_is_down_and_is_delivered_once_it_is_back() {
    let smtp = SmtpServer::start();
    let app = spawn_app_with(|f| smtp.configure(f)).await;
    let lawyer = lawyer(&app).await;
    let (_, first, _) = claimant_in(&app, Some(&smtp), "hanako@example.jp", "ja").await;
    let (_, second, _) = claimant_in(&app, Some(&smtp), "taro@example.jp", "ja").await;
    let db = app.db().await;
    let decide = |claim: String| {
        let lawyer = lawyer.clone();
        async move {
            let r = lawyer.post(&format!("/review/claims/{claim}/decision"), json!({"decision": "verify"})).await;
            assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
        }
    };
    let failed_attempts = |db: sea_orm::DatabaseConnection| async move {
        let jobs = entities::job::Entity::find().filter(entities::job::Column::Kind.eq("mail")).all(&db).await.unwrap();
        jobs.iter().filter(|j| j.error.is_some() && j.status == entities::job::Status::Queued).count()
    };

    // The server answers 451: the mail stays in the outbox, retried.
    smtp.refuse(true);
    decide(first.clone()).await;
    let mut waited = 0;
    while failed_attempts(db.clone()).await == 0 {
        waited += 1;
        assert!(waited < 200, "the refusal was never recorded");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(notices(smtp.messages()).is_empty());
    assert_eq!(unsent_settles_at(&db, 1).await, 1);
    // Administrators see why.
    let state = app.state().await;
    let overview = app::mail::overview(state.db.conn(), chrono::Utc::now(), true).await.unwrap();
    assert_eq!((overview.waiting, overview.retrying), (1, 1));
    assert!(overview.recent_failures[0].error.contains("451"), "{:?}", overview.recent_failures);
    smtp.refuse(false);
    let got = notices(smtp.wait_for(3, 20).await);
    assert_eq!(got.len(), 1);

    // The server is down: the same.
    smtp.stop();
    decide(second.clone()).await;
    let mut waited = 0;
    while failed_attempts(db.clone()).await == 0 {
        waited += 1;
        assert!(waited < 200, "the connection failure was never recorded");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    smtp.restart();
    let got = notices(smtp.wait_for(4, 30).await);
    assert_eq!(got.len(), 2, "each mail once");
    assert_ne!(got[0].message_id, got[1].message_id);
    assert_eq!(unsent_settles_at(&db, 0).await, 0);
}

#[tokio::test]
async fn without_an_smtp_server_mail_waits_and_the_admin_page_says_so() {
    let app = spawn_app_with(|f| f.merge(("job_poll_ms", 50))).await;
    let lawyer = lawyer(&app).await;
    let (_, claim, _) = claimant_in(&app, None, "hanako@example.jp", "ja").await;
    lawyer.post(&format!("/review/claims/{claim}/decision"), json!({"decision": "verify"})).await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let db = app.db().await;
    let rows = entities::outbox::Entity::find().all(&db).await.unwrap();
    assert_eq!(rows.len(), 2, "the address confirmation and the decision");
    assert!(rows.iter().all(|r| r.sent_at.is_none()));
    let job = entities::job::Entity::find().filter(entities::job::Column::Kind.eq("mail")).one(&db).await.unwrap();
    assert_eq!(job.unwrap().attempts, 0, "nobody tries to send without a server");

    let browser = app.staff_browser("admin2@example.jp", Role::Admin).await;
    let page = browser.get("/admin").await;
    assert_eq!(page.status, StatusCode::OK);
    let text = page.texts("main").join(" ");
    assert!(text.contains("APP_SMTP_URL") && text.contains("送信待ち"), "{text}");
}

/// Migration 14 down drops the job table and the mail columns and keeps the
/// outbox's rows; up again, they read back with the defaults.
#[tokio::test]
async fn the_jobs_and_mail_migration_goes_down_and_back_up_keeping_the_outbox() {
    use migration::MigratorTrait;
    use sea_orm::{ConnectionTrait, Statement};
    let app = spawn_app_with(|f| f.merge(("workers", 0))).await;
    let lawyer = lawyer(&app).await;
    let (claimant, claim, _) = claimant_in(&app, None, "mary@example.jp", "en").await;
    lawyer.post(&format!("/review/claims/{claim}/decision"), json!({"decision": "verify"})).await;
    let db = app.db().await;
    app.migrate_down_to_before(&db, "m20261202_000014_jobs_and_mail").await;
    let count = |sql: &'static str| {
        let db = db.clone();
        async move {
            let row = db.query_one_raw(Statement::from_string(db.get_database_backend(), sql)).await.unwrap().unwrap();
            row.try_get_by_index::<i64>(0).unwrap()
        }
    };
    assert_eq!(count("SELECT COUNT(*) FROM outbox WHERE kind = 'claim.verified'").await, 1, "the outbox keeps its row");
    let jobs = db.query_one_raw(Statement::from_string(db.get_database_backend(), "SELECT COUNT(*) FROM jobs")).await;
    assert!(jobs.is_err(), "the job table is gone");

    migration::Migrator::up(&db, None).await.unwrap();
    let rows = entities::outbox::Entity::find()
        .filter(entities::outbox::Column::Kind.eq("claim.verified"))
        .all(&db)
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!((rows[0].language.as_str(), rows[0].params.as_deref()), ("ja", None), "defaults after the way back");
    let prefs = claimant.get("/me/preferences").await.body;
    assert_eq!(prefs, json!({"language": "ja", "reminders": true}));
}

/// A refusal (5xx) is given up at once; the server's answer is kept for
/// administrators without the address it quoted, and no log line holds it.
#[tokio::test]
async fn a_refusal_is_given_up_at_once_and_the_address_it_quotes_reaches_no_row_and_no_log() {
    let logs = portal::captured_logs();
    let smtp = SmtpServer::start();
    let app = spawn_app_with(|f| smtp.configure(f)).await;
    let lawyer = lawyer(&app).await;
    let (_, claim, _) = claimant_in(&app, Some(&smtp), "nobody-here@example.jp", "ja").await;
    smtp.refuse_with("550 5.1.1 <nobody-here@example.jp>: Recipient address rejected");
    lawyer.post(&format!("/review/claims/{claim}/decision"), json!({"decision": "verify"})).await;
    let db = app.db().await;
    let mut job = None;
    for _ in 0..200 {
        job = entities::job::Entity::find()
            .filter(entities::job::Column::Kind.eq("mail"))
            .filter(entities::job::Column::Status.eq(entities::job::Status::Failed))
            .one(&db)
            .await
            .unwrap();
        if job.is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let job = job.expect("the refused mail is given up");
    assert_eq!(job.attempts, 1, "a refusal is not retried");
    let error = job.error.unwrap_or_default();
    assert!(error.contains("550") && !error.contains("nobody-here"), "{error}");
    assert!(notices(smtp.messages()).is_empty());
    assert!(!logs.text().contains("nobody-here"), "the address reached the log");
}
