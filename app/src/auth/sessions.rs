//! What this process knows of the sessions it has seen, so that a signed-in
//! request is usually checked without a database read.
//!
//! A session token is a signed JWT naming the session and its account; the
//! signature and expiry are checked on every request. What the token cannot
//! say (revoked, the account disabled, the second factor passed, the last
//! use) lives in the `sessions` and `users` rows. This cache keeps what one
//! read of them said for at most [`RECHECK_AFTER`]: a change made by this
//! process (logout, account changes, erasure, the second factor) drops the
//! account's entries at once. On PostgreSQL the change also sends a
//! notification on [`CHANNEL`] with its transaction (delivered when, and
//! only if, it commits), and every app server listening drops the account's
//! entries when it arrives, within milliseconds. Should a notification be
//! missed (another process on SQLite, a listener reconnecting), the change
//! is still seen within the second, because an entry older than it is read
//! again; a listener that reconnects drops everything it held. Every rule
//! is still applied to each request: expiry and the idle timeout against
//! the request's own "now", the last use written at most once a minute.
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use entities::{session, user};
use sea_orm::{ConnectionTrait, DatabaseBackend, DbErr, Statement};
use uuid::Uuid;

use super::Role;
use crate::db::{Db, WriteTx};

/// The PostgreSQL notification channel that names accounts whose sessions changed.
pub const CHANNEL: &str = "portal_sessions";

/// How long a read of a session is trusted before it is read again.
pub const RECHECK_AFTER: Duration = Duration::from_secs(1);

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
            last_seen: session.last_seen_at.unwrap_or(session.created_at),
        })
    }
}

#[derive(Debug, Default)]
pub struct SessionCache {
    entries: Mutex<HashMap<Uuid, (Instant, Known)>>,
}

impl SessionCache {
    /// The session as read less than [`RECHECK_AFTER`] ago, if it was.
    pub fn fresh(&self, session_id: Uuid) -> Option<Known> {
        let entries = self.entries.lock().ok()?;
        entries.get(&session_id).filter(|(at, _)| at.elapsed() < RECHECK_AFTER).map(|(_, known)| known.clone())
    }

    pub fn remember(&self, known: Known) {
        if let Ok(mut entries) = self.entries.lock() {
            if entries.len() >= MAX_ENTRIES {
                entries.retain(|_, (at, _)| at.elapsed() < RECHECK_AFTER);
            }
            entries.insert(known.session_id, (Instant::now(), known));
        }
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
            entries.clear();
        }
    }

    fn forget_user(&self, user_id: Uuid) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.retain(|_, (_, known)| known.user_id != user_id);
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
            last_seen: Utc::now(),
        }
    }

    #[test]
    fn an_entry_is_trusted_for_a_second_and_forgotten_with_its_account() {
        let cache = SessionCache::default();
        let (alice, bob) = (known(Uuid::new_v4()), known(Uuid::new_v4()));
        cache.remember(alice.clone());
        cache.remember(bob.clone());
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
    fn a_recorded_use_moves_the_last_seen_time() {
        let cache = SessionCache::default();
        let alice = known(Uuid::new_v4());
        cache.remember(alice.clone());
        let later = alice.last_seen + chrono::Duration::minutes(5);
        cache.seen(alice.session_id, later);
        assert_eq!(cache.fresh(alice.session_id).map(|k| k.last_seen), Some(later));
    }
}
