use portal::{complete_draft, spawn_app, spawn_app_with, ApiClient, TestApp};
use reqwest::StatusCode;
use sea_orm::EntityTrait;
use serde_json::json;
use sha2::{Digest, Sha256};

/// A well-formed JPEG with `len` bytes of image data (spanning several
/// 64 KiB encryption chunks for large `len`).
fn jpeg(len: usize) -> Vec<u8> {
    app::evidence::jpeg::fixtures::plain_jpeg(len)
}

async fn claimant_with_draft(app: &TestApp, email: &str) -> (ApiClient, String) {
    let api = app.claimant(email).await;
    let id = api.post("/claims", json!({"case": "benesse-2014"})).await.body["id"].as_str().unwrap().to_string();
    (api, id)
}

#[tokio::test]
async fn an_upload_round_trips_with_a_matching_sha256_and_is_encrypted_at_rest() {
    let app = spawn_app().await;
    let (api, claim) = claimant_with_draft(&app, "hanako@example.jp").await;
    let bytes = jpeg(200_000);
    let r = api.upload(&format!("/claims/{claim}/evidence"), "apology_letter", bytes.clone(), "letter.jpg", None).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    assert_eq!(r.body["content_type"], "image/jpeg");
    assert_eq!(r.body["size"], bytes.len());
    assert_eq!(r.body["sha256"], hex::encode(Sha256::digest(&bytes)));
    let id = r.body["id"].as_str().unwrap().to_string();

    let listed = api.get(&format!("/claims/{claim}/evidence")).await;
    assert_eq!(listed.body.as_array().unwrap().len(), 1);

    let res = api.fetch(&format!("/evidence/{id}/content")).await;
    assert_eq!(res.status(), StatusCode::OK);
    let disposition = res.headers()["content-disposition"].to_str().unwrap().to_string();
    assert!(disposition.starts_with("attachment; filename=\"BN-000001-apology_letter-"), "{disposition}");
    assert_eq!(res.headers()["x-content-type-options"], "nosniff");
    assert_eq!(res.headers()["content-type"], "image/jpeg");
    let back = res.bytes().await.unwrap();
    assert_eq!(hex::encode(Sha256::digest(&back)), hex::encode(Sha256::digest(&bytes)));

    // The stored object is ciphertext: no run of the plaintext appears in it.
    let objects = app.stored_objects();
    assert_eq!(objects.len(), 1);
    let stored = std::fs::read(&objects[0]).unwrap();
    assert!(stored.len() > bytes.len());
    assert!(!stored.windows(32).any(|w| w == &bytes[1000..1032]), "plaintext found in the stored object");
}

#[tokio::test]
async fn html_renamed_to_jpg_is_refused_with_415_and_nothing_is_stored() {
    let app = spawn_app().await;
    let (mut api, claim) = claimant_with_draft(&app, "hanako@example.jp").await;
    api.lang = "en";
    let html = b"<!DOCTYPE html><html><script>alert(document.cookie)</script></html>".to_vec();
    let r = api.upload(&format!("/claims/{claim}/evidence"), "direct_mail", html, "dm.jpg", None).await;
    assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{:?}", r.body);
    assert_eq!(r.body["error"]["message"], "This kind of data is not accepted.");
    assert_eq!(api.get(&format!("/claims/{claim}/evidence")).await.body, json!([]));
    assert!(app.stored_objects().is_empty());
}

#[tokio::test]
async fn an_oversized_file_is_refused_with_413_and_nothing_is_stored() {
    let app = spawn_app_with(|f| f.merge(("max_evidence_bytes", 100 * 1024))).await;
    let (api, claim) = claimant_with_draft(&app, "hanako@example.jp").await;
    let r = api.upload(&format!("/claims/{claim}/evidence"), "direct_mail", jpeg(150 * 1024), "big.jpg", None).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE, "{:?}", r.body);
    assert_eq!(api.get(&format!("/claims/{claim}/evidence")).await.body, json!([]));
    assert!(app.stored_objects().is_empty());
    // Just under the limit is fine.
    let r = api.upload(&format!("/claims/{claim}/evidence"), "direct_mail", jpeg(90 * 1024), "ok.jpg", None).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
}

