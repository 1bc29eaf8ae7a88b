//! The notice roster (hashes only) and the verification signals it feeds.
use std::sync::Arc;

use app::review::domain::SignalKind;
use portal::{spawn_app, ApiClient, TestApp};
use reqwest::StatusCode;
use sea_orm::EntityTrait;
use serde_json::{json, Value};

/// A roster line that identifies nobody real but is easy to search for.
pub(crate) const CANARY_LINE: [&str; 5] =
    ["QX77-ROSTER9", "ろすたー かなりあ", "1966-06-16", "765-4321", "077-555-1234"];

pub(crate) fn roster_csv(lines: &[[&str; 5]], synthetic: u64) -> String {
    let mut out = Vec::new();
    app::roster::synthetic::write(&mut out, 3, synthetic, 0, |_| {}).unwrap();
    let mut text = String::from_utf8(out).unwrap();
    for l in lines {
        text.push_str(&l.join(","));
        text.push('\n');
    }
    text
}

/// Roster keys stored (8 bytes each in their buckets).
async fn roster_keys(db: &sea_orm::DatabaseConnection) -> usize {
    let buckets = entities::roster_bucket::Entity::find().all(db).await.unwrap();
    buckets.iter().map(|b| b.keys.len() / 8).sum()
}

pub(crate) async fn import(app: &TestApp, csv: String) -> app::error::AppResult<app::roster::service::ImportReport> {
    let state = app.state().await;
    let progress = Arc::new(app::roster::service::Progress::default());
    let lines = csv.lines().count() as u64 - 1;
    let cursor = std::io::Cursor::new(csv.into_bytes());
    let report = app::roster::service::import(&state, "benesse-2014", "notice.csv", cursor, progress.clone()).await;
    if report.is_ok() {
        // The progress bar saw every line read and every part written.
        use std::sync::atomic::Ordering::Relaxed;
        assert_eq!(progress.rows.load(Relaxed), lines);
        assert_eq!(progress.parts_written.load(Relaxed), app::roster::service::SPILL_FILES);
    }
    report
}

#[tokio::test]
async fn the_roster_keeps_only_hashes_and_reports_bad_lines_by_number() {
    let app = spawn_app().await;
    let mut csv = roster_csv(&[CANARY_LINE], 200);
    // Lines 203 and 204: a kanji "kana" name, and a line with nothing to match.
    csv.push_str("AB12CD99,山田 花子,1980-01-01,,\n");
    csv.push_str(",ヤマダ,,,\n");
    let report = import(&app, csv).await.expect("import");
    assert_eq!(report.rows_imported, 201);
    assert_eq!(report.rows_rejected, 2);
    assert_eq!(report.rejected[0], (203, "kana_name: not a kana name".to_string()));
    assert_eq!(report.rejected[1].0, 204);

    let db = app.db().await;
    // 201 lines, each with a code, identity, phone and postal key unless a
    // value was left empty (the synthetic lines leave some codes and phones out).
    let lines: Vec<app::roster::domain::RosterKeys> = {
        let state = app.state().await;
        let mut out = Vec::new();
        for i in 0..200 {
            let fields = app::roster::synthetic::row(3, i);
            let refs: Vec<&str> = fields.iter().map(String::as_str).collect();
            out.push(app::roster::domain::keys_of_row(&state.keys, &app::roster::domain::parse_row(&refs).unwrap()));
        }
        out.push(app::roster::domain::keys_of_row(&state.keys, &app::roster::domain::parse_row(&CANARY_LINE).unwrap()));
        out
    };
    let mut distinct = std::collections::HashSet::new();
    for keys in &lines {
        for (kind, key) in keys.by_kind().into_iter().enumerate() {
            if let Some(key) = key {
                distinct.insert((kind, key));
            }
        }
    }
    assert_eq!(roster_keys(&db).await, distinct.len());
    let plain = [
        "QX77ROSTER9",
        "QX77-ROSTER9",
        "ロスターカナリア",
        "ろすたー",
        "1966-06-16",
        "7654321",
        "765-4321",
        "0775551234",
    ];
    let found = portal::find_in(&app.bytes_at_rest(), &plain);
    assert!(found.is_empty(), "roster plaintext at rest: {found:?}");
}

