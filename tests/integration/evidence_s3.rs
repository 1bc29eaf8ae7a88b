//! The S3 evidence store against a real S3-protocol server (s3s-fs) on loopback.
use portal::{spawn_app_with, S3Server};
use reqwest::StatusCode;
use serde_json::json;
use sha2::{Digest, Sha256};

#[tokio::test]
async fn uploads_round_trip_through_s3_encrypted_and_in_parts() {
    let s3 = S3Server::start().await;
    let app = spawn_app_with(|f| s3.configure(f)).await;
    let api = app.claimant("hanako@example.jp").await;
    let claim = api.post("/claims", json!({"case": "benesse-2014"})).await.body["id"].as_str().unwrap().to_string();
    // 12 MiB: three multipart parts of 5 MiB, 5 MiB and the rest.
    let big = app::evidence::jpeg::fixtures::plain_jpeg(12 * 1024 * 1024);
    let small = app::evidence::jpeg::fixtures::plain_jpeg(3000);
    for (bytes, name) in [(&big, "big.jpg"), (&small, "small.jpg")] {
        let r = api.upload(&format!("/claims/{claim}/evidence"), "direct_mail", bytes.clone(), name, None).await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
        assert_eq!(r.body["sha256"], hex::encode(Sha256::digest(bytes)));
        let id = r.body["id"].as_str().unwrap();
        let back = api.download(id).await;
        assert_eq!(hex::encode(Sha256::digest(&back)), hex::encode(Sha256::digest(bytes)));
    }
    // Nothing in the object store is plaintext, and nothing is left of no app's making.
    let files = s3.object_files();
    let stored: Vec<Vec<u8>> = files.iter().filter_map(|p| std::fs::read(p).ok()).filter(|b| b.len() > 1000).collect();
    assert_eq!(stored.len(), 2, "{files:?}");
    for object in stored {
        assert!(!object.windows(32).any(|w| w == &big[5000..5032]), "plaintext in an S3 object");
    }
    let state = app.state().await;
    let report = app::evidence::service::reconcile(&state, std::time::Duration::ZERO).await.unwrap();
    assert_eq!(report, Default::default(), "store and database agree");
}

#[tokio::test]
async fn an_s3_outage_answers_503_and_the_draft_is_intact() {
    let s3 = S3Server::start().await;
    let app = spawn_app_with(|f| s3.configure(f)).await;
    let api = app.claimant("hanako@example.jp").await;
    let claim = api.post("/claims", json!({"case": "benesse-2014"})).await.body["id"].as_str().unwrap().to_string();
    api.put(&format!("/claims/{claim}"), portal::complete_draft("やまだ", "1980-05-05")).await;
    s3.stop();
    let r = api
        .upload(
            &format!("/claims/{claim}/evidence"),
            "apology_letter",
            app::evidence::jpeg::fixtures::plain_jpeg(2000),
            "a.jpg",
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{:?}", r.body);
    let draft = api.get(&format!("/claims/{claim}")).await;
    assert_eq!(draft.body["persons"][0]["family_name_kana"], "ヤマダ");
    assert_eq!(api.get(&format!("/claims/{claim}/evidence")).await.body, json!([]));
}
