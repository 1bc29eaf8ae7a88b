//! Reminders on a fixed clock: each is queued once at its time, and not
//! at all when its condition is gone (cured, submitted, signed, opted out).
//! The served app runs no job runners here; each test sweeps itself.
use app::auth::Role;
use chrono::Duration;
use portal::{complete_draft, spawn_app_with, ApiClient, TestApp};
use reqwest::StatusCode;
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter};
use serde_json::json;

/// Sessions last the longest allowed (14 days) and do not end when idle, so
/// that clients stay signed in while the clock moves on.
async fn quiet_app() -> TestApp {
    quiet_app_with(|f| f).await
}

async fn quiet_app_with(customise: impl FnOnce(rocket::figment::Figment) -> rocket::figment::Figment) -> TestApp {
    let app = spawn_app_with(|f| {
        customise(
            f.merge(("workers", 0))
                .merge(("session_hours", 336))
                .merge(("idle_minutes_staff", 20_160))
                .merge(("idle_minutes_claimant", 20_160)),
        )
    })
    .await;
    app.clock.set(chrono::Utc::now());
    app
}

/// Sweep once; how many reminders of `kind` it queued.
async fn sweep(app: &TestApp, kind: &str) -> usize {
    let state = app.state().await;
    app::reminders::sweep(&state).await.expect("sweep").queued.get(kind).copied().unwrap_or(0)
}

/// The reminders of `kind` queued so far, as (recipient, dedupe key).
async fn queued(db: &DatabaseConnection, kind: &str) -> Vec<(uuid::Uuid, String)> {
    entities::outbox::Entity::find()
        .filter(entities::outbox::Column::Kind.eq(kind))
        .all(db)
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.recipient_id, r.dedupe_key.unwrap_or_default()))
        .collect()
}

async fn submitted(app: &TestApp, email: &str) -> (ApiClient, String) {
    app.submitted_claim(email, complete_draft("やまだ", "1980-05-05"), "山田 花子").await
}

async fn lawyer(app: &TestApp) -> ApiClient {
    let (lawyer, _) = app.staff_verified("lawyer@example.jp", Role::Lawyer).await;
    app.add_to_case("lawyer@example.jp").await;
    lawyer
}

