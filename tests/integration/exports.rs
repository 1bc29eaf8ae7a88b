//! The filing bundle: built in the background with progress, downloaded
//! only after the password is re-entered, every download audited, exports
//! capped per hour; the ZIP's manifest matches every file, the party list
//! opens as XLSX with the plaintiffs, and exhibits carry their numbers.
use std::io::Read;

use app::auth::Role;
use portal::{complete_draft, spawn_app_with, ApiClient, S3Server, TestApp};
use reqwest::StatusCode;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

async fn wait_done(admin: &ApiClient, export: &str) -> Value {
    for _ in 0..200 {
        let r = admin.get(&format!("/admin/exports/{export}")).await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
        match r.body["status"].as_str() {
            Some("done") => return r.body,
            Some("failed") => panic!("export failed: {:?}", r.body),
            _ => tokio::time::sleep(std::time::Duration::from_millis(100)).await,
        }
    }
    panic!("the export did not finish");
}

#[tokio::test]
async fn a_frozen_round_exports_a_verifiable_bundle_after_reauthentication() {
    let app = spawn_app_with(|f| f.merge(("exports_per_hour", 1))).await;
    bundle_round_trip(&app, || app.stored_objects()).await;
}

#[tokio::test]
async fn the_bundle_goes_to_the_s3_store_sealed() {
    let s3 = S3Server::start().await;
    let app = spawn_app_with(|f| s3.configure(f).merge(("exports_per_hour", 1))).await;
    bundle_round_trip(&app, || s3.object_files()).await;
}

