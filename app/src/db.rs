//! The database handle: connecting (SQLite or PostgreSQL), running
//! migrations, and the write discipline. SQLite allows one writer at a time,
//! so on SQLite every write transaction first takes an in-process async lock
//! (fair, no busy-polling) and begins IMMEDIATE. On PostgreSQL the lock is a
//! no-op and row/advisory locks do the work.
use std::ops::Deref;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use migration::{Migrator, MigratorTrait};
use rocket::tokio::sync::{Mutex, OwnedMutexGuard};
use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseBackend, DatabaseConnection, DatabaseTransaction, DbErr,
    SqliteTransactionMode, TransactionOptions, TransactionTrait,
};

#[derive(Clone, Debug)]
pub struct Db {
    conn: DatabaseConnection,
    sqlite_writer: Option<SqliteWriter>,
}

/// SQLite's one writer: a connection of its own behind a fair async lock.
/// Its own connection means a write transaction never waits in the pool
/// behind readers while every other writer waits on it, and its page cache
/// stays warm (only this connection writes, so no other commit invalidates it).
#[derive(Clone, Debug)]
struct SqliteWriter {
    conn: DatabaseConnection,
    lock: Arc<Mutex<ChainHead>>,
    stats: Arc<WriterStats>,
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

/// The audit chain's last (seq, hash) as this process last committed it.
/// Only kept on SQLite, where this process is the only writer it knows of;
/// `audit::append` falls back to the database if another process wrote.
#[derive(Debug, Default)]
pub struct ChainHead(Option<(i64, String)>);

/// A write transaction; holds the SQLite writer lock until commit or drop.
pub struct WriteTx {
    txn: DatabaseTransaction,
    writer: Option<HeldWriter>,
    pending_head: std::sync::Mutex<Option<(i64, String)>>,
}

/// The writer lock as a transaction holds it: the chain head it guards,
/// since when it is held, and where to count it.
struct HeldWriter {
    head: OwnedMutexGuard<ChainHead>,
    since: Instant,
    stats: Arc<WriterStats>,
}

impl Deref for WriteTx {
    type Target = DatabaseTransaction;
    fn deref(&self) -> &DatabaseTransaction {
        &self.txn
    }
}

impl WriteTx {
    pub async fn commit(self) -> Result<(), DbErr> {
        let WriteTx { txn, writer, pending_head } = self;
        txn.commit().await?;
        if let Some(mut writer) = writer {
            writer.stats.transactions.fetch_add(1, Relaxed);
            writer.stats.held_ns.fetch_add(nanos(writer.since.elapsed()), Relaxed);
            // Only a committed append moves the cached head.
            if let Ok(Some(pending)) = pending_head.into_inner() {
                writer.head.0 = Some(pending);
            }
        }
        Ok(())
    }

    /// The chain head known without a query, if any.
    pub fn cached_chain_head(&self) -> Option<(i64, String)> {
        let pending = self.pending_head.lock().ok().and_then(|p| p.clone());
        pending.or_else(|| self.writer.as_ref().and_then(|w| w.head.0.clone()))
    }

    pub fn caches_chain_head(&self) -> bool {
        self.writer.is_some()
    }

    pub fn set_chain_head(&self, head: (i64, String)) {
        if let Ok(mut pending) = self.pending_head.lock() {
            *pending = Some(head);
        }
    }
}

impl Db {
    pub async fn connect(url: &str, max_connections: u32) -> Result<Self, DbErr> {
        let conn = Database::connect(Self::options(url, max_connections)).await?;
        let sqlite_writer = if conn.get_database_backend() == DatabaseBackend::Sqlite {
            // An in-memory database exists once per connection: there the
            // writer shares the pool (the lock still serialises writes).
            let shared = url.contains(":memory:") || url.contains("mode=memory");
            let writer = if shared { conn.clone() } else { Database::connect(Self::options(url, 1)).await? };
            Some(SqliteWriter {
                conn: writer,
                lock: Arc::new(Mutex::new(ChainHead::default())),
                stats: Default::default(),
            })
        } else {
            None
        };
        Ok(Self { conn, sqlite_writer })
    }

    fn options(url: &str, max_connections: u32) -> ConnectOptions {
        let mut options = ConnectOptions::new(url.to_owned());
        // An embedded SQLite connection cannot go stale; testing it before each
        // use would cost a round trip to its worker thread per statement.
        let embedded = url.starts_with("sqlite:");
        options
            .test_before_acquire(!embedded)
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
                let head = writer.lock.clone().lock_owned().await;
                let since = Instant::now();
                writer.stats.waited_ns.fetch_add(nanos(since - asked), Relaxed);
                let txn = writer
                    .conn
                    .begin_with_options(TransactionOptions {
                        sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
                        ..Default::default()
                    })
                    .await?;
                let writer = HeldWriter { head, since, stats: writer.stats.clone() };
                Ok(WriteTx { txn, writer: Some(writer), pending_head: Default::default() })
            }
            None => Ok(WriteTx { txn: self.conn.begin().await?, writer: None, pending_head: Default::default() }),
        }
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
        let _held = writer.lock.clone().lock_owned().await;
        writer.conn.execute_unprepared("PRAGMA wal_checkpoint(TRUNCATE)").await?;
        Ok(())
    }

    pub async fn ping(&self) -> Result<(), DbErr> {
        self.conn.ping().await
    }
}