async fn request_info(lawyer: &ApiClient, claim: &str, cure_days: u32) {
    let r = lawyer
        .post(
            &format!("/review/claims/{claim}/decision"),
            json!({"decision": "request_info", "reason": "写真が読めません", "cure_days": cure_days}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
}

#[tokio::test]
async fn a_cure_deadline_is_reminded_seven_and_two_days_before_and_not_once_answered() {
    let app = quiet_app().await;
    let db = app.db().await;
    let lawyer = lawyer(&app).await;
    let (_, waiting) = submitted(&app, "hanako@example.jp").await;
    let (answering, answered) = submitted(&app, "taro@example.jp").await;
    request_info(&lawyer, &waiting, 14).await;
    request_info(&lawyer, &answered, 14).await;

    assert_eq!(sweep(&app, "reminder.cure").await, 0, "14 days left: nothing yet");
    app.clock.advance(Duration::days(6));
    assert_eq!(sweep(&app, "reminder.cure").await, 0, "8 days left");
    // One claimant answers before the first reminder.
    let r = answering.post(&format!("/claims/{answered}/submit"), json!({})).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);

    app.clock.advance(Duration::days(1));
    assert_eq!(sweep(&app, "reminder.cure").await, 1, "7 days left: one reminder, to the one who has not answered");
    assert_eq!(sweep(&app, "reminder.cure").await, 0, "a reminder is queued once");
    app.clock.advance(Duration::days(4));
    assert_eq!(sweep(&app, "reminder.cure").await, 0, "3 days left");
    app.clock.advance(Duration::days(1));
    assert_eq!(sweep(&app, "reminder.cure").await, 1, "2 days left");
    app.clock.advance(Duration::days(3));
    assert_eq!(sweep(&app, "reminder.cure").await, 0, "past the deadline");
    let cure = queued(&db, "reminder.cure").await;
    assert_eq!(cure.len(), 2);
    let claim = entities::claim::Entity::find_by_id(waiting.parse::<uuid::Uuid>().unwrap()).one(&db).await;
    assert!(cure.iter().all(|(to, _)| *to == claim.as_ref().unwrap().as_ref().unwrap().claimant_id));
    // Each is audited, and listed on the claimant's status page.
    let audited = entities::audit_event::Entity::find()
        .filter(entities::audit_event::Column::Action.eq("reminder.queued"))
        .all(&db)
        .await
        .unwrap();
    assert_eq!(audited.iter().filter(|e| e.detail.contains("reminder.cure")).count(), 2);
    let browser = app.browser_signed_in("hanako@example.jp", "correct horse battery staple").await;
    let page = browser.get(&format!("/claims/{waiting}")).await;
    let rows = page.texts("section[aria-labelledby=mail] tbody tr");
    assert_eq!(rows.iter().filter(|r| r.contains("リマインダー: 追加資料の期限")).count(), 2, "{rows:?}");
}

#[tokio::test]
async fn a_short_cure_deadline_is_not_repeated_the_day_the_notice_gives_it() {
    let app = quiet_app().await;
    let lawyer = lawyer(&app).await;
    let (_, claim) = submitted(&app, "hanako@example.jp").await;
    request_info(&lawyer, &claim, 7).await;
    assert_eq!(sweep(&app, "reminder.cure").await, 0, "7 days left, but the notice itself says so");
    app.clock.advance(Duration::days(1));
    assert_eq!(sweep(&app, "reminder.cure").await, 0, "6 days left: the 7-day step passed with the notice");
    app.clock.advance(Duration::days(4));
    assert_eq!(sweep(&app, "reminder.cure").await, 1, "2 days left");
}

/// Open a round of the case with its cut-off `days` from the clock's today.
async fn open_round(app: &TestApp, days: i64) {
    let (admin, _) = app.staff_verified("admin2@example.jp", Role::Admin).await;
    let today = app.clock.today();
    let r = admin
        .post(
            "/admin/cases/benesse-2014/rounds",
            json!({"name": "第2次提訴", "court": "東京地方裁判所", "cut_off": (today + Duration::days(days)).to_string(),
                   "filing_date": (today + Duration::days(days + 30)).to_string()}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
}

#[tokio::test]
async fn an_unsubmitted_draft_is_reminded_before_the_cut_off_and_a_submitted_one_is_not() {
    let app = quiet_app().await;
    let db = app.db().await;
    submitted(&app, "done@example.jp").await;
    let drafting = app.claimant("drafting@example.jp").await;
    let draft =
        drafting.post("/claims", json!({"case": "benesse-2014"})).await.body["id"].as_str().unwrap().to_string();
    let later = app.claimant("later@example.jp").await;
    let late = later.post("/claims", json!({"case": "benesse-2014"})).await.body["id"].as_str().unwrap().to_string();
    assert_eq!(sweep(&app, "reminder.draft").await, 0, "no round is open");
    open_round(&app, 20).await;
    assert_eq!(sweep(&app, "reminder.draft").await, 0, "20 days before the cut-off");
    app.clock.advance(Duration::days(6));
    assert_eq!(sweep(&app, "reminder.draft").await, 2, "14 days before: both drafts");
    assert_eq!(sweep(&app, "reminder.draft").await, 0);
    // One finishes and submits.
    later.put(&format!("/claims/{late}"), complete_draft("やまだ", "1980-05-05")).await;
    later.sign_as(&late, "山田 花子").await;
    assert_eq!(later.post(&format!("/claims/{late}/submit"), json!({})).await.status, StatusCode::OK);
    app.clock.advance(Duration::days(11));
    assert_eq!(sweep(&app, "reminder.draft").await, 1, "3 days before: only the draft still open");
    let drafts = queued(&db, "reminder.draft").await;
    assert_eq!(drafts.len(), 3);
    assert!(drafts.iter().filter(|(_, key)| key.contains(&draft)).count() == 2);
}

#[tokio::test]
async fn a_new_version_of_a_signed_document_is_announced_once_even_to_those_who_turned_reminders_off() {
    let app = quiet_app().await;
    let db = app.db().await;
    let (quiet, _) = submitted(&app, "quiet@example.jp").await;
    let r = quiet.put("/me/preferences", json!({"language": "ja", "reminders": false})).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let (prompt, prompt_claim) = submitted(&app, "prompt@example.jp").await;
    assert_eq!(sweep(&app, "reminder.consent").await, 0);
    let (admin, _) = app.staff_verified("admin@example.jp", Role::Admin).await;
    let published = admin
        .post(
            "/admin/cases/benesse-2014/documents",
            json!({"kind": "retainer", "title": "訴訟委任状（第2版）", "body": "第1条 改訂した委任事項。"}),
        )
        .await;
    assert_eq!(published.status, StatusCode::CREATED, "{:?}", published.body);
    // One signs the new version before the sweep.
    prompt.sign_as(&prompt_claim, "山田 花子").await;
    assert_eq!(sweep(&app, "reminder.consent").await, 1, "only the claim still waiting for a signature");
    assert_eq!(sweep(&app, "reminder.consent").await, 0);
    let consent = queued(&db, "reminder.consent").await;
    assert_eq!(consent.len(), 1);
    let quiet_user = entities::user::Entity::find().filter(entities::user::Column::Reminders.eq(false)).one(&db).await;
    assert_eq!(consent[0].0, quiet_user.unwrap().unwrap().id, "always sent: a change to a signed document");
}

#[tokio::test]
async fn the_limitation_period_is_reminded_90_days_before_unless_reminders_are_off() {
    use sea_orm::sea_query::Expr;
    let app = quiet_app().await;
    let db = app.db().await;
    let (_, near) = submitted(&app, "near@example.jp").await;
    let (_, far) = submitted(&app, "far@example.jp").await;
    let (quiet, off) = submitted(&app, "quiet@example.jp").await;
    let r = quiet.put("/me/preferences", json!({"language": "en", "reminders": false})).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let today = app.clock.today();
    // Learned of the leak so that the period ends in 60, 120 and 60 days.
    let learned = |days_left: i64| today - chrono::Months::new(36) + Duration::days(days_left);
    for (claim, left) in [(&near, 60), (&far, 120), (&off, 60)] {
        entities::claim::Entity::update_many()
            .col_expr(entities::claim::Column::LearnedOfLeakOn, Expr::value(learned(left)))
            .filter(entities::claim::Column::Id.eq(claim.parse::<uuid::Uuid>().unwrap()))
            .exec(&db)
            .await
            .unwrap();
    }
    let first = sweep(&app, "reminder.limitation").await;
    let limitation = queued(&db, "reminder.limitation").await;
    assert_eq!(first, 1, "only the one within 90 days who wants reminders: {limitation:?}");
    assert_eq!(sweep(&app, "reminder.limitation").await, 0);
    assert!(limitation[0].1.contains(&near), "{limitation:?}");
    app.clock.advance(Duration::days(31));
    assert_eq!(sweep(&app, "reminder.limitation").await, 1, "the other now within 90 days");
    // A new session: the clock moved past the old one's end.
    let quiet = app.login("quiet@example.jp", "correct horse battery staple").await;
    let prefs = quiet.get("/me/preferences").await;
    assert_eq!(prefs.body, json!({"language": "en", "reminders": false}), "{:?}", prefs.status);
}

#[tokio::test]
async fn staff_hear_daily_of_claims_overdue_in_review_and_of_alerts_left_open() {
    use sea_orm::ActiveModelTrait;
    let app = quiet_app_with(|f| f.merge(("review_overdue_days", 5))).await;
    let db = app.db().await;
    let lawyer = lawyer(&app).await;
    let (admin, _) = app.staff_verified("admin2@example.jp", Role::Admin).await;
    let (_, waiting) = submitted(&app, "hanako@example.jp").await;
    let (_, decided) = submitted(&app, "taro@example.jp").await;
    let alert = entities::alert::Model {
        id: uuid::Uuid::new_v4(),
        kind: "claim_views".into(),
        user_id: None,
        detail: "{}".into(),
        created_at: app.clock.now(),
        acknowledged_at: None,
        acknowledged_by: None,
    };
    entities::alert::ActiveModel::from(alert.clone()).insert(&db).await.unwrap();
    assert_eq!(sweep(&app, "staff.review_overdue").await, 0, "nothing overdue yet");
    app.clock.advance(Duration::days(2));
    lawyer.post(&format!("/review/claims/{decided}/decision"), json!({"decision": "verify"})).await;
    app.clock.advance(Duration::days(3) + Duration::hours(1));
    let admins = entities::user::Entity::find().filter(entities::user::Column::Role.eq("admin")).all(&db).await;
    let admins = admins.unwrap().len();
    let state = app.state().await;
    let report = app::reminders::sweep(&state).await.unwrap();
    assert_eq!(report.queued.get("staff.review_overdue"), Some(&1), "the lawyer of the case: {report:?}");
    assert_eq!(report.queued.get("staff.alerts_open"), Some(&admins), "each administrator: {report:?}");
    assert_eq!(app::reminders::sweep(&state).await.unwrap().total(), 0, "once a day");
    let overdue = queued(&db, "staff.review_overdue").await;
    assert_eq!(overdue.len(), 1);
    let params = entities::outbox::Entity::find()
        .filter(entities::outbox::Column::Kind.eq("staff.review_overdue"))
        .one(&db)
        .await
        .unwrap()
        .unwrap()
        .params
        .unwrap();
    assert!(params.contains("\"count\":1"), "only the undecided claim: {params}");
    app.clock.advance(Duration::days(1));
    assert_eq!(app::reminders::sweep(&state).await.unwrap().total(), 1 + admins, "the next day, again");
    // Acknowledged, and decided: the day after brings nothing.
    let r = admin.post(&format!("/admin/alerts/{}/acknowledge", alert.id), json!({})).await;
    assert!(r.status.is_success(), "{:?}", r.body);
    let r = lawyer.post(&format!("/review/claims/{waiting}/decision"), json!({"decision": "verify"})).await;
    assert!(r.status.is_success(), "{:?}", r.body);
    app.clock.advance(Duration::days(1));
    assert_eq!(app::reminders::sweep(&state).await.unwrap().total(), 0);
}
