//! The write path under concurrency: group commit on SQLite (one transaction
//! per batch of jobs, a savepoint per job), and the trip counter the intake
//! benchmark prints.
use app::audit::{self, Actor, Event};
use entities::audit_event;
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter};

/// 48 writers at once, every fourth of which fails after its audit append
/// has reached the database: each committed job is there, each failed one
/// left nothing, the audit log verifies, and on SQLite the jobs shared
/// transactions.
#[tokio::test]
async fn concurrent_jobs_commit_together_and_a_failed_job_leaves_nothing() {
    let app = portal::spawn_app().await;
    let db = app.served_db.clone();
    let before = db.trip_figures();
    let writers_before = db.writer_figures();
    let mut tasks = Vec::new();
    for n in 0..48u32 {
        let db = db.clone();
        tasks.push(tokio::spawn(async move {
            let txn = db.begin_write().await.expect("begin");
            let action = if n % 4 == 3 { "test.failed_job" } else { "test.committed_job" };
            audit::append(&txn, &Actor::default(), Event::new(action)).await.expect("append");
            if n % 2 == 1 {
                // A query sends the append (on SQLite, with the job's savepoint).
                let mine = audit_event::Entity::find().filter(audit_event::Column::Action.eq(action)).count(&txn);
                assert!(mine.await.expect("count") >= 1, "the job sees its own event");
            }
            tokio::task::yield_now().await;
            if n % 4 == 3 {
                drop(txn); // the job fails: rolled back to its savepoint
                false
            } else {
                txn.commit().await.expect("the batch holding the job committed");
                true
            }
        }));
    }
    let mut committed = 0;
    for t in tasks {
        committed += usize::from(t.await.expect("task"));
    }
    // A failed job is rolled back by a task of its own: wait for it.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let conn = app.db().await;
    let count = |action: &'static str| {
        let conn = conn.clone();
        async move { audit_event::Entity::find().filter(audit_event::Column::Action.eq(action)).count(&conn).await.unwrap() }
    };
    assert_eq!(committed, 36);
    assert_eq!(count("test.committed_job").await, 36, "every acknowledged job is in the database");
    assert_eq!(count("test.failed_job").await, 0, "no failed job left anything");
    let report = app.audit_report().await;
    assert!(report.ok, "the audit log verifies: {report:?}");
    assert_eq!(report.pending, 0);

    let trips = db.trip_figures() - before;
    assert!(trips.transaction_control > 0 && trips.statements >= 36, "the app counted the trips: {trips:?}");
    if let (Some(after), Some(earlier)) = (db.writer_figures(), writers_before) {
        // The sequencer's passes are write jobs too.
        let jobs = (after - earlier).transactions;
        assert!(jobs >= 36, "the writer counts committed jobs: {jobs}");
        // Per batch one BEGIN and one COMMIT, per failed job one ROLLBACK
        // TO (the savepoints go with the jobs' queries). Fewer than 48
        // batches means jobs shared one.
        let batches = trips.transaction_control.saturating_sub(12) / 2;
        assert!(batches < 48, "jobs waiting on the writer joined open batches ({batches} batches for 48 jobs)");
    }
}