#[tokio::test]
async fn a_failed_import_leaves_nothing_behind() {
    let app = spawn_app().await;
    let err = import(&app, "code,name\nAB12CD34,ヤマダ\n".into()).await.unwrap_err();
    assert!(err.to_string().contains("registration_code,kana_name"), "{err}");
    let db = app.db().await;
    assert_eq!(roster_keys(&db).await, 0);
    let imports = entities::roster_import::Entity::find().all(&db).await.unwrap();
    assert_eq!(imports.len(), 1);
    assert_eq!(imports[0].status, "failed");
}

#[tokio::test]
async fn a_roster_imported_before_buckets_is_converted_and_still_matches() {
    use app::roster::domain::{keys_of_row, parse_row};
    use migration::MigratorTrait;
    use sea_orm::sea_query::{Alias, Query};
    use sea_orm::ConnectionTrait;
    let app = spawn_app().await;
    let state = app.state().await;
    let case_id = app::cases::service::by_slug(state.db.conn(), "benesse-2014").await.unwrap().model.id;
    let newer = import(&app, roster_csv(&[], 20)).await.unwrap().import_id;
    let db = app.db().await;

    // Down: the bucket table goes and an import whose keys cannot be turned
    // back into whole digests is marked failed, not left matching nothing.
    app.migrate_down_to_before(&db, "m20261122_000011_roster_keys").await;
    let status = db
        .query_one_raw(sea_orm::Statement::from_string(
            db.get_database_backend(),
            "SELECT status FROM roster_imports".to_string(),
        ))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status.try_get::<String>("", "status").unwrap(), "failed", "import {newer}");

    // An import as the earlier schema kept it: one row per line, whole hex digests.
    let import_id = uuid::Uuid::new_v4();
    let insert = Query::insert()
        .into_table(Alias::new("roster_imports"))
        .columns(["id", "case_id", "source", "status", "rows_imported", "rows_rejected", "started_at"].map(Alias::new))
        .values_panic([
            import_id.into(),
            case_id.into(),
            "old.csv".into(),
            "complete".into(),
            1i64.into(),
            0i64.into(),
            chrono::Utc::now().into(),
        ])
        .to_owned();
    db.execute(&insert).await.unwrap();
    let [code, kana, birth, postal, phone] = CANARY_LINE;
    let row = parse_row(&CANARY_LINE).unwrap();
    let kana_index = row.kana.clone().unwrap();
    let keys = &state.keys;
    let digests = [
        keys.blind_index("registration-code", row.code.as_ref().unwrap().as_str()),
        keys.blind_index("person-identity", &format!("{kana_index}|{}", row.birth_date.unwrap())),
        keys.blind_index("roster-phone", row.phone.as_ref().unwrap().digits()),
        keys.blind_index("roster-postal-kana", &format!("{}|{kana_index}", row.postal.as_ref().unwrap().digits())),
    ];
    if db.get_database_backend() == sea_orm::DatabaseBackend::Postgres {
        // The earlier schema kept one partition per import.
        let part = format!(
            "CREATE TABLE roster_part_{} PARTITION OF roster_entries FOR VALUES IN ('{import_id}')",
            import_id.simple()
        );
        db.execute_unprepared(&part).await.unwrap();
    }
    let insert = Query::insert()
        .into_table(Alias::new("roster_entries"))
        .columns(["import_id", "code_hash", "identity_hash", "phone_hash", "postal_kana_hash"].map(Alias::new))
        .values_panic([
            import_id.into(),
            digests[0].clone().into(),
            digests[1].clone().into(),
            digests[2].clone().into(),
            digests[3].clone().into(),
        ])
        .to_owned();
    db.execute(&insert).await.unwrap();

    // Up again: the old rows become buckets, and the line is found by every value.
    migration::Migrator::up(&db, None).await.unwrap();
    let state = app.state().await;
    let found = app::roster::service::lookup(&state, case_id, &[keys_of_row(&state.keys, &row)]).await.unwrap();
    assert_eq!(
        found,
        app::roster::service::RosterMatch { code: true, identity: true, phone: true, postal_kana: true },
        "{code} {kana} {birth} {postal} {phone}"
    );
    let other = parse_row(&["ZZ99-ZZ99", "ほか の ひと", "1970-01-01", "100-0001", "03-1111-2222"]).unwrap();
    let found = app::roster::service::lookup(&state, case_id, &[keys_of_row(&state.keys, &other)]).await.unwrap();
    assert_eq!(found, app::roster::service::RosterMatch::default());
}

