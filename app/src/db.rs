//! The database handle: connecting (SQLite or PostgreSQL), running
//! migrations, the write discipline, and the count of database trips.
//!
//! A request that writes does its reads and its writes in one [`WriteTx`].
//!
//! SQLite allows one writer at a time, so on SQLite every write job first
//! takes an in-process async lock (fair, no busy-polling) and runs in a
//! savepoint of a batch transaction (`BEGIN IMMEDIATE`) on the writer's own
//! connection, which jobs waiting behind it join: the batch commits once for
//! all of them, and each job is answered after that commit (group commit).
//! A job's reads run under the lock too: an in-process SQLite read costs
//! less than the pool acquire, release ping, BEGIN and COMMIT a read
//! transaction of its own would, and what it read cannot change before it
//! writes. Its savepoint and its writes that nobody waits for go in the same
//! command as its next query (SQLite runs several statements of one command
//! in turn, each bound to its share of the values), so a typical request is
//! three or four trips to the driver.
//!
//! On PostgreSQL there is no such lock: each job is a transaction of its
//! own on a pooled connection, and row locks do the work.
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use migration::{Migrator, MigratorTrait};
use rocket::tokio::sync::{watch, Mutex, OwnedMutexGuard};
use sea_orm::sqlx::pool::PoolOptions;
use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseBackend, DatabaseConnection, DatabaseTransaction, DbErr,
    ExecResult, QueryResult, SqliteTransactionMode, Statement, TransactionOptions, TransactionTrait,
};

/// Count a pool's acquires and the ping it sends when a connection returns.
fn count_pool_trips<DB: sea_orm::sqlx::Database>(
    options: PoolOptions<DB>,
    trips: &Arc<TripCounter>,
) -> PoolOptions<DB> {
    let (acquired, released) = (trips.clone(), trips.clone());
    options
        .before_acquire(move |_, _| {
            TripCounter::add(&acquired.acquires);
            Box::pin(async { Ok(true) })
        })
        .after_release(move |_, _| {
            TripCounter::add(&released.pings);
            Box::pin(async { Ok(true) })
        })
}

/// Count every statement SeaORM sends on `conn` and the transactions it opens.
fn count_statements(conn: &mut DatabaseConnection, trips: &Arc<TripCounter>) {
    let trips = trips.clone();
    conn.set_metric_callback(move |_| TripCounter::add(&trips.statements));
}

#[derive(Clone, Debug)]
pub struct Db {
    conn: DatabaseConnection,
    sqlite_writer: Option<SqliteWriter>,
    trips: Arc<TripCounter>,
}

/// Every trip this process makes to the database driver: statements
/// (counted by SeaORM's metric hook), BEGIN, COMMIT and ROLLBACK (counted
/// where [`Db`] issues them), connection acquires from a pool and the ping
/// the pool sends when a connection is returned (counted by the pool's
/// hooks). On SQLite each is a hand-off to the connection's worker thread;
/// on PostgreSQL each is a network round trip. The intake benchmark prints
/// them per intake.
#[derive(Debug, Default)]
pub struct TripCounter {
    statements: AtomicU64,
    transaction_control: AtomicU64,
    acquires: AtomicU64,
    pings: AtomicU64,
}

/// A reading of [`TripCounter`]; subtract two to get the figures of a period.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TripFigures {
    pub statements: u64,
    /// BEGIN, COMMIT and ROLLBACK.
    pub transaction_control: u64,
    pub acquires: u64,
    pub pings: u64,
}

impl TripFigures {
    pub fn total(&self) -> u64 {
        self.statements + self.transaction_control + self.acquires + self.pings
    }
}

impl std::ops::Sub for TripFigures {
    type Output = TripFigures;
    fn sub(self, earlier: TripFigures) -> TripFigures {
        TripFigures {
            statements: self.statements.saturating_sub(earlier.statements),
            transaction_control: self.transaction_control.saturating_sub(earlier.transaction_control),
            acquires: self.acquires.saturating_sub(earlier.acquires),
            pings: self.pings.saturating_sub(earlier.pings),
        }
    }
}

