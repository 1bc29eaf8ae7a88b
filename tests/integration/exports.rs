//! The filing bundle: built in the background with progress, downloaded
//! only after the password is re-entered, every download audited, exports
//! capped per hour; the ZIP's manifest matches every file, the party list
//! opens as XLSX with the plaintiffs, and exhibits carry their numbers.
use std::io::Read;

use app::auth::Role;
use portal::{complete_draft, spawn_app_with, ApiClient, S3Server, TestApp};
use reqwest::StatusCode;
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
    let today = app::today();
    let round = admin
        .post(
            "/admin/cases/benesse-2014/rounds",
            json!({"name": "第1次提訴", "court": "東京地方裁判所", "cut_off": today.to_string(),
                   "filing_date": (today + chrono::Duration::days(10)).to_string()}),
        )
        .await
        .body["id"]
        .as_str()
        .unwrap()
        .to_string();
    let policy = serde_json::to_value(app::rounds::domain::benesse_default_policy()).unwrap();
    admin.put(&format!("/admin/rounds/{round}/policy"), policy).await;
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

#[tokio::test]
async fn an_export_cut_short_by_a_stop_is_marked_failed_at_start_up() {
    use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter};
    let app = portal::spawn_app().await;
    let db = app.db().await;
    let row = |status: &str| entities::export::Model {
        id: uuid::Uuid::new_v4(),
        round_id: uuid::Uuid::new_v4(),
        status: status.into(),
        progress: 40,
        storage_key: None,
        wrapped_key: None,
        sha256: None,
        size: None,
        counts: None,
        error: None,
        requested_by: uuid::Uuid::new_v4(),
        created_at: chrono::Utc::now(),
        finished_at: None,
    };
    let (running, queued, done) = (row("running"), row("queued"), row("done"));
    for r in [&running, &queued, &done] {
        entities::export::ActiveModel::from(r.clone()).insert(&db).await.unwrap();
    }

    // What the server does at start-up after a stop.
    let state = app.state().await;
    assert_eq!(app::rounds::export::fail_interrupted(&state).await.unwrap(), 2);
    for stuck in [&running, &queued] {
        let now = entities::export::Entity::find_by_id(stuck.id).one(&db).await.unwrap().unwrap();
        assert_eq!(now.status, "failed");
        assert!(now.error.as_deref().unwrap_or_default().contains("Start the export again"), "{:?}", now.error);
        assert!(now.finished_at.is_some());
        let audited = entities::audit_event::Entity::find()
            .filter(entities::audit_event::Column::Action.eq("export.failed"))
            .filter(entities::audit_event::Column::SubjectId.eq(stuck.id))
            .all(&db)
            .await
            .unwrap();
        assert_eq!(audited.len(), 1);
    }
    let untouched = entities::export::Entity::find_by_id(done.id).one(&db).await.unwrap().unwrap();
    assert_eq!((untouched.status, untouched.error, untouched.finished_at), (done.status, done.error, done.finished_at));
    assert_eq!(app::rounds::export::fail_interrupted(&state).await.unwrap(), 0, "nothing left to mark");
}