/// On SQLite a job's savepoint goes with its first query. Should that
/// command fail, whether the savepoint was set is unknown, and rolling
/// back to the newest savepoint could undo another job's work: the batch
/// ends uncommitted instead, and the job waiting on it is told so. Nothing
/// acknowledged is lost, and the writer goes on.
#[tokio::test]
async fn a_job_whose_first_query_fails_ends_its_batch_and_nothing_acknowledged_is_lost() {
    let app = portal::spawn_app().await;
    let db = app.served_db.clone();
    if db.writer_figures().is_none() {
        return; // PostgreSQL: every job is a transaction of its own.
    }
    let _sequencer = app.audit.hold().await;
    let first = db.begin_write().await.expect("begin");
    audit::append(&first, &Actor::default(), Event::new("test.first_in_batch")).await.expect("append");
    let second = {
        let db = db.clone();
        tokio::spawn(async move {
            let txn = db.begin_write().await.expect("begin");
            let failed = txn
                .query_one_raw(sea_orm::Statement::from_string(
                    txn.get_database_backend(),
                    "SELECT x FROM no_such_table",
                ))
                .await;
            assert!(failed.is_err(), "the query fails");
        })
    };
    // The second job waits on the writer: the first leaves the batch open for it.
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let answer = first.commit().await;
    second.await.expect("second job");
    assert!(answer.is_err(), "the first job is told its batch did not commit");
    let third = db.begin_write().await.expect("the writer goes on");
    audit::append(&third, &Actor::default(), Event::new("test.after")).await.expect("append");
    third.commit().await.expect("commit");
    let conn = app.db().await;
    let count = |action: &'static str| {
        let conn = conn.clone();
        async move { audit_event::Entity::find().filter(audit_event::Column::Action.eq(action)).count(&conn).await.unwrap() }
    };
    assert_eq!(count("test.first_in_batch").await, 0, "what was not acknowledged is not there");
    assert_eq!(count("test.after").await, 1);
}

/// The entities' relations are what SeaORM joins on: a claim finds its
/// case and its claimant, and a claim's people and harm diary are found
/// from the claim.
#[tokio::test]
async fn a_claim_reaches_its_case_claimant_and_rows_through_the_relations() {
    use entities::{case, claim, harm, person, user};
    use sea_orm::ModelTrait;
    let app = portal::spawn_app().await;
    let api = app.claimant("hanako@example.jp").await;
    let id =
        api.post("/claims", serde_json::json!({"case": "benesse-2014"})).await.body["id"].as_str().unwrap().to_string();
    let draft = portal::complete_draft("やまだ", "1980-05-05");
    let draft_persons = draft["persons"].as_array().unwrap().len();
    assert!(draft_persons >= 2);
    let saved = api.put(&format!("/claims/{id}"), draft).await;
    assert_eq!(saved.status, reqwest::StatusCode::OK, "{:?}", saved.body);
    let state = app.state().await;
    let db = state.db.conn();
    let id: uuid::Uuid = id.parse().unwrap();
    let (model, found_case) =
        claim::Entity::find_by_id(id).find_also_related(case::Entity).one(db).await.unwrap().unwrap();
    assert_eq!(found_case.expect("the claim's case").slug, "benesse-2014");
    let claimant = model.find_related(user::Entity).one(db).await.unwrap().expect("the claimant");
    assert_eq!(claimant.id, model.claimant_id);
    let persons = model.find_related(person::Entity).all(db).await.unwrap();
    assert_eq!(persons.len(), draft_persons);
    assert_eq!(persons[0].find_related(claim::Entity).one(db).await.unwrap().map(|c| c.id), Some(id));
    // The harm diary is in the claim's document; written back as rows, a
    // harm row finds its claim.
    assert_eq!(model.find_related(harm::Entity).all(db).await.unwrap().len(), 0);
    app::claims::documents::downgrade_documents(&state.db, &state.keys).await.unwrap();
    let harms = model.find_related(harm::Entity).all(db).await.unwrap();
    assert_eq!(harms.len(), 1);
    assert_eq!(harms[0].find_related(claim::Entity).one(db).await.unwrap().map(|c| c.id), Some(id));
}

