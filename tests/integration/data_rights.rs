//! The claimant's rights over their own data: withdrawal, correction,
//! export of everything held, and erasure by crypto-shredding.
use std::io::Read;

use portal::{complete_draft, spawn_app, ApiClient, TestApp};
use reqwest::StatusCode;
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// Values that identify one claimant, all distinctive enough to search for.
struct Canary {
    email: &'static str,
    values: [&'static str; 9],
}

const A: Canary = Canary {
    email: "kanaria.a@example.jp",
    values: [
        "金糸雀",
        "瑠璃子",
        "カナリア",
        "ルリコ",
        "金糸雀町7-7-7",
        "09087654321",
        "ZQ9XK7CANARY",
        "カナリア商事",
        "夜に勧誘電話",
    ],
};
const B: Canary = Canary {
    email: "uguisu.b@example.jp",
    values: [
        "鶯谷",
        "翡翠",
        "ウグイスダニ",
        "ヒスイ",
        "鶯町3-3-3",
        "08033334444",
        "WB3UGUISU77",
        "ウグイス物産",
        "朝に迷惑メール",
    ],
};

fn draft_of(c: &Canary) -> Value {
    let v = &c.values;
    json!({
        "persons": [
            {"relation": "self", "family_name": v[0], "given_name": v[1], "family_name_kana": v[2],
             "given_name_kana": v[3], "birth_date": "1977-07-07", "gender": "female"},
            {"relation": "child", "family_name": v[0], "given_name": "一郎", "family_name_kana": v[2],
             "given_name_kana": "イチロウ", "birth_date": "2012-02-02", "gender": "male"}
        ],
        "address": {"postal_code": "987-6543", "prefecture": "北海道", "city": "札幌市", "line1": v[4], "line2": ""},
        "phone": v[5],
        "email": c.email,
        "leaked_items": ["name", "address", "expected_delivery_date"],
        "services": ["tamahiyo"],
        "apology_letter_received": true,
        "registration_code": v[6],
        "apology_option": "emoney_500",
        "learned_of_leak_on": "2014-07-20",
        "harms": [{"kind": "call", "date": "2014-09-09", "sender": v[7], "note": v[8]}]
    })
}

fn jpeg(len: usize) -> Vec<u8> {
    app::evidence::jpeg::fixtures::plain_jpeg(len)
}

/// A claimant with a signed, submitted claim and one evidence file.
async fn submitted_claimant(app: &TestApp, c: &Canary, file_len: usize) -> (ApiClient, String, Vec<u8>) {
    let api = app.claimant(c.email).await;
    let id = api.post("/claims", json!({"case": "benesse-2014"})).await.body["id"].as_str().unwrap().to_string();
    let r = api.put(&format!("/claims/{id}"), draft_of(c)).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let bytes = jpeg(file_len);
    let r = api.upload(&format!("/claims/{id}/evidence"), "call_log", bytes.clone(), "log.jpg", None).await;
    assert_eq!(r.status, StatusCode::CREATED);
    api.sign_as(&id, &format!("{} {}", c.values[0], c.values[1])).await;
    assert_eq!(api.post(&format!("/claims/{id}/submit"), json!({})).await.status, StatusCode::OK);
    (api, id, bytes)
}

#[tokio::test]
async fn withdrawal_is_audited_final_tells_the_lawyers_and_keeps_the_consent_history() {
    let app = spawn_app().await;
    let (api, id, _) = submitted_claimant(&app, &A, 5_000).await;
    let r = api.post(&format!("/claims/{id}/withdraw"), json!({})).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["status"], "withdrawn");

    let claim = api.get(&format!("/claims/{id}")).await.body;
    assert_eq!(claim["round_exclusions"], json!(["withdrawn"]));
    // Final: nothing can change it any more.
    assert_eq!(api.post(&format!("/claims/{id}/withdraw"), json!({})).await.status, StatusCode::CONFLICT);
    assert_eq!(api.post(&format!("/claims/{id}/submit"), json!({})).await.status, StatusCode::CONFLICT);
    let doc = api.get("/cases/benesse-2014/documents").await.body[0]["id"].clone();
    let r =
        api.post(&format!("/claims/{id}/consents"), json!({"document_id": doc, "signer_name": "金糸雀 瑠璃子"})).await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    let r = api.put(&format!("/claims/{id}/identity"), draft_of(&A)).await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    // The signatures stay on record.
    let consents = api.get(&format!("/claims/{id}/consents")).await.body;
    assert_eq!(consents["signatures"].as_array().unwrap().len(), 6);

