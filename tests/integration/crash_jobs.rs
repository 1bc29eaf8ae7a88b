//! Background work across process deaths and across app servers, with the
//! real release binary on PostgreSQL (`TEST_DATABASE_URL`) and a real SMTP
//! server: a mail the server accepted before a kill -9 is sent again with the
//! same Message-ID; a mail cut off before its data is sent once; two app
//! servers share 20 exports and 200 deliveries, and when one dies mid-export
//! the other finishes it after the lease runs out. Run by `.ci/run` with
//! `--ignored`, like the upload crash test.
use std::collections::HashMap;
use std::time::Duration;

use app::auth::Role;
use portal::{complete_draft, spawn_app_at, SmtpServer, TestApp};
use sea_orm::{ConnectionTrait, Database, DatabaseBackend, EntityTrait, Statement, TransactionTrait};
use serde_json::json;

use super::crash::{start_with, Server};

fn postgres() -> String {
    std::env::var("TEST_DATABASE_URL").expect("TEST_DATABASE_URL names the PostgreSQL server (see .ci/run)")
}

/// The environment of a release-binary app server on the test app's
/// database, evidence store and secrets, sending through `smtp`.
fn server_env(app: &TestApp, smtp: &SmtpServer, data: &std::path::Path) -> Vec<(String, String)> {
    let secret = |name: &str| app.figment.extract_inner::<String>(name).expect("secret");
    vec![
        ("DATABASE_URL".into(), app.database_url.clone()),
        ("APP_DATA_DIR".into(), data.display().to_string()),
        ("APP_EVIDENCE_DIR".into(), app.data_dir.path().join("evidence").display().to_string()),
        ("APP_JWT_SECRET".into(), secret("jwt_secret")),
        ("APP_MASTER_KEY".into(), secret("master_key")),
        ("APP_BLIND_INDEX_KEY".into(), secret("blind_index_key")),
        ("APP_SMTP_URL".into(), smtp.url()),
        ("APP_PUBLIC_URL".into(), "https://portal.example.jp".into()),
        ("APP_WORKERS".into(), "2".into()),
        ("APP_JOB_LEASE_SECONDS".into(), "2".into()),
        ("APP_JOB_POLL_MS".into(), "50".into()),
        ("APP_JOB_RETRY_SECONDS".into(), "1".into()),
        ("ROCKET_LOG_LEVEL".into(), "off".into()),
        ("RUST_LOG".into(), "error".into()),
    ]
}

/// A test app on a fresh PostgreSQL database that runs no jobs itself,
/// with one submitted claim decided by a lawyer (one mail queued: the
/// claimant's address confirmation counts as delivered before).
async fn app_with_a_decision() -> (TestApp, String) {
    let app = spawn_app_at(Some(&postgres()), |f| {
        f.merge(("workers", 0)).merge(("exports_per_hour", 100)).merge(("exports_per_day", 100))
    })
    .await;
    let (lawyer, _) = app.staff_verified("lawyer@example.jp", Role::Lawyer).await;
    app.add_to_case("lawyer@example.jp").await;
    let (_, claim) =
        app.submitted_claim("hanako@example.jp", complete_draft("やまだ", "1980-05-05"), "山田 花子").await;
    mark_confirmations_delivered(&app).await;
    let r = lawyer.post(&format!("/review/claims/{claim}/decision"), json!({"decision": "verify"})).await;
    assert!(r.status.is_success(), "{:?}", r.body);
    (app, claim)
}

/// The address confirmations queued at registration, as if delivered long ago.
async fn mark_confirmations_delivered(app: &TestApp) {
    use sea_orm::sea_query::Expr;
    use sea_orm::{ColumnTrait, QueryFilter};
    let db = app.db().await;
    let rows = entities::outbox::Entity::find()
        .filter(entities::outbox::Column::Kind.eq("account.confirm_address"))
        .all(&db)
        .await
        .unwrap();
    for row in rows {
        entities::outbox::Entity::update_many()
            .col_expr(entities::outbox::Column::SentAt, Expr::value(Some(chrono::Utc::now())))
            .filter(entities::outbox::Column::Id.eq(row.id))
            .exec(&db)
            .await
            .unwrap();
        entities::job::Entity::update_many()
            .col_expr(entities::job::Column::Status, Expr::value(entities::job::Status::Done))
            .filter(entities::job::Column::Key.eq(format!("mail:{}", row.id)))
            .exec(&db)
            .await
            .unwrap();
    }
}