/// A saved draft is one sealed document in the claim row: its people are
/// index rows with nothing sealed, the harm diary has no rows, and no
/// personal detail is readable in the row. Written back as rows by the
/// operator's step, the schema goes down and up again (refusing to go
/// down before), the portal reads the same draft from the rows, and the
/// start-up step rewrites it as a document; each rewrite is audited.
#[tokio::test]
async fn a_draft_is_one_sealed_document_and_migrates_to_rows_and_back() {
    use entities::{audit_event, claim, harm, person};
    use migration::MigratorTrait;
    let app = portal::spawn_app().await;
    let api = app.claimant("documents@example.jp").await;
    let id =
        api.post("/claims", serde_json::json!({"case": "benesse-2014"})).await.body["id"].as_str().unwrap().to_string();
    let saved = api.put(&format!("/claims/{id}"), portal::complete_draft("やまだ", "1980-05-05")).await;
    assert_eq!(saved.status, reqwest::StatusCode::OK, "{:?}", saved.body);
    let read = || async { api.get(&format!("/claims/{id}")).await.body };
    let fields = ["persons", "address", "phone", "email", "registration_code", "harms", "learned_of_leak_on"];
    let draft_of = |body: &serde_json::Value| fields.map(|f| body[f].clone());
    let before = draft_of(&read().await);
    assert_eq!(before[0].as_array().map(Vec::len), Some(2), "{before:?}");

    let db = app.db().await;
    let claim_id: uuid::Uuid = id.parse().unwrap();
    let layout = |db: sea_orm::DatabaseConnection| async move {
        let model = claim::Entity::find_by_id(claim_id).one(&db).await.unwrap().unwrap();
        let persons = person::Entity::find().filter(person::Column::ClaimId.eq(claim_id)).all(&db).await.unwrap();
        let harms = harm::Entity::find().filter(harm::Column::ClaimId.eq(claim_id)).count(&db).await.unwrap();
        (model, persons, harms)
    };
    let (model, persons, harms) = layout(db.clone()).await;
    assert_eq!(model.document_format, app::claims::documents::DOCUMENT);
    assert_eq!((persons.len(), harms), (2, 0), "index rows for the people, none for the harms");
    assert!(persons.iter().all(|p| p.sealed.is_empty() && !p.identity_index.is_empty()));
    let sealed = model.sealed.clone().expect("the document");
    assert_eq!(
        portal::find_in(&sealed, &["山田", "千代田", "090-1234-5678", "某教育サービス", "AB12-CD34"]),
        Vec::<&str>::new()
    );

    // The schema refuses to go down while a claim is a document.
    let refused = migration::Migrator::down(&db, Some(1)).await.expect_err("refused");
    assert!(refused.to_string().contains("downgrade-documents"), "{refused}");
    assert_eq!(layout(db.clone()).await.0.document_format, app::claims::documents::DOCUMENT, "nothing changed");

    app.migrate_down_to_before(&db, portal::CLAIM_DOCUMENTS).await;
    migration::Migrator::up(&db, None).await.unwrap();
    let (model, persons, harms) = layout(db.clone()).await;
    assert_eq!(model.document_format, app::claims::documents::ROWS);
    assert_eq!((persons.len(), harms), (2, 1), "a sealed row for each person and harm");
    assert!(persons.iter().all(|p| !p.sealed.is_empty()));
    assert_eq!(draft_of(&read().await), before, "the portal reads the same draft from the rows");

    // A portal starting on this database rewrites the claim as a document.
    let state = app.state().await;
    assert_eq!(app::claims::documents::upgrade_documents(&state.db, &state.keys).await.unwrap(), 0, "done at start");
    let (model, persons, harms) = layout(db.clone()).await;
    assert_eq!(model.document_format, app::claims::documents::DOCUMENT);
    assert_eq!((persons.len(), harms), (2, 0));
    assert_eq!(draft_of(&read().await), before, "the same draft from the document");

    for action in ["claim.document_downgraded", "claim.document_upgraded"] {
        let events = audit_event::Entity::find()
            .filter(audit_event::Column::Action.eq(action))
            .filter(audit_event::Column::SubjectId.eq(claim_id))
            .count(&db)
            .await
            .unwrap();
        assert_eq!(events, 1, "{action} audited");
    }
    let report = app.audit_report().await;
    assert!(report.ok, "the audit log verifies: {report:?}");
}