    let db = app.db().await;
    let claim_id = uuid::Uuid::parse_str(&id).unwrap();
    let audited = entities::audit_event::Entity::find()
        .filter(entities::audit_event::Column::Action.eq("claim.withdrawn"))
        .filter(entities::audit_event::Column::SubjectId.eq(claim_id))
        .count(&db)
        .await
        .unwrap();
    assert_eq!(audited, 1);
    let notes = entities::notification::Entity::find().all(&db).await.unwrap();
    assert_eq!(notes.len(), 1);
    assert_eq!((notes[0].audience.as_str(), notes[0].kind.as_str()), ("lawyers", "claim.withdrawn"));
    assert_eq!(notes[0].claim_id, Some(claim_id));
}

#[tokio::test]
async fn identity_can_be_corrected_after_submission_and_is_flagged_for_reverification() {
    let app = spawn_app().await;
    let (api, id, _) = submitted_claimant(&app, &A, 5_000).await;
    let mut corrected = draft_of(&A);
    corrected["phone"] = json!("0312345678");
    corrected["persons"][0]["family_name"] = json!("金絲雀");
    let r = api.put(&format!("/claims/{id}/identity"), corrected.clone()).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["status"], "submitted");
    assert_eq!(r.body["needs_reverification"], true);
    assert_eq!(r.body["phone"], "0312345678");
    // Only identity and contact change this way; the rest of the claim is as submitted.
    assert_eq!(r.body["registration_code"], A.values[6]);
    assert_eq!(r.body["harms"][0]["sender"], A.values[7]);
    // A bad correction is refused field by field and changes nothing.
    let mut bad = corrected.clone();
    bad["persons"][0]["birth_date"] = json!("2099-01-01");
    let r = api.put(&format!("/claims/{id}/identity"), bad).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body["error"]["fields"]["persons[0].birth_date"].is_string());
    assert_eq!(api.get(&format!("/claims/{id}")).await.body["persons"][0]["family_name"], "金絲雀");
    // The rest of the draft cannot be replaced after submission.
    assert_eq!(
        api.put(&format!("/claims/{id}"), complete_draft("やまだ", "1980-05-05")).await.status,
        StatusCode::CONFLICT
    );

    let db = app.db().await;
    let corrected_events = entities::audit_event::Entity::find()
        .filter(entities::audit_event::Column::Action.eq("claim.corrected"))
        .count(&db)
        .await
        .unwrap();
    assert_eq!(corrected_events, 1);
}

fn unzip(bytes: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes)).expect("a ZIP");
    (0..archive.len())
        .map(|i| {
            let mut f = archive.by_index(i).unwrap();
            let mut data = Vec::new();
            f.read_to_end(&mut data).unwrap();
            (f.name().unwrap().to_string(), data)
        })
        .collect()
}

