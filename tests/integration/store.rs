//! The write path under concurrency: group commit on SQLite (one transaction
//! per batch of jobs, a savepoint per job), and the trip counter the intake
//! benchmark prints.
use app::audit::{self, Actor, Event};
use entities::audit_event;
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};

/// 48 writers at once, every fourth of which fails after its audit append:
/// each committed job is there, each failed one left nothing, the audit
/// chain verifies, and on SQLite the jobs shared transactions.
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
            tokio::task::yield_now().await;
            if n % 4 == 3 {
                drop(txn); // the job fails: its savepoint is rolled back
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
    // A failed job's batch is ended by a task of its own: wait for it.
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
    assert!(trips.transaction_control > 0 && trips.statements >= 48, "the app counted the trips: {trips:?}");
    if let (Some(after), Some(earlier)) = (db.writer_figures(), writers_before) {
        // The sequencer's passes are write jobs too.
        let jobs = (after - earlier).transactions;
        assert!(jobs >= 36, "the writer counts committed jobs: {jobs}");
        // Per job one SAVEPOINT and one RELEASE or ROLLBACK TO; per batch one
        // BEGIN and one COMMIT. Fewer than 48 batches means jobs shared one.
        let batches = (trips.transaction_control - 2 * 48) / 2;
        assert!(batches < 48, "jobs waiting on the writer joined open batches ({batches} batches for 48 jobs)");
    }
}