async fn bundle_round_trip(app: &TestApp, stored_objects: impl Fn() -> Vec<std::path::PathBuf>) {
    let (lawyer, _) = app.staff_verified("lawyer@example.jp", Role::Lawyer).await;
    app.add_to_case("lawyer@example.jp").await;
    let claimant = app.claimant("hanako@example.jp").await;
    let claim =
        claimant.post("/claims", json!({"case": "benesse-2014"})).await.body["id"].as_str().unwrap().to_string();
    claimant.put(&format!("/claims/{claim}"), complete_draft("やまだ", "1980-05-05")).await;
    let letter = app::evidence::jpeg::fixtures::plain_jpeg(5_000);
    let up = claimant
        .upload(&format!("/claims/{claim}/evidence"), "apology_letter", letter.clone(), "letter.jpg", None)
        .await;
    assert_eq!(up.status, StatusCode::CREATED);
    claimant.sign_all(&claim).await;
    claimant.post(&format!("/claims/{claim}/submit"), json!({})).await;
    lawyer.post(&format!("/review/claims/{claim}/decision"), json!({"decision": "verify"})).await;

    let (mut admin, _) = app.staff_verified("admin2@example.jp", Role::Admin).await;
    admin.lang = "en";
    let round = app.open_round(&admin).await;
    // Not before the round is frozen.
    let early = admin.post(&format!("/admin/rounds/{round}/exports"), json!({})).await;
    assert_eq!(early.status, StatusCode::CONFLICT);
    assert_eq!(early.body["error"]["code"], "round_not_frozen");
    assert_eq!(admin.post(&format!("/admin/rounds/{round}/freeze"), json!({})).await.status, StatusCode::OK);

    let started = admin.post(&format!("/admin/rounds/{round}/exports"), json!({})).await;
    assert_eq!(started.status, StatusCode::ACCEPTED, "{:?}", started.body);
    let export = started.body["id"].as_str().unwrap().to_string();
    let done = wait_done(&admin, &export).await;
    assert_eq!(done["progress"], 100);
    assert_eq!(done["counts"]["plaintiffs"], 2);
    assert_eq!(done["counts"]["exhibits"], 1);

    // The download needs the password again, in this session.
    let refused = admin.fetch(&format!("/admin/exports/{export}/download")).await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    let wrong = admin.post("/auth/reauth", json!({"password": "not the password"})).await;
    assert_eq!(wrong.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(wrong.body["error"]["fields"]["password"].is_string());
    assert_eq!(
        admin.post("/auth/reauth", json!({"password": "staff password long enough"})).await.status,
        StatusCode::NO_CONTENT
    );
    let res = admin.fetch(&format!("/admin/exports/{export}/download")).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.headers()["content-disposition"].to_str().unwrap().starts_with("attachment;"));
    let bytes = res.bytes().await.unwrap().to_vec();
    assert_eq!(hex::encode(Sha256::digest(&bytes)), done["sha256"].as_str().unwrap());
    assert_eq!(bytes.len() as u64, done["size"].as_u64().unwrap());

    // The reconciler knows the bundle is no orphan.
    let state = app.state().await;
    let report = app::evidence::service::reconcile(&state, std::time::Duration::ZERO).await.unwrap();
    assert_eq!(report.orphans_removed, 0);

    // The bundle: every file's hash in the manifest matches.
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
    let mut manifest = String::new();
    zip.by_name("manifest.json").unwrap().read_to_string(&mut manifest).unwrap();
    let manifest: Value = serde_json::from_str(&manifest).unwrap();
    assert_eq!(manifest["counts"]["plaintiffs"], 2);
    assert_eq!(manifest["exported_by"], "admin2@example.jp");
    let files = manifest["files"].as_array().unwrap();
    assert_eq!(zip.len(), files.len() + 1);
    for f in files {
        let mut body = Vec::new();
        zip.by_name(f["name"].as_str().unwrap()).unwrap().read_to_end(&mut body).unwrap();
        assert_eq!(hex::encode(Sha256::digest(&body)), f["sha256"].as_str().unwrap(), "{}", f["name"]);
    }
    // The exhibit is the uploaded letter, renamed by its number.
    let mut exhibit = Vec::new();
    zip.by_name("evidence/甲第00001号証.jpg").unwrap().read_to_end(&mut exhibit).unwrap();
    assert_eq!(exhibit, letter);
    // The party list opens as XLSX with a row per plaintiff; the child has a guardian.
    let mut xlsx = Vec::new();
    zip.by_name("当事者目録.xlsx").unwrap().read_to_end(&mut xlsx).unwrap();
    let mut book = zip::ZipArchive::new(std::io::Cursor::new(xlsx)).unwrap();
    let mut strings = String::new();
    book.by_name("xl/sharedStrings.xml").unwrap().read_to_string(&mut strings).unwrap();
    for want in ["山田 花子", "山田 一郎", "親権者 山田 花子", "東京都千代田区"] {
        assert!(strings.contains(want), "{want} in the party list: {strings}");
    }
    let mut sheet = String::new();
    book.by_name("xl/worksheets/sheet1.xml").unwrap().read_to_string(&mut sheet).unwrap();
    assert_eq!(sheet.matches("<row ").count(), 3, "a header and two plaintiffs");
    let mut csv = String::new();
    zip.by_name("請求債権目録.csv").unwrap().read_to_string(&mut csv).unwrap();
    assert!(csv.starts_with('\u{feff}') && csv.contains("合計"), "{csv}");
    let mut index = String::new();
    zip.by_name("証拠説明書.csv").unwrap().read_to_string(&mut index).unwrap();
    assert!(index.contains("甲第1号証") && index.contains("おわびの手紙"), "{index}");
    assert!(zip.by_name("委任状/原告00001.json").is_ok());
    // The stored bundle is sealed: no object in the store holds the ZIP's bytes in clear.
    let objects: Vec<_> =
        stored_objects().into_iter().filter(|p| std::fs::metadata(p).is_ok_and(|m| m.len() > 1000)).collect();
    assert!(objects.len() >= 2, "the evidence file and the bundle are stored");
    for object in objects {
        let stored = std::fs::read(&object).unwrap();
        assert!(!stored.windows(4).any(|w| w == b"PK\x03\x04"), "a stored object is a plain ZIP");
    }

    // Exports are capped per hour, with an alert.
    let second = admin.post(&format!("/admin/rounds/{round}/exports"), json!({})).await;
    assert_eq!(second.status, StatusCode::TOO_MANY_REQUESTS, "{:?}", second.body);
    let alerts = admin.get("/admin/alerts").await.body;
    assert!(alerts.as_array().unwrap().iter().any(|a| a["kind"] == "cap.exports"), "{alerts:?}");

    let db = app.db().await;
    use sea_orm::EntityTrait;
    let actions: Vec<String> =
        entities::audit_event::Entity::find().all(&db).await.unwrap().into_iter().map(|e| e.action).collect();
    for a in ["export.requested", "export.completed", "auth.reauthenticated", "auth.reauth_failed", "export.downloaded"]
    {
        assert!(actions.iter().any(|x| x == a), "{a} is audited");
    }
    assert_eq!(actions.iter().filter(|a| *a == "export.downloaded").count(), 1);
}

/// A frozen round of one verified claim, and a second-factor admin.
async fn frozen_round(app: &TestApp) -> (ApiClient, String) {
    let (lawyer, _) = app.staff_verified("lawyer@example.jp", Role::Lawyer).await;
    app.add_to_case("lawyer@example.jp").await;
    let (_, claim) =
        app.submitted_claim("hanako@example.jp", complete_draft("やまだ", "1980-05-05"), "山田 花子").await;
    lawyer.post(&format!("/review/claims/{claim}/decision"), json!({"decision": "verify"})).await;
    let (admin, _) = app.staff_verified("admin2@example.jp", Role::Admin).await;
    let round = app.open_round(&admin).await;
    assert_eq!(admin.post(&format!("/admin/rounds/{round}/freeze"), json!({})).await.status, StatusCode::OK);
    (admin, round)
}

