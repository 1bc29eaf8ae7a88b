//! The database handle: connecting (SQLite or PostgreSQL), running
//! migrations, the write discipline, and the count of database trips.
//!
//! SQLite allows one writer at a time, so on SQLite every write job first
//! takes an in-process async lock (fair, no busy-polling) and runs in a
//! savepoint of a batch transaction (`BEGIN IMMEDIATE`) that jobs waiting
//! behind it join: the batch commits once for all of them, and each job is
//! answered after that commit (group commit). On PostgreSQL there is no such
//! lock: each job is a transaction of its own, and row and advisory locks do
//! the work.
use std::ops::Deref;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use migration::{Migrator, MigratorTrait};
use rocket::tokio::sync::{watch, Mutex, OwnedMutexGuard};
use sea_orm::sqlx::pool::PoolOptions;
use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseBackend, DatabaseConnection, DatabaseTransaction, DbErr,
    SqliteTransactionMode, TransactionOptions, TransactionTrait,
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

/// A write transaction; holds the SQLite writer lock until commit or drop.
pub struct WriteTx {
    txn: DatabaseTransaction,
    writer: Option<HeldWriter>,
    rollback: RollbackOnDrop,
    after_commit: std::sync::Mutex<Vec<AfterCommit>>,
}

/// Work to do once a transaction's changes are committed (dropping what a
/// cache in memory knew of them).
type AfterCommit = Box<dyn FnOnce() + Send>;

/// The writer lock as a job holds it: the state it guards, since when it
/// is held, and where to count it. Dropped without a commit (the job
/// failed), it ends the batch if no other writer is waiting to go on with it.
struct HeldWriter {
    state: Option<OwnedMutexGuard<WriterState>>,
    lock: Arc<Mutex<WriterState>>,
    since: Instant,
    stats: Arc<WriterStats>,
    waiting: Arc<AtomicU64>,
    trips: Arc<TripCounter>,
}

impl Drop for HeldWriter {
    fn drop(&mut self) {
        let Some(mut state) = self.state.take() else {
            return;
        };
        if state.batch.is_some() && self.waiting.load(Relaxed) == 0 {
            // The job's own savepoint is rolled back on the connection's next
            // use; the batch (other jobs' work) still has to commit.
            let trips = self.trips.clone();
            if let Ok(runtime) = rocket::tokio::runtime::Handle::try_current() {
                runtime.spawn(async move {
                    if let Err(e) = state.flush(&trips).await {
                        tracing::error!(error = %e, "a write batch did not commit");
                    }
                });
            }
        }
    }
}

impl Deref for WriteTx {
    type Target = DatabaseTransaction;
    fn deref(&self) -> &DatabaseTransaction {
        &self.txn
    }
}

/// A transaction that only reads (see [`Db::read`]).
pub struct ReadTx {
    txn: DatabaseTransaction,
    rollback: RollbackOnDrop,
}

impl Deref for ReadTx {
    type Target = DatabaseTransaction;
    fn deref(&self) -> &DatabaseTransaction {
        &self.txn
    }
}

impl ReadTx {
    /// End the reads and return the connection to the pool.
    pub async fn finish(self) -> Result<(), DbErr> {
        let ReadTx { txn, mut rollback } = self;
        if let Some(trips) = rollback.0.take() {
            TripCounter::add(&trips.transaction_control);
        }
        txn.commit().await
    }
}

/// See [`Db::read_then_write`].
pub enum Reads {
    Apart(ReadTx),
    InWrite(WriteTx),
}

impl Deref for Reads {
    type Target = DatabaseTransaction;
    fn deref(&self) -> &DatabaseTransaction {
        match self {
            Reads::Apart(reads) => reads,
            Reads::InWrite(txn) => txn,
        }
    }
}

impl Reads {
    /// The reads are done: the transaction to write in.
    pub async fn into_write(self, db: &Db) -> Result<WriteTx, DbErr> {
        match self {
            Reads::Apart(reads) => {
                reads.finish().await?;
                db.begin_write().await
            }
            Reads::InWrite(txn) => Ok(txn),
        }
    }
}

impl WriteTx {
    pub async fn commit(self) -> Result<(), DbErr> {
        let WriteTx { txn, writer, mut rollback, after_commit } = self;
        // COMMIT is a trip whether or not it succeeds; a failed one ends the
        // transaction too, so no ROLLBACK is counted after it.
        if let Some(trips) = rollback.0.take() {
            TripCounter::add(&trips.transaction_control);
        }
        txn.commit().await?;
        let result = Self::end_job(writer).await;
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

    /// A job's part after its own COMMIT (or savepoint release): on SQLite,
    /// end the batch or leave it to the next writer and wait for its commit.
    async fn end_job(writer: Option<HeldWriter>) -> Result<(), DbErr> {
        let Some(mut writer) = writer else {
            return Ok(());
        };
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
                // The job's savepoint. Should it fail, the batch is ended
                // (HeldWriter's drop), the jobs already in it committed.
                let txn = match state.batch.as_ref() {
                    Some(batch) => batch.outer.begin().await,
                    None => Err(DbErr::Custom("no write batch".into())),
                };
                let held = HeldWriter {
                    state: Some(state),
                    lock: writer.lock.clone(),
                    since,
                    stats: writer.stats.clone(),
                    waiting: writer.waiting.clone(),
                    trips: self.trips.clone(),
                };
                let txn = txn?;
                TripCounter::add(&self.trips.transaction_control);
                Ok(WriteTx { txn, writer: Some(held), rollback: self.rollback(), after_commit: Default::default() })
            }
            None => {
                let txn = self.conn.begin().await?;
                TripCounter::add(&self.trips.transaction_control);
                Ok(WriteTx { txn, writer: None, rollback: self.rollback(), after_commit: Default::default() })
            }
        }
    }

    /// Begin a transaction for a request's reads: they share one pooled
    /// connection (one acquire and one release ping for them all, not one
    /// each) and see one snapshot. End it with [`ReadTx::finish`].
    pub async fn read(&self) -> Result<ReadTx, DbErr> {
        let txn = self.conn.begin().await?;
        TripCounter::add(&self.trips.transaction_control);
        Ok(ReadTx { txn, rollback: self.rollback() })
    }

    /// Reads that a write follows. On PostgreSQL they run in the write
    /// transaction itself: one connection, one BEGIN and one COMMIT for the
    /// whole request. On SQLite, whose one writer must not wait on a
    /// request's reads, they run in a read transaction of their own, and
    /// [`Reads::into_write`] then waits for the writer.
    pub async fn read_then_write(&self) -> Result<Reads, DbErr> {
        Ok(match self.sqlite_writer {
            Some(_) => Reads::Apart(self.read().await?),
            None => Reads::InWrite(self.begin_write().await?),
        })
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
