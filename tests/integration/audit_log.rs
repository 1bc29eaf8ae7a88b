use portal::{complete_draft, spawn_app};
use reqwest::StatusCode;
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder};
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
        .order_by_asc(entities::audit_event::Column::Id)
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
    // Every event numbered first, so there is an event 3 to delete.
    assert!(app.audit_report().await.ok);
    let db = app.db().await;
    db.execute_unprepared("DELETE FROM audit_events WHERE seq = 3").await.unwrap();
    let r = admin.get("/admin/audit/verify").await;
    assert_eq!(r.body["ok"], false);
    assert_eq!(r.body["first_bad_seq"], 3);

    // Renumbering the rows to hide the gap breaks the links instead.
    let app = spawn_app().await;
    claimant_with_submitted_claim(&app).await;
    let (admin, _) = app.staff_verified("admin2@example.jp", app::auth::Role::Admin).await;
    // Every event numbered first, so there is an event 3 to delete.
    assert!(app.audit_report().await.ok);
    let db = app.db().await;
    db.execute_unprepared("DELETE FROM audit_events WHERE seq = 3").await.unwrap();
    // Two steps, so no unique-key clash midway on either database.
    db.execute_unprepared("UPDATE audit_events SET seq = -seq WHERE seq > 3").await.unwrap();
    db.execute_unprepared("UPDATE audit_events SET seq = -seq - 1 WHERE seq < 0").await.unwrap();
    let r = admin.get("/admin/audit/verify").await;
    assert_eq!(r.body["ok"], false);
    assert_eq!(r.body["first_bad_seq"], 3);
}

/// Editing an event and rewriting its stored leaf to match is still found:
/// the tree no longer gives the root the checkpoints signed.
#[tokio::test]
async fn an_event_edited_with_its_leaf_rewritten_breaks_the_signed_root() {
    let app = spawn_app().await;
    claimant_with_submitted_claim(&app).await;
    let before = app.audit_report().await;
    assert!(before.ok && before.pending == 0 && before.checked >= 6, "{before:?}");
    assert_eq!(before.checkpoint_size, before.checked as u64);

    let db = app.db().await;
    db.execute_unprepared("UPDATE audit_events SET detail = '{\"section\":\"forged\"}' WHERE seq = 4").await.unwrap();
    let forged = entities::audit_event::Entity::find()
        .filter(entities::audit_event::Column::Seq.eq(4))
        .one(&db)
        .await
        .unwrap()
        .unwrap();
    let leaf = app::audit::tree::leaf_hash(&app::audit::leaf_entry(&forged));
    let update = sea_orm::Statement::from_sql_and_values(
        db.get_database_backend(),
        match db.get_database_backend() {
            sea_orm::DatabaseBackend::Postgres => "UPDATE audit_nodes SET hash = $1 WHERE level = 0 AND idx = 3",
            _ => "UPDATE audit_nodes SET hash = ? WHERE level = 0 AND idx = 3",
        },
        [leaf.to_vec().into()],
    );
    db.execute_raw(update).await.unwrap();
    let r = app.audit_report().await;
    assert!(!r.ok);
    assert!(r.first_bad_seq.unwrap() <= 4, "{r:?}");
    assert!(r.reason.as_deref().unwrap().contains("checkpoint"), "{r:?}");
}

/// Cutting off the newest events, and the database's checkpoints with
/// them, is found from the checkpoint kept outside the database.
#[tokio::test]
async fn a_cut_off_tail_is_found_from_the_checkpoint_outside_the_database() {
    let app = spawn_app().await;
    claimant_with_submitted_claim(&app).await;
    let before = app.audit_report().await;
    assert!(before.ok, "{before:?}");
    let n = before.checked;
    let db = app.db().await;
    db.execute_unprepared(&format!("DELETE FROM audit_events WHERE seq > {}", n - 2)).await.unwrap();
    db.execute_unprepared(&format!("DELETE FROM audit_checkpoints WHERE size > {}", n - 2)).await.unwrap();
    let r = app.audit_report().await;
    assert!(!r.ok);
    assert_eq!(r.first_bad_seq, Some(n - 1), "{r:?}");
    assert!(r.reason.as_deref().unwrap().contains("missing from the end"), "{r:?}");
    assert_eq!(r.checkpoint_size, n as u64, "the checkpoint file still says how long the log was");
}