/// The server that queues an export wakes its idle runners: the bundle is
/// built at once, not at their next look for work (here an hour away).
#[tokio::test]
async fn an_export_starts_at_once_not_at_the_runners_next_poll() {
    let app = spawn_app_with(|f| f.merge(("job_poll_ms", 3_600_000)).merge(("exports_per_hour", 10))).await;
    let (admin, round) = frozen_round(&app).await;
    let started = admin.post(&format!("/admin/rounds/{round}/exports"), json!({})).await;
    assert_eq!(started.status, StatusCode::ACCEPTED, "{:?}", started.body);
    let done = wait_done(&admin, started.body["id"].as_str().unwrap()).await;
    assert_eq!(done["counts"]["plaintiffs"], 2, "{done:?}");
}

#[tokio::test]
async fn an_export_whose_server_died_is_taken_over_when_its_lease_runs_out() {
    use app::jobs::{self, Kind};
    // No runners in the served app: this test plays the servers itself.
    let app = spawn_app_with(|f| f.merge(("workers", 0)).merge(("exports_per_hour", 10))).await;
    let (admin, round) = frozen_round(&app).await;
    let started = admin.post(&format!("/admin/rounds/{round}/exports"), json!({})).await;
    assert_eq!(started.status, StatusCode::ACCEPTED, "{:?}", started.body);
    let export = started.body["id"].as_str().unwrap().to_string();
    let state = app.state().await;
    let lease = chrono::Duration::seconds(60);
    app.clock.set(chrono::Utc::now());

    // A server claims the export and dies without a word.
    let dead = jobs::claim_next(&state.db, "dead", &[Kind::Export], app.clock.now(), lease).await.unwrap();
    assert!(dead.is_some(), "the export's job is claimable");
    // While its lease lasts, nobody else may take it.
    assert!(jobs::claim_next(&state.db, "alive", &[Kind::Export], app.clock.now(), lease).await.unwrap().is_none());
    // Once it ran out, another server takes it over and finishes the bundle.
    app.clock.advance(chrono::Duration::seconds(61));
    let taken = jobs::claim_next(&state.db, "alive", &[Kind::Export], app.clock.now(), lease).await.unwrap();
    let taken = taken.expect("the expired job is taken over");
    assert_eq!(taken.job.attempts, 2);
    jobs::runner::run_one(&state, None, taken).await;
    let done = wait_done(&admin, &export).await;
    assert_eq!(done["counts"]["plaintiffs"], 2);
    let job = jobs::by_key(state.db.conn(), &app::rounds::export::job_key(export.parse().unwrap())).await.unwrap();
    assert_eq!(job.unwrap().status, entities::job::Status::Done);

    // An export whose every attempt died is marked failed, with words.
    let again = admin.post(&format!("/admin/rounds/{round}/exports"), json!({})).await;
    let second = again.body["id"].as_str().unwrap().to_string();
    for n in 0..Kind::Export.max_attempts() {
        let owner = format!("dead-{n}");
        assert!(jobs::claim_next(&state.db, &owner, &[Kind::Export], app.clock.now(), lease).await.unwrap().is_some());
        app.clock.advance(chrono::Duration::seconds(61));
    }
    let last = jobs::claim_next(&state.db, "alive", &[Kind::Export], app.clock.now(), lease).await.unwrap().unwrap();
    jobs::runner::run_one(&state, None, last).await;
    let failed = admin.get(&format!("/admin/exports/{second}")).await.body;
    assert_eq!(failed["status"], "failed", "{failed:?}");
    assert!(failed["error"].as_str().unwrap_or_default().contains("Start the export again"), "{failed:?}");
}