#[tokio::test]
async fn the_export_holds_every_field_and_file_of_the_claimant_and_nothing_of_anyone_else() {
    let app = spawn_app().await;
    let (a, a_claim, a_file) = submitted_claimant(&app, &A, 150_000).await;
    let (_, _, b_file) = submitted_claimant(&app, &B, 7_000).await;

    let export = a.get("/me/export").await;
    assert_eq!(export.status, StatusCode::OK);
    let text = export.body.to_string();
    for v in A.values.iter().chain([A.email].iter()) {
        assert!(text.contains(v), "the export misses {v}");
    }
    for v in B.values.iter().chain([B.email].iter()) {
        assert!(!text.contains(v), "the export leaks {v} of another claimant");
    }
    assert_eq!(export.body["account"]["email"], A.email);
    let claim = &export.body["claims"][0];
    assert_eq!(claim["id"], a_claim);
    assert_eq!(claim["leaked_items"], json!(["name", "address", "expected_delivery_date"]));
    assert_eq!(claim["apology_option"], "emoney_500");
    assert_eq!(claim["learned_of_leak_on"], "2014-07-20");
    assert_eq!(claim["persons"].as_array().unwrap().len(), 2);
    assert_eq!(claim["signatures"].as_array().unwrap().len(), 6);
    assert_eq!(claim["evidence"][0]["sha256"], hex::encode(Sha256::digest(&a_file)));
    let activity: Vec<&str> =
        export.body["activity"].as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert!(activity.contains(&"claim.submitted") && activity.contains(&"consent.signed"), "{activity:?}");

    // The ZIP: export.json plus every file, decrypted, at the path the JSON names.
    let res = a.fetch("/me/export.zip").await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["content-type"], "application/zip");
    assert!(res.headers()["content-disposition"].to_str().unwrap().starts_with("attachment; filename=\"my-data-"));
    let entries = unzip(&res.bytes().await.unwrap());
    let names: Vec<&str> = entries.iter().map(|(n, _)| n.as_str()).collect();
    let file_path = claim["evidence"][0]["file"].as_str().unwrap();
    assert_eq!(names, ["export.json", file_path]);
    assert_eq!(Sha256::digest(&entries[1].1), Sha256::digest(&a_file));
    assert_ne!(Sha256::digest(&entries[1].1), Sha256::digest(&b_file));
    let inner: Value = serde_json::from_slice(&entries[0].1).unwrap();
    assert_eq!(inner["account"]["email"], A.email);
    assert!(!String::from_utf8_lossy(&entries[0].1).contains(B.values[0]));
    // Staff have no "my data" of a claimant.
    let lawyer = app.staff("lawyer@example.jp", app::auth::Role::Lawyer).await;
    assert_eq!(lawyer.get("/me/export").await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn erasure_shreds_the_keys_deletes_the_files_closes_the_account_and_leaves_no_canary() {
    let app = spawn_app().await;
    let (mut a, a_claim, _) = submitted_claimant(&app, &A, 120_000).await;
    let (b, b_claim, b_file) = submitted_claimant(&app, &B, 9_000).await;
    assert_eq!(app.stored_objects().len(), 2);

    // The claim's wrapped key as stored before the erasure.
    let before = entities::claim::Entity::find_by_id(uuid::Uuid::parse_str(&a_claim).unwrap())
        .one(&app.db().await)
        .await
        .unwrap()
        .unwrap();
    let old_wrapped_key = before.wrapped_key.clone().expect("a claim has a wrapped key");

    // The password must be re-entered; a wrong one changes nothing.
    a.lang = "en";
    let r = a.post("/me/erase", json!({"password": "not my password"})).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.body["error"]["fields"]["password"], "The password is not correct.");
    assert_eq!(a.get(&format!("/claims/{a_claim}")).await.body["persons"][0]["family_name"], A.values[0]);

    let r = a.post("/me/erase", json!({"password": "correct horse battery staple"})).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["claims"], 1);
    assert_eq!(r.body["evidence_objects"], 1);

    // The session is gone and the account cannot sign in again.
    assert_eq!(a.get("/me").await.status, StatusCode::UNAUTHORIZED);
    let login =
        app.api().post("/auth/login", json!({"email": A.email, "password": "correct horse battery staple"})).await;
    assert_eq!(login.status, StatusCode::UNAUTHORIZED);

    // The claim's key is destroyed: nothing that was sealed with it can be opened.
    let db = app.db().await;
    let claim_id = uuid::Uuid::parse_str(&a_claim).unwrap();
    let row = entities::claim::Entity::find_by_id(claim_id).one(&db).await.unwrap().unwrap();
    assert_eq!(row.status, "erased");
    assert!(row.wrapped_key.is_none() && row.sealed.is_none() && row.registration_code_index.is_none());
    assert!(row.erased_at.is_some());
    for (table, count) in [
        (
            "persons",
            entities::person::Entity::find()
                .filter(entities::person::Column::ClaimId.eq(claim_id))
                .count(&db)
                .await
                .unwrap(),
        ),
        (
            "harms",
            entities::harm::Entity::find()
                .filter(entities::harm::Column::ClaimId.eq(claim_id))
                .count(&db)
                .await
                .unwrap(),
        ),
        (
            "consents",
            entities::consent::Entity::find()
                .filter(entities::consent::Column::ClaimId.eq(claim_id))
                .count(&db)
                .await
                .unwrap(),
        ),
        (
            "evidence",
            entities::evidence::Entity::find()
                .filter(entities::evidence::Column::ClaimId.eq(claim_id))
                .count(&db)
                .await
                .unwrap(),
        ),
    ] {
        assert_eq!(count, 0, "{table} rows of the erased claim remain");
    }
    // Its file is gone from the store; the other claimant's is not.
    assert_eq!(app.stored_objects().len(), 1);
    assert_eq!(
        Sha256::digest(
            b.download(b.get(&format!("/claims/{b_claim}/evidence")).await.body[0]["id"].as_str().unwrap()).await
        ),
        Sha256::digest(&b_file)
    );

    // No canary of the erased claimant anywhere at rest: database and store.
    let mut at_rest = app.bytes_at_rest();
    for f in app.stored_objects() {
        at_rest.extend(std::fs::read(f).unwrap());
    }
    let found = portal::find_in(&at_rest, &A.values);
    assert!(found.is_empty(), "erased data still at rest: {found:?}");
    // Nor the destroyed key: SQLite zeroes freed pages and its log is emptied.
    let key_at_rest = at_rest.windows(old_wrapped_key.len()).any(|w| w == old_wrapped_key.as_slice());
    assert!(!key_at_rest, "the destroyed wrapped key is still in the database files");
    assert!(portal::find_in(&at_rest, &[A.email]).is_empty());

    // The audit trail still verifies, and records the erasure without personal data.
    let (admin, _) = app.staff_verified("admin@example.jp", app::auth::Role::Admin).await;
    let verify = admin.get("/admin/audit/verify").await;
    assert_eq!(verify.body["ok"], true, "{:?}", verify.body);
    let erased = entities::audit_event::Entity::find()
        .filter(entities::audit_event::Column::Action.eq("me.erased"))
        .one(&db)
        .await
        .unwrap()
        .expect("the erasure is audited");
    assert_eq!(erased.detail, r#"{"bundles_destroyed":0,"claims":1,"evidence_objects":1}"#);
    // The other claimant is untouched.
    assert_eq!(b.get(&format!("/claims/{b_claim}")).await.body["persons"][0]["family_name"], B.values[0]);
}