#[tokio::test]
async fn a_retried_upload_with_the_same_idempotency_key_is_one_file() {
    let app = spawn_app().await;
    let (api, claim) = claimant_with_draft(&app, "hanako@example.jp").await;
    let path = format!("/claims/{claim}/evidence");
    let first = api.upload(&path, "call_log", jpeg(10_000), "a.jpg", Some("retry-123")).await;
    let again = api.upload(&path, "call_log", jpeg(10_000), "a.jpg", Some("retry-123")).await;
    assert_eq!(first.status, StatusCode::CREATED);
    assert_eq!(again.status, StatusCode::OK);
    assert_eq!(first.body["id"], again.body["id"]);
    assert_eq!(api.get(&path).await.body.as_array().unwrap().len(), 1);
    assert_eq!(app.stored_objects().len(), 1);
}

#[tokio::test]
async fn another_claimant_gets_404_on_evidence() {
    let app = spawn_app().await;
    let (owner, claim) = claimant_with_draft(&app, "owner@example.jp").await;
    let id = owner.upload(&format!("/claims/{claim}/evidence"), "other", jpeg(1000), "x.jpg", None).await.body["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (other, _) = claimant_with_draft(&app, "other@example.jp").await;
    assert_eq!(other.get(&format!("/claims/{claim}/evidence")).await.status, StatusCode::NOT_FOUND);
    assert_eq!(other.get(&format!("/evidence/{id}/content")).await.status, StatusCode::NOT_FOUND);
    assert_eq!(other.delete(&format!("/evidence/{id}")).await.status, StatusCode::NOT_FOUND);
    let r = other.upload(&format!("/claims/{claim}/evidence"), "other", jpeg(1000), "x.jpg", None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(app.stored_objects().len(), 1);
}

#[tokio::test]
async fn evidence_can_be_deleted_in_a_draft_and_is_immutable_after_submission() {
    let app = spawn_app().await;
    let (api, claim) = claimant_with_draft(&app, "hanako@example.jp").await;
    let path = format!("/claims/{claim}/evidence");
    let a = api.upload(&path, "other", jpeg(1000), "a.jpg", None).await.body["id"].as_str().unwrap().to_string();
    assert_eq!(api.delete(&format!("/evidence/{a}")).await.status, StatusCode::NO_CONTENT);
    assert!(app.stored_objects().is_empty(), "the object is gone with the row");
    let b =
        api.upload(&path, "apology_letter", jpeg(1000), "b.jpg", None).await.body["id"].as_str().unwrap().to_string();
    api.put(&format!("/claims/{claim}"), complete_draft("やまだ", "1980-05-05")).await;
    api.sign_all(&claim).await;
    assert_eq!(api.post(&format!("/claims/{claim}/submit"), json!({})).await.status, StatusCode::OK);
    let r = api.delete(&format!("/evidence/{b}")).await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert_eq!(r.body["error"]["code"], "evidence_immutable");
    let r = api.upload(&path, "other", jpeg(1000), "c.jpg", None).await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert_eq!(app.stored_objects().len(), 1);
}

#[tokio::test]
async fn gps_and_other_camera_metadata_are_removed_from_jpegs() {
    let app = spawn_app().await;
    let (api, claim) = claimant_with_draft(&app, "hanako@example.jp").await;
    let (photo, scan) = app::evidence::jpeg::fixtures::jpeg_with_gps("GPS-CANARY-35.6812N-139.7671E", 6);
    let r = api.upload(&format!("/claims/{claim}/evidence"), "direct_mail", photo.clone(), "IMG_0002.JPG", None).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let id = r.body["id"].as_str().unwrap();
    let back = api.download(id).await;
    assert!(!back.windows(10).any(|w| w == b"GPS-CANARY"), "location data survived");
    assert!(back.ends_with(&scan), "the image data is untouched (no re-encoding)");
    assert!(back.len() < photo.len());
    assert_eq!(r.body["size"], back.len(), "size and hash describe the file as stored");
    assert_eq!(r.body["sha256"], hex::encode(Sha256::digest(&back)));
    let exif = back.windows(6).position(|w| w == b"Exif\0\0").expect("orientation kept in a minimal Exif");
    assert_eq!(app::evidence::jpeg::orientation(&back[exif + 6..]), Some(6));
}

/// Phone photos in the other formats (made with exiftool, cwebp and
/// heif-enc; see tests/fixtures/metadata/README.md): GPS, XMP and comments
/// gone, the image data as it was, a cut-off file refused in words.
#[tokio::test]
async fn gps_is_removed_from_png_webp_and_heic_photos() {
    let app = spawn_app().await;
    let (mut api, claim) = claimant_with_draft(&app, "hanako@example.jp").await;
    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/metadata");
    for (name, mime) in [("gps.png", "image/png"), ("gps.webp", "image/webp"), ("gps.heic", "image/heic")] {
        let photo = std::fs::read(fixtures.join(name)).unwrap();
        assert!(photo.windows(3).any(|w| w == b"GPS"), "{name} carries a position");
        let r = api.upload(&format!("/claims/{claim}/evidence"), "direct_mail", photo.clone(), name, None).await;
        assert_eq!(r.status, StatusCode::CREATED, "{name}: {:?}", r.body);
        assert_eq!(r.body["content_type"], mime);
        let back = api.download(r.body["id"].as_str().unwrap()).await;
        assert!(!back.windows(3).any(|w| w == b"GPS"), "{name}: location data survived");
        assert!(!back.windows(5).any(|w| w == b"Shiba"), "{name}: the comment survived");
        assert!(!back.windows(4).any(|w| w == b"MM\0*" || w == b"II*\0"), "{name}: an Exif block survived");
        assert_eq!(r.body["size"], back.len(), "size and hash describe the file as stored");
        assert_eq!(r.body["sha256"], hex::encode(Sha256::digest(&back)));
    }
    // A HEIC cut off before its metadata box ends cannot be cleaned: refused, in the claimant's language.
    api.lang = "en";
    let heic = std::fs::read(fixtures.join("gps.heic")).unwrap();
    let r =
        api.upload(&format!("/claims/{claim}/evidence"), "direct_mail", heic[..300].to_vec(), "cut.heic", None).await;
    assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{:?}", r.body);
    assert!(r.body["error"]["message"].as_str().unwrap().is_ascii(), "{:?}", r.body);
}

#[tokio::test]
async fn the_reconciler_removes_orphans_and_reports_missing_objects() {
    let app = spawn_app().await;
    let (api, claim) = claimant_with_draft(&app, "hanako@example.jp").await;
    let path = format!("/claims/{claim}/evidence");
    let kept = api.upload(&path, "other", jpeg(1000), "a.jpg", None).await.body["id"].as_str().unwrap().to_string();
    let lost = api.upload(&path, "other", jpeg(2000), "b.jpg", None).await.body["id"].as_str().unwrap().to_string();
    let root = app.data_dir.path().join("evidence");
    let old = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
    // An object whose row never committed, an hour old; and one just written.
    let orphan = root.join("objects").join("0123456789abcdef0123456789abcdef");
    std::fs::write(&orphan, b"ciphertext").unwrap();
    std::fs::File::options().write(true).open(&orphan).unwrap().set_modified(old).unwrap();
    let fresh = root.join("objects").join("fedcba9876543210fedcba9876543210");
    std::fs::write(&fresh, b"ciphertext").unwrap();
    // An upload cut short by a crash.
    let partial = root.join("incoming").join("aaaabbbbccccddddeeeeffff00001111.part");
    std::fs::write(&partial, b"half").unwrap();
    std::fs::File::options().write(true).open(&partial).unwrap().set_modified(old).unwrap();
    // A row whose object disappeared.
    let state = app.state().await;
    let lost_row = entities::evidence::Entity::find_by_id(uuid::Uuid::parse_str(&lost).unwrap())
        .one(&app.db().await)
        .await
        .unwrap()
        .unwrap();
    std::fs::remove_file(root.join("objects").join(&lost_row.storage_key)).unwrap();

    let report = app::evidence::service::reconcile(&state, std::time::Duration::from_secs(600)).await.unwrap();
    assert_eq!(report.orphans_removed, 1);
    assert_eq!(report.unfinished_removed, 1);
    assert_eq!(report.missing_objects, vec![lost_row.id]);
    assert!(!orphan.exists() && !partial.exists());
    assert!(fresh.exists(), "a young object may belong to an upload about to commit");
    // The evidence that is intact still downloads.
    assert_eq!(api.get(&format!("/evidence/{kept}/content")).await.status, StatusCode::OK);
}

#[tokio::test]
async fn an_unavailable_store_answers_503_and_the_draft_is_intact() {
    let app = spawn_app().await;
    let (mut api, claim) = claimant_with_draft(&app, "hanako@example.jp").await;
    api.put(&format!("/claims/{claim}"), complete_draft("やまだ", "1980-05-05")).await;
    // The store's volume goes away.
    std::fs::remove_dir_all(app.data_dir.path().join("evidence")).unwrap();
    api.lang = "en";
    let r = api.upload(&format!("/claims/{claim}/evidence"), "apology_letter", jpeg(5000), "a.jpg", None).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{:?}", r.body);
    assert!(r.body["error"]["message"].as_str().unwrap().contains("temporarily unavailable"));
    let draft = api.get(&format!("/claims/{claim}")).await;
    assert_eq!(draft.body["status"], "draft");
    assert_eq!(draft.body["persons"][0]["family_name_kana"], "ヤマダ");
    assert_eq!(api.get(&format!("/claims/{claim}/evidence")).await.body, json!([]), "no row without its object");
}

#[tokio::test]
async fn an_upload_without_its_file_or_kind_first_gets_field_errors_and_a_broken_body_400() {
    let app = spawn_app().await;
    let (mut api, claim) = claimant_with_draft(&app, "hanako@example.jp").await;
    api.lang = "en";
    let url = format!("{}/api/v1/claims/{claim}/evidence", api.base);
    let send = |form: reqwest::multipart::Form| {
        api.http
            .post(&url)
            .bearer_auth(api.token.clone().unwrap())
            .header("Accept-Language", "en")
            .multipart(form)
            .send()
    };
    // No file part.
    let r = send(reqwest::multipart::Form::new().text("kind", "direct_mail")).await.unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body: serde_json::Value = r.json().await.unwrap();
    assert!(body["error"]["fields"]["file"].is_string(), "{body}");
    // The kind must come before the file (the file is streamed as it arrives).
    let file = reqwest::multipart::Part::bytes(jpeg(2000)).file_name("a.jpg");
    let r = send(reqwest::multipart::Form::new().part("file", file).text("kind", "direct_mail")).await.unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body: serde_json::Value = r.json().await.unwrap();
    assert!(body["error"]["fields"]["kind"].is_string(), "{body}");
    // A body cut off inside the file part.
    let cut = b"--XyZ\r\nContent-Disposition: form-data; name=\"kind\"\r\n\r\nother\r\n--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.jpg\"\r\n\r\n\xFF\xD8\xFF\xE0 not finished";
    let r = api
        .http
        .post(&url)
        .bearer_auth(api.token.clone().unwrap())
        .header("Content-Type", "multipart/form-data; boundary=XyZ")
        .body(cut.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(api.get(&format!("/claims/{claim}/evidence")).await.body, json!([]));
    assert!(app.stored_objects().is_empty(), "nothing stored from a refused upload");
}

#[tokio::test]
async fn a_page_upload_with_a_wrong_form_token_stores_nothing() {
    let app = spawn_app().await;
    let (api, claim) = claimant_with_draft(&app, "hanako@example.jp").await;
    let form = reqwest::multipart::Form::new()
        .text("csrf", "not-the-token")
        .text("upload.kind", "direct_mail")
        .part("upload.file", reqwest::multipart::Part::bytes(jpeg(2000)).file_name("a.jpg"));
    let r = api
        .http
        .post(format!("{}/claims/{claim}/evidence", api.base))
        .bearer_auth(api.token.clone().unwrap())
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(api.get(&format!("/claims/{claim}/evidence")).await.body, json!([]));
    assert!(app.stored_objects().is_empty());
}