fn kill(server: &mut Server) {
    server.child.kill().expect("SIGKILL");
    let _ = server.child.wait();
}

async fn unsent(app: &TestApp) -> usize {
    use sea_orm::{ColumnTrait, QueryFilter};
    let db = app.db().await;
    entities::outbox::Entity::find().filter(entities::outbox::Column::SentAt.is_null()).all(&db).await.unwrap().len()
}

async fn until(what: &str, seconds: u64, mut done: impl AsyncFnMut() -> bool) {
    for _ in 0..seconds * 20 {
        if done().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

#[tokio::test]
#[ignore = "needs the release binary and PostgreSQL: run by .ci/run"]
async fn crash_after_the_server_accepted_a_mail_resends_it_once_with_the_same_message_id() {
    let smtp = SmtpServer::start();
    let (app, _) = app_with_a_decision().await;
    let data = tempfile::tempdir().unwrap();
    // Keep audit events from being written: the portal's record of the
    // sending (an audited write) waits, after the server has the message.
    let holder = Database::connect(&app.database_url).await.unwrap();
    let txn = holder.begin().await.unwrap();
    txn.execute_unprepared("LOCK TABLE audit_events IN SHARE MODE").await.unwrap();
    let mut server = start_with(server_env(&app, &smtp, data.path())).await;
    smtp.wait_for(1, 30).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    kill(&mut server);
    txn.rollback().await.unwrap();
    assert_eq!(unsent(&app).await, 1, "the portal never recorded the sending");

    let mut server = start_with(server_env(&app, &smtp, data.path())).await;
    until("the resend to be recorded", 30, async || unsent(&app).await == 0).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let got = smtp.messages();
    assert_eq!(got.len(), 2, "sent again once: {got:?}");
    assert_eq!(got[0].message_id, got[1].message_id, "recognisably the same message");
    assert_eq!(got[0].subject, got[1].subject);
    kill(&mut server);
}

#[tokio::test]
#[ignore = "needs the release binary and PostgreSQL: run by .ci/run"]
async fn crash_before_the_data_was_sent_sends_the_mail_once() {
    let smtp = SmtpServer::start();
    let (app, _) = app_with_a_decision().await;
    let data = tempfile::tempdir().unwrap();
    smtp.stall(true);
    let mut server = start_with(server_env(&app, &smtp, data.path())).await;
    until("the portal to reach RCPT", 30, async || smtp.stalling()).await;
    kill(&mut server);
    smtp.stall(false);
    assert!(smtp.messages().is_empty());

    let mut server = start_with(server_env(&app, &smtp, data.path())).await;
    until("the mail to be recorded as sent", 30, async || unsent(&app).await == 0).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(smtp.messages().len(), 1, "sent once");
    kill(&mut server);
}

#[tokio::test]
#[ignore = "needs the release binary and PostgreSQL: run by .ci/run"]
async fn crash_of_one_of_two_app_servers_mid_export_leaves_every_job_done_once_by_the_other() {
    use sea_orm::{ColumnTrait, QueryFilter};
    let smtp = SmtpServer::start();
    let (app, claim) = app_with_a_decision().await;
    let db = app.db().await;

    // A frozen round and 20 exports of it.
    let (admin, _) = app.staff_verified("admin2@example.jp", Role::Admin).await;
    let round = app.open_round(&admin).await;
    assert!(admin.post(&format!("/admin/rounds/{round}/freeze"), json!({})).await.status.is_success());
    let mut exports = Vec::new();
    for _ in 0..20 {
        let r = admin.post(&format!("/admin/rounds/{round}/exports"), json!({})).await;
        assert!(r.status.is_success(), "{:?}", r.body);
        exports.push(r.body["id"].as_str().unwrap().parse::<uuid::Uuid>().unwrap());
    }
    // 200 more mails to the claimant (201 with the decision's), besides the
    // alert mail each export sends the other administrators.
    let state = app.state().await;
    let claim_row =
        entities::claim::Entity::find_by_id(claim.parse::<uuid::Uuid>().unwrap()).one(&db).await.unwrap().unwrap();
    let txn = state.db.begin_write().await.unwrap();
    for _ in 0..200 {
        let mail = app::mail::Mail {
            kind: app::mail::MailKind::Verified,
            recipient: claim_row.claimant_id,
            claim: Some(claim_row.id),
            params: json!({"number": claim_row.number}),
            dedupe_key: None,
        };
        assert!(app::mail::queue(&txn, chrono::Utc::now(), mail).await.unwrap().is_some());
    }
    txn.commit().await.unwrap();

    // One export's row is held: whichever server takes its job stops there.
    let held = exports[7];
    let holder = Database::connect(&app.database_url).await.unwrap();
    let lock = holder.begin().await.unwrap();
    lock.execute_raw(Statement::from_sql_and_values(
        DatabaseBackend::Postgres,
        "SELECT id FROM exports WHERE id = $1 FOR UPDATE",
        [held.into()],
    ))
    .await
    .unwrap();
    let (a_data, b_data) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut servers = [
        start_with(server_env(&app, &smtp, a_data.path())).await,
        start_with(server_env(&app, &smtp, b_data.path())).await,
    ];
    let key = app::rounds::export::job_key(held);
    let mut owner = String::new();
    until("a server to take the held export", 60, async || {
        let job = app::jobs::by_key(&db, &key).await.unwrap().unwrap();
        owner = job.lease_owner.unwrap_or_default();
        job.status == entities::job::Status::Running && !owner.is_empty()
    })
    .await;
    let pid: u32 = owner.split('-').next().unwrap().parse().unwrap();
    let victim = servers.iter().position(|s| s.child.id() == pid).expect("the owner is one of the two servers");
    kill(&mut servers[victim]);
    lock.rollback().await.unwrap();

    until("every export and mail to be done", 120, async || {
        let done = entities::export::Entity::find()
            .filter(entities::export::Column::Status.eq(entities::export::Status::Done))
            .all(&db)
            .await
            .unwrap()
            .len();
        done == 20 && unsent(&app).await == 0
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let job = app::jobs::by_key(&db, &key).await.unwrap().unwrap();
    assert_eq!(
        (job.status, job.attempts),
        (entities::job::Status::Done, 2),
        "taken over once, after the lease ran out"
    );
    for export in &exports {
        let job = app::jobs::by_key(&db, &app::rounds::export::job_key(*export)).await.unwrap().unwrap();
        assert_eq!(job.status, entities::job::Status::Done);
    }
    let queued = entities::outbox::Entity::find()
        .filter(entities::outbox::Column::Kind.ne("account.confirm_address"))
        .all(&db)
        .await
        .unwrap()
        .len();
    let alerts = entities::outbox::Entity::find()
        .filter(entities::outbox::Column::Kind.eq("staff.alert_raised"))
        .all(&db)
        .await
        .unwrap()
        .len();
    assert_eq!(queued, 201 + alerts, "the decision, the 200, and the alert mails");
    assert!(alerts >= 20, "each export alerted the other administrators: {alerts}");
    let got = smtp.messages();
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for m in &got {
        *seen.entry(m.message_id.as_str()).or_default() += 1;
    }
    assert_eq!(seen.len(), queued, "every mail arrived");
    // At least once: only a delivery in flight on the killed server may repeat.
    assert!(got.len() <= queued + 1, "{} messages for {queued} mails", got.len());
    for server in servers.iter_mut() {
        let _ = server.child.kill();
        let _ = server.child.wait();
    }
}