#[tokio::test]
async fn only_administrators_can_verify_the_chain() {
    let app = spawn_app().await;
    let claimant = app.claimant("hanako@example.jp").await;
    assert_eq!(claimant.get("/admin/audit/verify").await.status, StatusCode::NOT_FOUND);
    let lawyer = app.staff("lawyer@example.jp", app::auth::Role::Lawyer).await;
    assert_eq!(lawyer.get("/admin/audit/verify").await.status, StatusCode::NOT_FOUND);
}

/// A claimant can prove an event about their data is in the signed log:
/// the inclusion proof checks against the root the checkpoint signs.
#[tokio::test]
async fn an_access_log_entry_comes_with_an_inclusion_proof_against_the_signed_checkpoint() {
    let app = spawn_app().await;
    claimant_with_submitted_claim(&app).await;
    let report = app.audit_report().await;
    assert!(report.ok, "{report:?}");
    let db = app.db().await;
    let hanako = entities::user::Entity::find().all(&db).await.unwrap();
    let hanako = hanako.iter().find(|u| u.role == "claimant").expect("the claimant").id;
    let event = entities::audit_event::Entity::find()
        .filter(entities::audit_event::Column::OwnerId.eq(hanako))
        .filter(entities::audit_event::Column::Action.eq("claim.submitted"))
        .one(&db)
        .await
        .unwrap()
        .expect("the submission is audited with the claimant as owner");
    let seq = event.seq.expect("sequenced");

    let api = app.login("hanako@example.jp", "correct horse battery staple").await;
    let r = api.get(&format!("/me/access-log/{seq}/proof")).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let hex32 = |v: &serde_json::Value| -> [u8; 32] { hex::decode(v.as_str().unwrap()).unwrap().try_into().unwrap() };
    let checkpoint =
        app.audit.key().open(r.body["checkpoint"].as_str().unwrap()).expect("a checkpoint signed by the portal");
    assert_eq!(checkpoint.size, r.body["tree_size"].as_u64().unwrap());
    assert_eq!(checkpoint.root, hex32(&r.body["root"]));
    let leaf = app::audit::tree::leaf_hash(&app::audit::leaf_entry(&event));
    assert_eq!(leaf, hex32(&r.body["leaf_hash"]));
    let proof: Vec<[u8; 32]> = r.body["proof"].as_array().unwrap().iter().map(hex32).collect();
    assert!(app::audit::tree::verify_inclusion(seq as u64 - 1, checkpoint.size, &leaf, &proof, &checkpoint.root));
    // Tampering with the proof makes it fail.
    let mut bent = proof.clone();
    bent[0][0] ^= 1;
    assert!(!app::audit::tree::verify_inclusion(seq as u64 - 1, checkpoint.size, &leaf, &bent, &checkpoint.root));

    // Someone else's event is not theirs to ask about.
    let other = app.claimant("taro@example.jp").await;
    assert_eq!(other.get(&format!("/me/access-log/{seq}/proof")).await.status, StatusCode::NOT_FOUND);
}

/// Down, the tree becomes the hash chain it replaced, every event in order
/// with its links recomputed; up again, the sequencer numbers the same
/// events into the same tree (the checkpoints kept outside still match).
#[tokio::test]
async fn the_audit_tree_migrates_down_to_a_linked_chain_and_back_up_to_the_same_root() {
    let app = spawn_app().await;
    claimant_with_submitted_claim(&app).await;
    let before = app.audit_report().await;
    assert!(before.ok && before.checked >= 6, "{before:?}");
    let db = app.db().await;
    app.migrate_down_to_before(&db, "m20261202_000017_audit_tree").await;
    let rows = db
        .query_all_raw(sea_orm::Statement::from_string(
            db.get_database_backend(),
            "SELECT seq, prev_hash, hash FROM audit_events ORDER BY seq",
        ))
        .await
        .unwrap();
    assert!(rows.len() as i64 >= before.checked, "every event is in the chain");
    let mut prev = "0".repeat(64);
    for (n, row) in rows.iter().enumerate() {
        let seq: i64 = row.try_get("", "seq").unwrap();
        let (link, hash): (String, String) = (row.try_get("", "prev_hash").unwrap(), row.try_get("", "hash").unwrap());
        assert_eq!(seq, n as i64 + 1);
        assert_eq!(link, prev, "event {seq} links to the one before");
        prev = hash;
    }
    use migration::MigratorTrait;
    migration::Migrator::up(&db, None).await.unwrap();
    let after = app.audit_report().await;
    assert!(after.ok, "{after:?}");
    assert_eq!(after.checked as usize, rows.len());
    if after.checked == before.checked {
        assert_eq!(after.root, before.root, "the same events in the same order make the same tree");
    }
}