#[tokio::test]
async fn a_plaintiffs_erasure_destroys_every_bundle_that_holds_them() {
    use sea_orm::EntityTrait;
    let app = spawn_app_with(|f| f.merge(("exports_per_hour", 10))).await;
    let (admin, round) = frozen_round(&app).await;
    let started = admin.post(&format!("/admin/rounds/{round}/exports"), json!({})).await;
    let export = started.body["id"].as_str().unwrap().to_string();
    wait_done(&admin, &export).await;
    let objects_with_bundle = app.stored_objects().len();

    let hanako = app.login("hanako@example.jp", "correct horse battery staple").await;
    let erased = hanako.post("/me/erase", json!({"password": "correct horse battery staple"})).await;
    assert_eq!(erased.status, StatusCode::OK, "{:?}", erased.body);

    let after = admin.get(&format!("/admin/exports/{export}")).await.body;
    assert_eq!(after["status"], "erased", "{after:?}");
    assert_eq!(
        admin.post("/auth/reauth", json!({"password": "staff password long enough"})).await.status,
        StatusCode::NO_CONTENT
    );
    let refused = admin.get(&format!("/admin/exports/{export}/download")).await;
    assert_eq!(refused.status, StatusCode::CONFLICT);
    assert_eq!(refused.body["error"]["code"], "export_erased");
    assert_eq!(app.stored_objects().len(), objects_with_bundle - 1, "the bundle's object is deleted");
    let db = app.db().await;
    let row = entities::export::Entity::find_by_id(export.parse::<uuid::Uuid>().unwrap()).one(&db).await.unwrap();
    let row = row.unwrap();
    assert!(row.wrapped_key.is_none() && row.storage_key.is_none(), "its key is destroyed");
}

/// Building a bundle alerts the other administrators (by mail too); its
/// downloads are capped and appear in the access log of every claimant in it.
#[tokio::test]
async fn a_bundle_alerts_the_other_administrators_and_its_downloads_are_capped_and_shown_to_the_claimants() {
    let app = spawn_app_with(|f| f.merge(("bundle_downloads_per_hour", 1))).await;
    let (lawyer, _) = app.staff_verified("lawyer@example.jp", Role::Lawyer).await;
    app.add_to_case("lawyer@example.jp").await;
    let (claimant, claim) =
        app.submitted_claim("hanako@example.jp", complete_draft("やまだ", "1980-05-05"), "山田 花子").await;
    lawyer.post(&format!("/review/claims/{claim}/decision"), json!({"decision": "verify"})).await;
    let (admin, _) = app.staff_verified("admin2@example.jp", Role::Admin).await;
    let (other, _) = app.staff_verified("admin3@example.jp", Role::Admin).await;
    let round = app.open_round(&admin).await;
    assert_eq!(admin.post(&format!("/admin/rounds/{round}/freeze"), json!({})).await.status, StatusCode::OK);
    let started = admin.post(&format!("/admin/rounds/{round}/exports"), json!({})).await;
    assert_eq!(started.status, StatusCode::ACCEPTED, "{:?}", started.body);
    let export = started.body["id"].as_str().unwrap().to_string();
    wait_done(&admin, &export).await;

    // The other administrator sees the alert and may acknowledge it; the exporter may not.
    let alerts = other.get("/admin/alerts").await.body;
    let alert = alerts.as_array().unwrap().iter().find(|a| a["kind"] == "export.started").expect("an alert").clone();
    assert_eq!(alert["user_email"], "admin2@example.jp");
    let ack = format!("/admin/alerts/{}/acknowledge", alert["id"].as_str().unwrap());
    assert_ne!(admin.post(&ack, json!({})).await.status, StatusCode::NO_CONTENT, "not about oneself");
    assert_eq!(other.post(&ack, json!({})).await.status, StatusCode::NO_CONTENT);
    let db = app.db().await;
    let mailed: Vec<uuid::Uuid> = entities::outbox::Entity::find()
        .filter(entities::outbox::Column::Kind.eq("staff.alert_raised"))
        .all(&db)
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.recipient_id)
        .collect();
    let id_of = |api: &ApiClient| {
        let api = api.clone();
        async move { api.get("/me").await.body["id"].as_str().unwrap().parse::<uuid::Uuid>().unwrap() }
    };
    assert!(mailed.contains(&id_of(&other).await), "the other administrator is told by mail");
    assert!(!mailed.contains(&id_of(&admin).await), "not the one it is about");

    // One download an hour here; the claimant sees it in 「私のデータ」.
    admin.post("/auth/reauth", json!({"password": "staff password long enough"})).await;
    assert_eq!(admin.fetch(&format!("/admin/exports/{export}/download")).await.status(), StatusCode::OK);
    assert_eq!(admin.fetch(&format!("/admin/exports/{export}/download")).await.status(), StatusCode::TOO_MANY_REQUESTS);
    let log = claimant.get("/me/access-log").await.body;
    let downloads = log.as_array().unwrap().iter().filter(|e| e["action"] == "export.downloaded").count();
    assert_eq!(downloads, 1, "{log:?}");
    let page = app.browser_signed_in("hanako@example.jp", "correct horse battery staple").await.get("/me").await;
    assert!(page.html.contains("提訴資料一式のダウンロード"), "in words on the page");
}
