use portal::{complete_draft, spawn_app};
use reqwest::StatusCode;
use sea_orm::{ConnectionTrait, EntityTrait, QueryOrder};
use serde_json::json;

async fn claimant_with_submitted_claim(app: &portal::TestApp) -> String {
    let api = app.claimant("hanako@example.jp").await;
    let id = api.post("/claims", json!({"case": "benesse-2014"})).await.body["id"].as_str().unwrap().to_string();
    api.put(&format!("/claims/{id}"), complete_draft("やまだ", "1980-05-05")).await;
    api.sign_all(&id).await;
    api.post(&format!("/claims/{id}/submit"), json!({})).await;
    id
}

#[tokio::test]
async fn every_state_change_and_authentication_event_is_audited() {
    let app = spawn_app().await;
    claimant_with_submitted_claim(&app).await;
    let db = app.db().await;
    let actions: Vec<String> = entities::audit_event::Entity::find()
        .order_by_asc(entities::audit_event::Column::Seq)
        .all(&db)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.action)
        .collect();
    for want in
        ["account.created", "auth.login", "claim.created", "claim.draft_saved", "consent.signed", "claim.submitted"]
    {
        assert!(actions.iter().any(|a| a == want), "{want} missing from {actions:?}");
    }
}

#[tokio::test]
async fn an_intact_chain_verifies_and_an_edited_row_is_detected() {
    let app = spawn_app().await;
    claimant_with_submitted_claim(&app).await;
    let (admin, _) = app.staff_verified("admin2@example.jp", app::auth::Role::Admin).await;
    let ok = admin.get("/admin/audit/verify").await;
    assert_eq!(ok.status, StatusCode::OK);
    assert_eq!(ok.body["ok"], true, "{:?}", ok.body);
    let checked = ok.body["checked"].as_i64().unwrap();
    assert!(checked >= 6, "{checked}");

    let db = app.db().await;
    db.execute_unprepared("UPDATE audit_events SET detail = '{\"section\":\"forged\"}' WHERE seq = 4").await.unwrap();
    let broken = admin.get("/admin/audit/verify").await;
    assert_eq!(broken.body["ok"], false);
    assert_eq!(broken.body["first_bad_seq"], 4);
    assert_eq!(broken.body["reason"], "event content altered");
}

#[tokio::test]
async fn a_deleted_or_reordered_audit_row_is_detected() {
    let app = spawn_app().await;
    claimant_with_submitted_claim(&app).await;
    let (admin, _) = app.staff_verified("admin2@example.jp", app::auth::Role::Admin).await;
    let db = app.db().await;
    db.execute_unprepared("DELETE FROM audit_events WHERE seq = 3").await.unwrap();
    let r = admin.get("/admin/audit/verify").await;
    assert_eq!(r.body["ok"], false);
    assert_eq!(r.body["first_bad_seq"], 3);

    // Renumbering the rows to hide the gap breaks the links instead.
    let app = spawn_app().await;
    claimant_with_submitted_claim(&app).await;
    let (admin, _) = app.staff_verified("admin2@example.jp", app::auth::Role::Admin).await;
    let db = app.db().await;
    db.execute_unprepared("DELETE FROM audit_events WHERE seq = 3").await.unwrap();
    // Two steps, so no unique-key clash midway on either database.
    db.execute_unprepared("UPDATE audit_events SET seq = -seq WHERE seq > 3").await.unwrap();
    db.execute_unprepared("UPDATE audit_events SET seq = -seq - 1 WHERE seq < 0").await.unwrap();
    let r = admin.get("/admin/audit/verify").await;
    assert_eq!(r.body["ok"], false);
    assert_eq!(r.body["first_bad_seq"], 3);
}

#[tokio::test]
async fn only_administrators_can_verify_the_chain() {
    let app = spawn_app().await;
    let claimant = app.claimant("hanako@example.jp").await;
    assert_eq!(claimant.get("/admin/audit/verify").await.status, StatusCode::NOT_FOUND);
    let lawyer = app.staff("lawyer@example.jp", app::auth::Role::Lawyer).await;
    assert_eq!(lawyer.get("/admin/audit/verify").await.status, StatusCode::NOT_FOUND);
}
