//! The database handle: connecting (SQLite or PostgreSQL), running
//! migrations, and the write discipline. SQLite allows one writer at a time,
//! so on SQLite every write transaction first takes an in-process async lock
//! (fair, no busy-polling) and begins IMMEDIATE. On PostgreSQL the lock is a
//! no-op and row/advisory locks do the work.
use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;

use migration::{Migrator, MigratorTrait};
use rocket::tokio::sync::{Mutex, OwnedMutexGuard};
use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use sea_orm::{
    ConnectOptions, Database, DatabaseBackend, DatabaseConnection, DatabaseTransaction, DbErr, SqliteTransactionMode,
    TransactionOptions, TransactionTrait,
};

#[derive(Clone, Debug)]
pub struct Db {
    conn: DatabaseConnection,
    sqlite_writer: Option<Arc<Mutex<ChainHead>>>,
}

/// The audit chain's last (seq, hash) as this process last committed it.
/// Only kept on SQLite, where this process is the only writer it knows of;
/// `audit::append` falls back to the database if another process wrote.
#[derive(Debug, Default)]
pub struct ChainHead(Option<(i64, String)>);

/// A write transaction; holds the SQLite writer lock until commit or drop.
pub struct WriteTx {
    txn: DatabaseTransaction,
    writer: Option<OwnedMutexGuard<ChainHead>>,
    pending_head: std::sync::Mutex<Option<(i64, String)>>,
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
        // Only a committed append moves the cached head.
        if let (Some(mut head), Ok(Some(pending))) = (writer, pending_head.into_inner()) {
            head.0 = Some(pending);
        }
        Ok(())
    }

    /// The chain head known without a query, if any.
    pub fn cached_chain_head(&self) -> Option<(i64, String)> {
        let pending = self.pending_head.lock().ok().and_then(|p| p.clone());
        pending.or_else(|| self.writer.as_ref().and_then(|w| w.0.clone()))
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
                o.journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Normal)
                    .busy_timeout(Duration::from_secs(10))
                    .foreign_keys(true)
            });
        let conn = Database::connect(options).await?;
        let sqlite_writer = (conn.get_database_backend() == DatabaseBackend::Sqlite)
            .then(|| Arc::new(Mutex::new(ChainHead::default())));
        Ok(Self { conn, sqlite_writer })
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
            Some(lock) => {
                let guard = lock.clone().lock_owned().await;
                let txn = self
                    .conn
                    .begin_with_options(TransactionOptions {
                        sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
                        ..Default::default()
                    })
                    .await?;
                Ok(WriteTx { txn, writer: Some(guard), pending_head: Default::default() })
            }
            None => Ok(WriteTx { txn: self.conn.begin().await?, writer: None, pending_head: Default::default() }),
        }
    }

    pub async fn ping(&self) -> Result<(), DbErr> {
        self.conn.ping().await
    }
}