pub(crate) fn canary_claim() -> Value {
    json!({
        "persons": [{"relation": "self", "family_name": "炉須太", "given_name": "金糸雀", "family_name_kana": "ロスター",
                     "given_name_kana": "カナリア", "birth_date": "1966-06-16", "gender": "female"}],
        "address": {"postal_code": "7654321", "prefecture": "香川県", "city": "高松市", "line1": "1-1", "line2": ""},
        "phone": "0775551234",
        "leaked_items": ["name", "phone"],
        "apology_letter_received": true,
        "registration_code": "qx77 roster9",
        "apology_option": "none"
    })
}

async fn submitted(app: &TestApp, email: &str, draft: Value, signer: &str) -> (ApiClient, String) {
    app.submitted_claim(email, draft, signer).await
}

async fn signals(app: &TestApp, claim: &str) -> Vec<SignalKind> {
    let state = app.state().await;
    let id = uuid::Uuid::parse_str(claim).unwrap();
    let found = app::review::service::signals_for(&state, id, app::i18n::Lang::En).await.unwrap();
    assert!(found.iter().all(|s| !s.reason.is_empty() && !s.reason.starts_with("signal-")), "{found:?}");
    found.into_iter().map(|s| s.kind).collect()
}

#[tokio::test]
async fn each_signal_fires_on_a_crafted_claim() {
    let app = spawn_app().await;
    import(&app, roster_csv(&[CANARY_LINE], 50)).await.unwrap();
    let (_, claim) = submitted(&app, "crafted@example.jp", canary_claim(), "炉須太 金糸雀").await;
    // A second claimant naming the same person makes both possible duplicates,
    // and five claims from one address within the hour are a burst.
    submitted(&app, "dup@example.jp", canary_claim(), "炉須太 金糸雀").await;
    for i in 0..3 {
        app.claimant(&format!("filler{i}@example.jp")).await.post("/claims", json!({"case": "benesse-2014"})).await;
    }
    let kinds = signals(&app, &claim).await;
    for want in [
        SignalKind::RegistrationCodeMatch,
        SignalKind::IdentityMatch,
        SignalKind::PhoneMatch,
        SignalKind::PostalKanaMatch,
        SignalKind::PossibleDuplicate,
        SignalKind::ClaimBurstFromAddress,
    ] {
        assert!(kinds.contains(&want), "{want:?} missing from {kinds:?}");
    }
    assert!(app::review::domain::code_and_identity_match(&kinds));
}

#[tokio::test]
async fn evidence_signals_fire_for_uploaded_letters_and_direct_mail() {
    let app = spawn_app().await;
    let api = app.claimant("letters@example.jp").await;
    let id = api.post("/claims", json!({"case": "benesse-2014"})).await.body["id"].as_str().unwrap().to_string();
    api.put(&format!("/claims/{id}"), canary_claim()).await;
    let path = format!("/claims/{id}/evidence");
    let jpeg = app::evidence::jpeg::fixtures::plain_jpeg(2_000);
    assert_eq!(api.upload(&path, "apology_letter", jpeg.clone(), "a.jpg", None).await.status, StatusCode::CREATED);
    let before = signals(&app, &id).await;
    assert_eq!(before, vec![SignalKind::ApologyLetterUploaded], "no roster imported: only the letter");
    assert_eq!(api.upload(&path, "direct_mail", jpeg, "dm.jpg", None).await.status, StatusCode::CREATED);
    assert_eq!(signals(&app, &id).await, vec![SignalKind::ApologyLetterUploaded, SignalKind::DirectMailUploaded]);
}

#[tokio::test]
async fn a_clean_claim_fires_no_signal() {
    let app = spawn_app().await;
    import(&app, roster_csv(&[CANARY_LINE], 50)).await.unwrap();
    let (_, claim) =
        submitted(&app, "clean@example.jp", portal::complete_draft("やまだ", "1980-05-05"), "山田 花子").await;
    assert_eq!(signals(&app, &claim).await, vec![]);
}
