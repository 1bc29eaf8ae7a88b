//! What this process knows of the sessions it has seen, so that a signed-in
//! request is checked without a database read.
//!
//! A session token is a signed JWT naming the session and its account; the
//! signature and expiry are checked on every request. What the token cannot
//! say (revoked, the account disabled, the second factor passed, the last
//! use) lives in the `sessions` and `users` rows, read once and remembered
//! here. Every change to them is made through [`SessionCache::forget_after`]
//! in the transaction that changes them, which
//! - drops the account's entries in this process once it commits;
//! - raises the `session_changes` counter: every app server reads it every
//!   [`WATCH_EVERY`] and drops all it remembered when it has moved, so a
//!   change made by another process (a second app server, the operator's
//!   CLI on the same SQLite file) is seen within a second;
//! - on PostgreSQL, sends a notification on [`CHANNEL`], which every app
//!   server listening receives within milliseconds.
//!
//! An entry is trusted while the counter is being watched (read within the
//! last [`RECHECK_AFTER`]); should the watch stop, entries fall back to being
//! read again after [`RECHECK_AFTER`]. A read that began before entries were
//! dropped is not remembered after. Every rule is still applied to each
//! request: expiry and the idle timeout against the request's own "now" (an
//! entry that looks idle is read again: another server may have seen the
//! session since), the last use written at most once a minute.
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use entities::{session, session_change, user};
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{ColumnTrait, ConnectionTrait, DatabaseBackend, DbErr, EntityTrait, QueryFilter, Statement};
use uuid::Uuid;

use super::Role;
use crate::db::{Db, WriteTx};

/// The PostgreSQL notification channel that names accounts whose sessions changed.
pub const CHANNEL: &str = "portal_sessions";

/// How long a read of a session is trusted when the change counter is not
/// being watched, and how recent the last read of the counter must be for
/// entries to be trusted longer.
pub const RECHECK_AFTER: Duration = Duration::from_secs(1);

/// How often the change counter is read.
pub const WATCH_EVERY: Duration = Duration::from_millis(500);

/// The longest an entry is trusted, watched or not.
const TRUST_AT_MOST: Duration = Duration::from_secs(300);

/// Above this many entries, stale ones are dropped before another is added.
const MAX_ENTRIES: usize = 50_000;

/// A session as the database last said, with its account.
#[derive(Clone, Debug)]
pub struct Known {
    pub user_id: Uuid,
    pub session_id: Uuid,
    pub role: Role,
    pub usable: bool,
    pub expires_at: DateTime<Utc>,
    pub mfa: bool,
    pub reauthenticated_at: Option<DateTime<Utc>>,
    pub must_change_password: bool,
    /// The account's address is proven (the confirmation link was opened).
    pub email_confirmed: bool,
    /// The last use recorded in the database (or by this process since).
    pub last_seen: DateTime<Utc>,
}

impl Known {
    /// `None` when the row names a role this build does not know.
    pub fn from_rows(session: &session::Model, user: &user::Model) -> Option<Self> {
        Some(Self {
            user_id: user.id,
            session_id: session.id,
            role: Role::parse(&user.role)?,
            usable: session.user_id == user.id && session.revoked_at.is_none() && !user.disabled,
            expires_at: session.expires_at,
            mfa: session.mfa_verified_at.is_some(),
            reauthenticated_at: session.reauthenticated_at,
            must_change_password: user.must_change_password,
            email_confirmed: user.email_verified_at.is_some(),
            last_seen: session.last_seen_at.unwrap_or(session.created_at),
        })
    }
}

#[derive(Debug, Default)]
pub struct SessionCache {
    entries: Mutex<HashMap<Uuid, (Instant, Known)>>,
    /// Raised whenever entries are dropped.
    generation: AtomicU64,
    /// When the change counter was last read.
    watched_at: Mutex<Option<Instant>>,
}

impl SessionCache {
    /// The session as last read, if that read is still trusted.
    pub fn fresh(&self, session_id: Uuid) -> Option<Known> {
        let watched = self.watched_at.lock().ok()?.is_some_and(|at| at.elapsed() < RECHECK_AFTER);
        let entries = self.entries.lock().ok()?;
        entries
            .get(&session_id)
            .filter(|(at, _)| at.elapsed() < RECHECK_AFTER || (watched && at.elapsed() < TRUST_AT_MOST))
            .map(|(_, known)| known.clone())
    }