#[tokio::test]
async fn the_my_data_page_offers_export_access_log_and_erasure() {
    let app = spawn_app().await;
    let (_, _, _) = submitted_claimant(&app, &A, 3_000).await;
    let browser = app.browser_signed_in(A.email, "correct horse battery staple").await;
    let page = browser.get("/me").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.html.contains("href=\"/me/export.zip\""));
    let zip = browser.http.get(format!("{}/me/export.zip", browser.base)).send().await.unwrap();
    assert_eq!(zip.status(), StatusCode::OK);
    assert_eq!(unzip(&zip.bytes().await.unwrap()).len(), 2);

    // Erasure needs the box ticked and the password.
    let refused = browser.submit(&page, "/me/erase", &[("password", "correct horse battery staple")]).await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    let refused = browser.submit(&page, "/me/erase", &[("password", "wrong"), ("confirm", "true")]).await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(refused.html.contains("パスワードが正しくありません"));
    let done =
        browser.submit(&page, "/me/erase", &[("password", "correct horse battery staple"), ("confirm", "true")]).await;
    assert_eq!(done.status, StatusCode::OK);
    assert!(done.html.contains("データを消去しました"));
    assert!(browser.get("/me").await.url.ends_with("/login"), "signed out");
}

#[tokio::test]
async fn a_correction_through_the_pages_flags_the_claim_for_reverification() {
    let app = spawn_app().await;
    let (_, id, _) = submitted_claimant(&app, &A, 3_000).await;
    let browser = app.browser_signed_in(A.email, "correct horse battery staple").await;
    let status = browser.get(&format!("/claims/{id}")).await;
    assert!(status.html.contains(&format!("href=\"/claims/{id}/identity\"")), "the status page offers a correction");
    assert!(!status.html.contains("改めて確認します"));
    let identity = browser.get(&format!("/claims/{id}/identity")).await;
    assert_eq!(identity.input_value("family_name").as_deref(), Some(A.values[0]), "the saved name is shown");
    let fields = [
        ("family_name", "金糸雀"),
        ("given_name", "瑠璃"),
        ("family_name_kana", "カナリア"),
        ("given_name_kana", "ルリコ"),
        ("birth_date", "1977-07-07"),
        ("gender", "female"),
    ];
    let next = browser.submit(&identity, &format!("/claims/{id}/identity"), &fields).await;
    assert!(next.url.ends_with("/contact"), "{}", next.url);
    let status = browser.get(&format!("/claims/{id}")).await;
    assert!(status.html.contains("改めて確認します"), "the claimant sees that the lawyers will check again");
    assert!(status.html.contains("提出済み"), "still submitted");
}