impl TripCounter {
    fn add(counter: &AtomicU64) {
        counter.fetch_add(1, Relaxed);
    }

    fn figures(&self) -> TripFigures {
        TripFigures {
            statements: self.statements.load(Relaxed),
            transaction_control: self.transaction_control.load(Relaxed),
            acquires: self.acquires.load(Relaxed),
            pings: self.pings.load(Relaxed),
        }
    }
}

/// Counts the ROLLBACK of a write transaction dropped without commit.
struct RollbackOnDrop(Option<Arc<TripCounter>>);

impl Drop for RollbackOnDrop {
    fn drop(&mut self) {
        if let Some(trips) = self.0.take() {
            TripCounter::add(&trips.transaction_control);
        }
    }
}

/// SQLite's one writer: a connection of its own behind a fair async lock.
/// Its own connection means a write transaction never waits in the pool
/// behind readers while every other writer waits on it, and its page cache
/// stays warm (only this connection writes, so no other commit invalidates it).
#[derive(Clone, Debug)]
struct SqliteWriter {
    conn: DatabaseConnection,
    lock: Arc<Mutex<WriterState>>,
    /// Tasks waiting for the lock: while there are any, a committing job
    /// leaves the batch open for them instead of committing it.
    waiting: Arc<AtomicU64>,
    stats: Arc<WriterStats>,
}

/// Most jobs one batch holds before it is committed, waiting writers or not.
const MAX_BATCH: usize = 64;

/// How long a job left in an open batch waits for its commit before it
/// makes sure someone is still there to commit it.
const BATCH_PATIENCE: Duration = Duration::from_millis(200);

/// A task counted among those waiting for the writer lock, until it has the
/// lock or is dropped (a request that goes away while it waits).
struct Waiting(Arc<AtomicU64>);

impl Waiting {
    fn new(count: &Arc<AtomicU64>) -> Self {
        count.fetch_add(1, Relaxed);
        Self(count.clone())
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Relaxed);
    }
}

/// What the SQLite writer lock guards: the batch being filled.
#[derive(Debug, Default)]
pub struct WriterState {
    batch: Option<Batch>,
    batches: u64,
}

/// A group commit: one SQLite transaction holding the jobs of several
/// requests, each in a savepoint of its own (one job's failure rolls back
/// only that job). Every job's caller is answered after the batch commits.
#[derive(Debug)]
struct Batch {
    outer: DatabaseTransaction,
    /// Jobs released into the batch, waiting for its commit.
    jobs: usize,
    /// Tells this batch from the next.
    generation: u64,
    done: watch::Sender<Option<Result<(), String>>>,
}

impl WriterState {
    /// Commit the open batch, if any, and tell every job in it how it went.
    async fn flush(&mut self, trips: &TripCounter) -> Result<(), DbErr> {
        let Some(batch) = self.batch.take() else {
            return Ok(());
        };
        TripCounter::add(&trips.transaction_control);
        let result = batch.outer.commit().await;
        let _ = batch.done.send(Some(result.as_ref().map(|_| ()).map_err(|e| e.to_string())));
        result
    }
}

/// How the SQLite writer lock has been used since start-up: committed write
/// transactions, time they held the lock (from taking it to the end of
/// COMMIT) and time spent waiting for it. Two atomic additions a commit; the
/// intake benchmark reports them to show what bounds write throughput.
#[derive(Debug, Default)]
struct WriterStats {
    transactions: AtomicU64,
    held_ns: AtomicU64,
    waited_ns: AtomicU64,
}

/// A reading of [`WriterStats`]; subtract two to get the figures of a period.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct WriterFigures {
    pub transactions: u64,
    pub held: Duration,
    pub waited: Duration,
}