    /// Take before reading a session, to hand to [`Self::remember`].
    pub fn generation(&self) -> u64 {
        self.generation.load(SeqCst)
    }

    /// Remember what a read said, unless entries were dropped since the
    /// read began (`generation`): it may predate the change that dropped them.
    pub fn remember(&self, known: Known, generation: u64) {
        if let Ok(mut entries) = self.entries.lock() {
            if self.generation.load(SeqCst) != generation {
                return;
            }
            if entries.len() >= MAX_ENTRIES {
                entries.retain(|_, (at, _)| at.elapsed() < TRUST_AT_MOST);
            }
            entries.insert(known.session_id, (Instant::now(), known));
        }
    }

    /// Read the change counter every [`WATCH_EVERY`] for as long as the
    /// server runs, and drop every entry when it has moved.
    pub fn watch(self: Arc<Self>, db: &Db) {
        let db = db.clone();
        rocket::tokio::spawn(async move {
            let mut last: Option<i64> = None;
            loop {
                match session_change::Entity::find_by_id(1).one(db.conn()).await {
                    Ok(Some(row)) => {
                        // The first reading has nothing to compare with:
                        // whatever was remembered before it is dropped.
                        if last != Some(row.epoch) {
                            self.forget_all();
                        }
                        last = Some(row.epoch);
                        if let Ok(mut at) = self.watched_at.lock() {
                            *at = Some(Instant::now());
                        }
                    }
                    Ok(None) => tracing::warn!("the session change counter is missing"),
                    Err(e) => tracing::warn!(error = %e, "cannot read the session change counter"),
                }
                rocket::tokio::time::sleep(WATCH_EVERY).await;
            }
        });
    }

    /// This process recorded a use of the session.
    pub fn seen(&self, session_id: Uuid, at: DateTime<Utc>) {
        if let Ok(mut entries) = self.entries.lock() {
            if let Some((_, known)) = entries.get_mut(&session_id) {
                known.last_seen = at;
            }
        }
    }

    /// Something about the account or its sessions changes in `txn`: once
    /// it commits, the next request of any of its sessions reads them again
    /// (after the commit, so a request in between cannot cache the old rows).
    /// On PostgreSQL the other app servers are told through [`CHANNEL`].
    pub async fn forget_after(self: &Arc<Self>, txn: &WriteTx, user_id: Uuid) -> Result<(), DbErr> {
        let sessions = self.clone();
        txn.on_commit(move || sessions.forget_user(user_id));
        session_change::Entity::update_many()
            .col_expr(session_change::Column::Epoch, Expr::col(session_change::Column::Epoch).add(1))
            .filter(session_change::Column::Id.eq(1))
            .exec(txn)
            .await?;
        if txn.get_database_backend() == DatabaseBackend::Postgres {
            txn.execute_raw(Statement::from_sql_and_values(
                DatabaseBackend::Postgres,
                "SELECT pg_notify($1, $2)",
                [CHANNEL.into(), user_id.to_string().into()],
            ))
            .await?;
        }
        Ok(())
    }

    /// On PostgreSQL, listen on [`CHANNEL`] for as long as the server runs
    /// and drop the entries of each account named.
    pub fn listen(self: Arc<Self>, db: &Db) {
        use sea_orm::sqlx::postgres::PgListener;
        if db.conn().get_database_backend() != DatabaseBackend::Postgres {
            return;
        }
        let pool = db.conn().get_postgres_connection_pool().clone();
        rocket::tokio::spawn(async move {
            loop {
                match PgListener::connect_with(&pool).await {
                    Ok(mut listener) => match listener.listen(CHANNEL).await {
                        Ok(()) => {
                            // Whatever was missed while not listening.
                            self.forget_all();
                            loop {
                                match listener.recv().await {
                                    Ok(note) => match Uuid::parse_str(note.payload()) {
                                        Ok(user_id) => self.forget_user(user_id),
                                        Err(_) => self.forget_all(),
                                    },
                                    Err(e) => {
                                        tracing::warn!(error = %e, "session notifications interrupted");
                                        break;
                                    }
                                }
                            }
                        }
                        Err(e) => tracing::warn!(error = %e, "cannot listen for session notifications"),
                    },
                    Err(e) => tracing::warn!(error = %e, "cannot connect to listen for session notifications"),
                }
                self.forget_all();
                rocket::tokio::time::sleep(Duration::from_secs(1)).await;
            }
        });
    }

    fn forget_all(&self) {
        if let Ok(mut entries) = self.entries.lock() {
            self.generation.fetch_add(1, SeqCst);
            entries.clear();
        }
    }

    fn forget_user(&self, user_id: Uuid) {
        if let Ok(mut entries) = self.entries.lock() {
            self.generation.fetch_add(1, SeqCst);
            entries.retain(|_, (_, known)| known.user_id != user_id);
        }
    }

    /// Drop one session's entry (it looked idle: read it again).
    pub fn forget_session(&self, session_id: Uuid) {
        if let Ok(mut entries) = self.entries.lock() {
            self.generation.fetch_add(1, SeqCst);
            entries.remove(&session_id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn known(user_id: Uuid) -> Known {
        Known {
            user_id,
            session_id: Uuid::new_v4(),
            role: Role::Claimant,
            usable: true,
            expires_at: Utc::now(),
            mfa: false,
            reauthenticated_at: None,
            must_change_password: false,
            email_confirmed: true,
            last_seen: Utc::now(),
        }
    }

    #[test]
    fn an_entry_is_trusted_for_a_second_and_forgotten_with_its_account() {
        let cache = SessionCache::default();
        let (alice, bob) = (known(Uuid::new_v4()), known(Uuid::new_v4()));
        cache.remember(alice.clone(), cache.generation());
        cache.remember(bob.clone(), cache.generation());
        assert!(cache.fresh(alice.session_id).is_some());
        cache.forget_user(alice.user_id);
        assert!(cache.fresh(alice.session_id).is_none(), "a change to the account drops its sessions");
        assert!(cache.fresh(bob.session_id).is_some(), "other accounts keep theirs");
        if let Ok(mut entries) = cache.entries.lock() {
            if let Some((at, _)) = entries.get_mut(&bob.session_id) {
                *at = at.checked_sub(RECHECK_AFTER).unwrap_or(*at);
            }
        }
        assert!(cache.fresh(bob.session_id).is_none(), "an entry a second old is read again");
    }

    #[test]
    fn a_watched_counter_keeps_entries_and_a_read_older_than_a_drop_is_not_remembered() {
        let cache = SessionCache::default();
        let alice = known(Uuid::new_v4());
        cache.remember(alice.clone(), cache.generation());
        let age = |cache: &SessionCache, by: Duration| {
            if let Ok(mut entries) = cache.entries.lock() {
                for (at, _) in entries.values_mut() {
                    *at = at.checked_sub(by).unwrap_or(*at);
                }
            }
        };
        age(&cache, Duration::from_secs(10));
        assert!(cache.fresh(alice.session_id).is_none(), "unwatched, an entry is trusted for a second");
        if let Ok(mut at) = cache.watched_at.lock() {
            *at = Some(Instant::now());
        }
        assert!(cache.fresh(alice.session_id).is_some(), "watched, it is trusted longer");
        age(&cache, TRUST_AT_MOST);
        assert!(cache.fresh(alice.session_id).is_none(), "but never longer than TRUST_AT_MOST");

        let bob = known(Uuid::new_v4());
        let before_the_read = cache.generation();
        cache.forget_user(Uuid::new_v4());
        cache.remember(bob.clone(), before_the_read);
        assert!(cache.fresh(bob.session_id).is_none(), "a read that began before a drop may be stale");
        cache.remember(bob.clone(), cache.generation());
        assert!(cache.fresh(bob.session_id).is_some());
    }

    #[test]
    fn a_recorded_use_moves_the_last_seen_time() {
        let cache = SessionCache::default();
        let alice = known(Uuid::new_v4());
        cache.remember(alice.clone(), cache.generation());
        let later = alice.last_seen + chrono::Duration::minutes(5);
        cache.seen(alice.session_id, later);
        assert_eq!(cache.fresh(alice.session_id).map(|k| k.last_seen), Some(later));
    }
}