impl std::ops::Sub for WriterFigures {
    type Output = WriterFigures;
    fn sub(self, earlier: WriterFigures) -> WriterFigures {
        WriterFigures {
            transactions: self.transactions.saturating_sub(earlier.transactions),
            held: self.held.saturating_sub(earlier.held),
            waited: self.waited.saturating_sub(earlier.waited),
        }
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// A write transaction. On PostgreSQL, a transaction of its own. On SQLite,
/// a job in the writer's open batch: it holds the writer lock until it
/// commits or is dropped, and its statements run in the batch's transaction
/// behind a savepoint of its own, which the batch's COMMIT ends (a job that
/// fails is rolled back to it). The savepoint goes with the job's first
/// query in one command; writes whose results nobody waits for
/// ([`WriteTx::write_later`]) go with the next statement or the commit.
/// Statements run on it through [`ConnectionTrait`].
pub struct WriteTx {
    inner: Inner,
    /// Writes to send before the next statement, in the same command.
    later: std::sync::Mutex<Vec<Statement>>,
    rollback: RollbackOnDrop,
    after_commit: std::sync::Mutex<Vec<AfterCommit>>,
}

enum Inner {
    /// PostgreSQL: a transaction of the job's own.
    Own(DatabaseTransaction),
    /// SQLite: the writer lock, and the batch's transaction behind it.
    Job(HeldWriter),
}

/// Work to do once a transaction's changes are committed (dropping what a
/// cache in memory knew of them).
type AfterCommit = Box<dyn FnOnce() + Send>;

/// The SQLite job's savepoint. One name for all: SQLite rolls back to the
/// newest savepoint of a name, which is the failing job's own.
const JOB_SAVEPOINT: &str = "SAVEPOINT job";

/// Where a SQLite job's savepoint stands.
const SAVEPOINT_DUE: u8 = 0;
const SAVEPOINT_SET: u8 = 1;
/// A command that carried the savepoint failed: whether the savepoint was
/// set is unknown, so rolling back to "the newest" could reach another
/// job's. The batch then ends without a commit.
const SAVEPOINT_UNKNOWN: u8 = 2;

/// The writer lock as a job holds it: the state it guards, since when it
/// is held, and where to count it. Dropped without a commit (the job
/// failed), it rolls the job back to its savepoint and ends the batch if no
/// other writer is waiting to go on with it.
struct HeldWriter {
    state: Option<OwnedMutexGuard<WriterState>>,
    lock: Arc<Mutex<WriterState>>,
    since: Instant,
    stats: Arc<WriterStats>,
    waiting: Arc<AtomicU64>,
    trips: Arc<TripCounter>,
    savepoint: AtomicU8,
}

impl HeldWriter {
    fn batch(&self) -> Result<&DatabaseTransaction, DbErr> {
        self.state
            .as_ref()
            .and_then(|s| s.batch.as_ref())
            .map(|b| &b.outer)
            .ok_or_else(|| DbErr::Custom("no write batch".into()))
    }
}

impl Drop for HeldWriter {
    fn drop(&mut self) {
        let Some(mut state) = self.state.take() else {
            return;
        };
        let savepoint = self.savepoint.load(Relaxed);
        if savepoint == SAVEPOINT_UNKNOWN {
            // The jobs already in the batch are told it ended uncommitted;
            // its transaction rolls back as it is dropped.
            tracing::error!("a write job failed where its savepoint may not be set: its batch ends uncommitted");
            state.batch = None;
            return;
        }
        let roll_back = savepoint == SAVEPOINT_SET;
        if !roll_back && (state.batch.is_none() || self.waiting.load(Relaxed) > 0) {
            // Nothing of the job reached the batch; the next writer goes on with it.
            return;
        }
        let (trips, waiting) = (self.trips.clone(), self.waiting.clone());
        let Ok(runtime) = rocket::tokio::runtime::Handle::try_current() else {
            state.batch = None;
            return;
        };
        // The lock goes with the task: no other job runs before it is done.
        runtime.spawn(async move {
            if roll_back {
                if let Some(batch) = state.batch.as_ref() {
                    TripCounter::add(&trips.transaction_control);
                    if let Err(e) = batch.outer.execute_unprepared("ROLLBACK TO job").await {
                        tracing::error!(error = %e, "a failed write job could not be rolled back: its batch ends uncommitted");
                        state.batch = None;
                    }
                }
            }
            // The batch still holds other jobs' work: commit it unless a
            // writer is waiting to go on with it.
            if state.batch.is_some() && waiting.load(Relaxed) == 0 {
                if let Err(e) = state.flush(&trips).await {
                    tracing::error!(error = %e, "a write batch did not commit");
                }
            }
        });
    }
}

/// Statements joined into one command (SQLite runs them in turn, binding
/// each its share of the values).
fn one_command(parts: impl IntoIterator<Item = Statement>, backend: DatabaseBackend) -> Statement {
    let mut sql = Vec::new();
    let mut values = Vec::new();
    for part in parts {
        sql.push(part.sql);
        values.extend(part.values.map(|v| v.0).unwrap_or_default());
    }
    Statement { sql: sql.join(";\n"), values: Some(sea_orm::Values(values)), db_backend: backend }
}

impl WriteTx {
    fn conn(&self) -> Result<&DatabaseTransaction, DbErr> {
        match &self.inner {
            Inner::Own(txn) => Ok(txn),
            Inner::Job(held) => held.batch(),
        }
    }

    /// The connection for a write, with what must go first sent on SQLite:
    /// the writes left for later (in the job's order; with the savepoint,
    /// if not yet set, in one command), else the savepoint on its own. A
    /// write can fail on a constraint, and its failure must roll back to
    /// this job's savepoint, so the write itself never carries it; nor the
    /// writes left for later, whose rows the command's count would include.
    async fn for_write(&self) -> Result<&DatabaseTransaction, DbErr> {
        let conn = self.conn()?;
        let Inner::Job(held) = &self.inner else {
            return Ok(conn);
        };
        let later: Vec<Statement> = self.later.lock().map(|mut l| std::mem::take(&mut *l)).unwrap_or_default();
        if !later.is_empty() {
            let (_, command, carried) = self.for_query(one_command(later, DatabaseBackend::Sqlite))?;
            self.settle(conn.execute_raw(command).await, carried)?;
        }
        if held.savepoint.load(Relaxed) == SAVEPOINT_DUE {
            TripCounter::add(&held.trips.transaction_control);
            conn.execute_unprepared(JOB_SAVEPOINT).await?;
            held.savepoint.store(SAVEPOINT_SET, Relaxed);
        }
        Ok(conn)
    }

    /// A query with what must go first on SQLite, in the same command: the
    /// job's savepoint if not yet set, and the writes left for later. Also
    /// says whether the command carries the savepoint.
    fn for_query(&self, stmt: Statement) -> Result<(&DatabaseTransaction, Statement, bool), DbErr> {
        let conn = self.conn()?;
        let Inner::Job(held) = &self.inner else {
            return Ok((conn, stmt, false));
        };
        let backend = stmt.db_backend;
        let mut first = Vec::new();
        let carries = held.savepoint.swap(SAVEPOINT_SET, Relaxed) == SAVEPOINT_DUE;
        if carries {
            first.push(Statement::from_string(backend, JOB_SAVEPOINT));
        }
        if let Ok(mut later) = self.later.lock() {
            first.append(&mut later);
        }
        if first.is_empty() {
            return Ok((conn, stmt, false));
        }
        first.push(stmt);
        Ok((conn, one_command(first, backend), carries))
    }

    /// A command's result; when it carried the savepoint and failed,
    /// whether the savepoint is set is unknown.
    fn settle<T>(&self, result: Result<T, DbErr>, carried: bool) -> Result<T, DbErr> {
        if let (Err(_), true, Inner::Job(held)) = (&result, carried, &self.inner) {
            held.savepoint.store(SAVEPOINT_UNKNOWN, Relaxed);
        }
        result
    }

    /// A write whose result nobody waits for (an audit event): on SQLite it
    /// goes with the job's next statement or its commit, in the same
    /// command (before it: the job's order is kept); on PostgreSQL it runs
    /// now. Only for writes that cannot fail on a constraint: should one
    /// fail where it carried the job's savepoint, the whole batch ends
    /// without a commit (see [`SAVEPOINT_UNKNOWN`]).
    pub async fn write_later(&self, stmt: Statement) -> Result<(), DbErr> {
        if let Inner::Job(_) = &self.inner {
            if let Ok(mut later) = self.later.lock() {
                later.push(stmt);
                return Ok(());
            }
        }
        self.execute_raw(stmt).await.map(|_| ())
    }

    pub async fn commit(self) -> Result<(), DbErr> {
        let WriteTx { inner, later, mut rollback, after_commit } = self;
        let result = match inner {
            Inner::Own(txn) => {
                // COMMIT is a trip whether or not it succeeds; a failed one
                // ends the transaction too, so no ROLLBACK is counted after it.
                if let Some(trips) = rollback.0.take() {
                    TripCounter::add(&trips.transaction_control);
                }
                txn.commit().await
            }
            Inner::Job(held) => {
                // A job is not a transaction: its savepoint stays for the
                // batch's COMMIT to end, and nothing is rolled back.
                rollback.0 = None;
                // The job's last writes, in one command.
                let later = later.into_inner().unwrap_or_default();
                let tx = WriteTx {
                    inner: Inner::Job(held),
                    later: std::sync::Mutex::new(later),
                    rollback,
                    after_commit: Default::default(),
                };
                // Sent as a query, so that the savepoint, if due, goes in
                // the same command (no rows are read).
                let pending = tx.later.lock().map(|mut l| l.pop()).unwrap_or_default();
                if let Some(last) = pending {
                    tx.query_all_raw(last).await?;
                }
                match tx.inner {
                    Inner::Job(held) => Self::end_job(held).await,
                    Inner::Own(_) => Ok(()),
                }
            }
        };
        if result.is_ok() {
            for work in after_commit.into_inner().unwrap_or_default() {
                work();
            }
        }
        result
    }

    /// Run `work` once this transaction has committed (never if it does not).
    pub fn on_commit(&self, work: impl FnOnce() + Send + 'static) {
        if let Ok(mut queued) = self.after_commit.lock() {
            queued.push(Box::new(work));
        }
    }

    /// A job's part after its last statement: end the batch, or leave it
    /// to the next writer and wait for its commit.
    async fn end_job(mut writer: HeldWriter) -> Result<(), DbErr> {
        let Some(mut state) = writer.state.take() else {
            return Ok(());
        };
        writer.stats.transactions.fetch_add(1, Relaxed);
        let Some(batch) = state.batch.as_mut() else {
            return Ok(());
        };
        batch.jobs += 1;
        if writer.waiting.load(Relaxed) == 0 || batch.jobs >= MAX_BATCH {
            let result = state.flush(&writer.trips).await;
            writer.stats.held_ns.fetch_add(nanos(writer.since.elapsed()), Relaxed);
            return result;
        }
        // Another writer is waiting: it goes on with this batch, and whoever
        // ends the batch tells this job how the commit went.
        let mut done = batch.done.subscribe();
        let generation = batch.generation;
        writer.stats.held_ns.fetch_add(nanos(writer.since.elapsed()), Relaxed);
        drop(state);
        loop {
            let outcome = match rocket::tokio::time::timeout(BATCH_PATIENCE, done.wait_for(Option::is_some)).await {
                Ok(Ok(seen)) => Some(seen.clone()),
                Ok(Err(_)) => Some(None),
                Err(_) => None,
            };
            match outcome {
                Some(Some(Ok(()))) => return Ok(()),
                Some(Some(Err(e))) => return Err(DbErr::Custom(format!("the write batch did not commit: {e}"))),
                Some(None) => return Err(DbErr::Custom("the write batch ended without a commit".into())),
                // The writer that was waiting went away (its request was
                // dropped): take the lock and end the batch if it is still open.
                None => {
                    let waiting = Waiting::new(&writer.waiting);
                    let mut state = writer.lock.clone().lock_owned().await;
                    drop(waiting);
                    if state.batch.as_ref().is_some_and(|b| b.generation == generation) {
                        let _ = state.flush(&writer.trips).await;
                    }
                }
            }
        }
    }
}

#[async_trait::async_trait]
impl ConnectionTrait for WriteTx {
    fn get_database_backend(&self) -> DatabaseBackend {
        match &self.inner {
            Inner::Own(txn) => txn.get_database_backend(),
            Inner::Job(_) => DatabaseBackend::Sqlite,
        }
    }

    async fn execute_raw(&self, stmt: Statement) -> Result<ExecResult, DbErr> {
        self.for_write().await?.execute_raw(stmt).await
    }

    async fn execute_unprepared(&self, sql: &str) -> Result<ExecResult, DbErr> {
        self.for_write().await?.execute_unprepared(sql).await
    }

    async fn query_one_raw(&self, stmt: Statement) -> Result<Option<QueryResult>, DbErr> {
        let (conn, stmt, carried) = self.for_query(stmt)?;
        self.settle(conn.query_one_raw(stmt).await, carried)
    }

    async fn query_all_raw(&self, stmt: Statement) -> Result<Vec<QueryResult>, DbErr> {
        let (conn, stmt, carried) = self.for_query(stmt)?;
        self.settle(conn.query_all_raw(stmt).await, carried)
    }
}

impl Db {
    pub async fn connect(url: &str, max_connections: u32) -> Result<Self, DbErr> {
        let trips = Arc::new(TripCounter::default());
        let mut conn = Database::connect(Self::options(url, max_connections, &trips)).await?;
        count_statements(&mut conn, &trips);
        let sqlite_writer = if conn.get_database_backend() == DatabaseBackend::Sqlite {
            // An in-memory database exists once per connection: there the
            // writer shares the pool (the lock still serialises writes).
            let shared = url.contains(":memory:") || url.contains("mode=memory");
            let writer = if shared {
                conn.clone()
            } else {
                let mut writer = Database::connect(Self::options(url, 1, &trips)).await?;
                count_statements(&mut writer, &trips);
                writer
            };
            Some(SqliteWriter {
                conn: writer,
                lock: Arc::new(Mutex::new(WriterState::default())),
                waiting: Default::default(),
                stats: Default::default(),
            })
        } else {
            None
        };
        Ok(Self { conn, sqlite_writer, trips })
    }

    fn options(url: &str, max_connections: u32, trips: &Arc<TripCounter>) -> ConnectOptions {
        let mut options = ConnectOptions::new(url.to_owned());
        // No ping before each use: it would cost a round trip per acquire. A
        // connection that broke while idle fails its statement, and the pool
        // replaces it (the ping the pool sends on release already finds most).
        let (sqlite_trips, pg_trips) = (trips.clone(), trips.clone());
        options
            .test_before_acquire(false)
            .map_sqlx_sqlite_pool_opts(move |o| count_pool_trips(o, &sqlite_trips))
            .map_sqlx_postgres_pool_opts(move |o| count_pool_trips(o, &pg_trips))
            .max_connections(max_connections)
            .min_connections(1)
            .connect_timeout(Duration::from_secs(5))
            .acquire_timeout(Duration::from_secs(10))
            // Statement logging could carry values into logs (S12).
            .sqlx_logging(false)
            .map_sqlx_sqlite_opts(|o| {
                // Freed pages are overwritten with zeros: erased rows and
                // destroyed keys do not linger in free pages (S19).
                o.pragma("secure_delete", "ON")
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Normal)
                    .busy_timeout(Duration::from_secs(10))
                    .foreign_keys(true)
            });
        options
    }

    pub async fn migrate(&self) -> Result<(), DbErr> {
        Migrator::up(&self.conn, None).await
    }

    pub fn conn(&self) -> &DatabaseConnection {
        &self.conn
    }

    pub fn backend(&self) -> DatabaseBackend {
        self.conn.get_database_backend()
    }

    /// Begin a transaction that will write.
    pub async fn begin_write(&self) -> Result<WriteTx, DbErr> {
        match &self.sqlite_writer {
            Some(writer) => {
                let asked = Instant::now();
                let waiting = Waiting::new(&writer.waiting);
                let mut state = writer.lock.clone().lock_owned().await;
                drop(waiting);
                let since = Instant::now();
                writer.stats.waited_ns.fetch_add(nanos(since - asked), Relaxed);
                if state.batch.is_none() {
                    let outer = writer
                        .conn
                        .begin_with_options(TransactionOptions {
                            sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
                            ..Default::default()
                        })
                        .await?;
                    TripCounter::add(&self.trips.transaction_control);
                    state.batches += 1;
                    let generation = state.batches;
                    state.batch = Some(Batch { outer, jobs: 0, generation, done: watch::channel(None).0 });
                }
                // The job's savepoint is set with its first statement.
                let held = HeldWriter {
                    state: Some(state),
                    lock: writer.lock.clone(),
                    since,
                    stats: writer.stats.clone(),
                    waiting: writer.waiting.clone(),
                    trips: self.trips.clone(),
                    savepoint: AtomicU8::new(SAVEPOINT_DUE),
                };
                // A job that fails is rolled back (and counted) by HeldWriter.
                let rollback = RollbackOnDrop(None);
                Ok(WriteTx {
                    inner: Inner::Job(held),
                    later: Default::default(),
                    rollback,
                    after_commit: Default::default(),
                })
            }
            None => {
                let txn = self.conn.begin().await?;
                TripCounter::add(&self.trips.transaction_control);
                Ok(WriteTx {
                    inner: Inner::Own(txn),
                    later: Default::default(),
                    rollback: self.rollback(),
                    after_commit: Default::default(),
                })
            }
        }
    }

    fn rollback(&self) -> RollbackOnDrop {
        RollbackOnDrop(Some(self.trips.clone()))
    }

    /// The database trips this process has made so far.
    pub fn trip_figures(&self) -> TripFigures {
        self.trips.figures()
    }

    /// The SQLite writer lock's figures so far (`None` on PostgreSQL, which
    /// has no such lock).
    pub fn writer_figures(&self) -> Option<WriterFigures> {
        self.sqlite_writer.as_ref().map(|w| WriterFigures {
            transactions: w.stats.transactions.load(Relaxed),
            held: Duration::from_nanos(w.stats.held_ns.load(Relaxed)),
            waited: Duration::from_nanos(w.stats.waited_ns.load(Relaxed)),
        })
    }

    /// After an erasure on SQLite: copy the write-ahead log into the
    /// database (secure_delete zeroes the pages it frees) and truncate the
    /// log, whose old page images still hold what was erased. Taken under
    /// the writer lock. On PostgreSQL this does nothing: old row versions
    /// stay in its files until VACUUM reclaims them (the README's limits).
    pub async fn purge_freed_pages(&self) -> Result<(), DbErr> {
        let Some(writer) = &self.sqlite_writer else {
            return Ok(());
        };
        let mut held = writer.lock.clone().lock_owned().await;
        held.flush(&self.trips).await?;
        writer.conn.execute_unprepared("PRAGMA wal_checkpoint(TRUNCATE)").await?;
        Ok(())
    }

    pub async fn ping(&self) -> Result<(), DbErr> {
        TripCounter::add(&self.trips.pings);
        self.conn.ping().await
    }
}
