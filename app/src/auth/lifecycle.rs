//! An account's life after it is made: its password changed (which ends
//! every other session), sessions that end when left unused, administrators
//! disabling an account or ending its sessions, and the bootstrap
//! administrator's generated password, kept in a file only the operator can
//! read and replaced at the first sign-in.
use chrono::{DateTime, Duration, Utc};
use entities::{session, user};
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use uuid::Uuid;

use super::service::{clear_failures, hash_password_blocking, record_failure, verify_password};
use super::sessions::Known;
use super::{CurrentUser, Password, Role};
use crate::audit::{self, Event};
use crate::db::WriteTx;
use crate::domain::{ErrorCode, FieldErrors};
use crate::error::{AppError, AppResult};
use crate::{AppState, Settings};

/// Where the bootstrap administrator's generated password is written.
pub const BOOTSTRAP_FILE: &str = "bootstrap-admin.txt";

/// A session left unused this long ends.
pub fn idle_limit(settings: &Settings, role: Role) -> Duration {
    Duration::minutes(match role {
        Role::Claimant => settings.idle_minutes_claimant,
        Role::Lawyer | Role::Admin => settings.idle_minutes_staff,
    })
}

/// Whether a session last used at `last_seen` has been idle too long.
pub fn idle_expired(settings: &Settings, role: Role, last_seen: DateTime<Utc>, now: DateTime<Utc>) -> bool {
    now - last_seen > idle_limit(settings, role)
}

/// How stale `last_seen_at` may get before a request records it again: one
/// write a minute per active session at most.
const TOUCH_EVERY: Duration = Duration::minutes(1);

/// Record that a session was used, unless it was within the last minute.
pub async fn touch(state: &AppState, session: &Known, now: DateTime<Utc>) -> AppResult<()> {
    if now - session.last_seen < TOUCH_EVERY {
        return Ok(());
    }
    let txn = state.db.begin_write().await?;
    session::Entity::update_many()
        .col_expr(session::Column::LastSeenAt, Expr::value(Some(now)))
        .filter(session::Column::Id.eq(session.session_id))
        .exec(&txn)
        .await?;
    txn.commit().await?;
    state.sessions.seen(session.session_id, now);
    Ok(())
}

/// End the account's sessions (all, or all but `except`) in `txn`; the
/// session cache forgets them when it commits.
async fn end_sessions_of(
    state: &AppState,
    txn: &WriteTx,
    user_id: Uuid,
    except: Option<Uuid>,
    now: DateTime<Utc>,
) -> AppResult<u64> {
    state.sessions.forget_after(txn, user_id).await?;
    let mut query = session::Entity::update_many()
        .col_expr(session::Column::RevokedAt, Expr::value(Some(now)))
        .filter(session::Column::UserId.eq(user_id))
        .filter(session::Column::RevokedAt.is_null());
    if let Some(keep) = except {
        query = query.filter(session::Column::Id.ne(keep));
    }
    Ok(query.exec(txn).await?.rows_affected)
}

/// Change the caller's password: the current one first (wrong guesses count
/// like failed logins), then the new one by the usual rules. Every other
/// session of the account ends; this one goes on.
pub async fn change_password(state: &AppState, user: &CurrentUser, current: &str, new: &str) -> AppResult<()> {
    if user.ip.is_some_and(|ip| state.login_limiter.check_key(&ip).is_err()) {
        return Err(AppError::TooManyRequests);
    }
    let row = user::Entity::find_by_id(user.id).one(state.db.conn()).await?.ok_or(AppError::Unauthenticated)?;
    let mut errors = FieldErrors::new();
    let new_password = errors.check("new_password", Password::parse(new));
    let right = !current.is_empty() && verify_password(row.password_hash.clone(), current.to_string()).await;
    if !right {
        errors.add(
            "current_password",
            if current.is_empty() { ErrorCode::Required } else { ErrorCode::PasswordIncorrect },
        );
    }
    if !right && !current.is_empty() {
        let txn = state.db.begin_write().await?;
        audit::append(
            &txn,
            &user.actor(),
            Event::new("auth.password_change_failed").subject("user", user.id).owner(user.id),
        )
        .await?;
        let locked = record_failure(state, &txn, &user.actor(), user.id).await?;
        txn.commit().await?;
        if locked {
            return Err(AppError::Unauthenticated);
        }
    }
    let Some(new_password) = new_password.filter(|_| errors.is_empty()) else {
        return Err(errors.into());
    };
    let hash = hash_password_blocking(&new_password).await?;
    let now = state.clock.now();
    let txn = state.db.begin_write().await?;
    user::Entity::update_many()
        .col_expr(user::Column::PasswordHash, Expr::value(hash))
        .col_expr(user::Column::MustChangePassword, Expr::value(false))
        .col_expr(user::Column::UpdatedAt, Expr::value(now))
        .filter(user::Column::Id.eq(user.id))
        .exec(&txn)
        .await?;
    clear_failures(&txn, user.id).await?;
    let ended = end_sessions_of(state, &txn, user.id, Some(user.session_id), now).await?;
    audit::append(
        &txn,
        &user.actor(),
        Event::new("auth.password_changed")
            .subject("user", user.id)
            .owner(user.id)
            .detail(serde_json::json!({"other_sessions_ended": ended})),
    )
    .await?;
    txn.commit().await?;
    if row.must_change_password {
        // The generated password is spent: its file goes too.
        let _ = std::fs::remove_file(state.settings.data_dir.join(BOOTSTRAP_FILE));
    }
    Ok(())
}

/// An account an administrator may act on: another person's, not erased.
async fn other_account(state: &AppState, admin: &CurrentUser, user_id: Uuid) -> AppResult<user::Model> {
    admin.require(Role::Admin)?;
    if user_id == admin.id {
        return Err(AppError::WrongState("not_on_yourself"));
    }
    user::Entity::find_by_id(user_id)
        .one(state.db.conn())
        .await?
        .filter(|u| u.erased_at.is_none())
        .ok_or(AppError::NotFound)
}

/// Disable (every session ends, sign-in answers as for a wrong password) or
/// enable an account. Not one's own.
pub async fn set_disabled(state: &AppState, admin: &CurrentUser, user_id: Uuid, disabled: bool) -> AppResult<()> {
    let target = other_account(state, admin, user_id).await?;
    if target.disabled == disabled {
        return Ok(());
    }
    let now = state.clock.now();
    let txn = state.db.begin_write().await?;
    user::Entity::update_many()
        .col_expr(user::Column::Disabled, Expr::value(disabled))
        .col_expr(user::Column::UpdatedAt, Expr::value(now))
        .filter(user::Column::Id.eq(user_id))
        .exec(&txn)
        .await?;
    state.sessions.forget_after(&txn, user_id).await?;
    let ended = if disabled { end_sessions_of(state, &txn, user_id, None, now).await? } else { 0 };
    let action = if disabled { "account.disabled" } else { "account.enabled" };
    audit::append(
        &txn,
        &admin.actor(),
        Event::new(action).subject("user", user_id).owner(user_id).detail(serde_json::json!({"sessions_ended": ended})),
    )
    .await?;
    txn.commit().await?;
    Ok(())
}

/// End every session of another account (a lost phone, a stolen laptop).
pub async fn end_sessions(state: &AppState, admin: &CurrentUser, user_id: Uuid) -> AppResult<u64> {
    other_account(state, admin, user_id).await?;
    let now = state.clock.now();
    let txn = state.db.begin_write().await?;
    let ended = end_sessions_of(state, &txn, user_id, None, now).await?;
    audit::append(
        &txn,
        &admin.actor(),
        Event::new("account.sessions_ended")
            .subject("user", user_id)
            .owner(user_id)
            .detail(serde_json::json!({"sessions_ended": ended})),
    )
    .await?;
    txn.commit().await?;
    Ok(ended)
}

/// Write the bootstrap administrator's password where only the operator
/// (this process's user) can read it. Returns the file's path.
pub fn write_bootstrap_file(settings: &Settings, email: &str, password: &str) -> std::io::Result<std::path::PathBuf> {
    use std::io::Write;
    let path = settings.data_dir.join(BOOTSTRAP_FILE);
    std::fs::create_dir_all(&settings.data_dir)?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(&path)?;
    writeln!(
        file,
        "The portal's first administrator (the password must be changed at the first sign-in):\ne-mail: {email}\npassword: {password}"
    )?;
    file.sync_all()?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn staff_sessions_end_sooner_than_claimants_and_never_after_the_session() {
        let dir = tempfile::tempdir().unwrap();
        let base = crate::figment().merge(("data_dir", dir.path().display().to_string()));
        let settings = Settings::from_figment(&base).unwrap();
        let t0 = Utc::now();
        assert!(!idle_expired(&settings, Role::Lawyer, t0, t0 + Duration::minutes(30)));
        assert!(idle_expired(&settings, Role::Admin, t0, t0 + Duration::minutes(31)));
        assert!(!idle_expired(&settings, Role::Claimant, t0, t0 + Duration::minutes(119)));
        assert!(idle_expired(&settings, Role::Claimant, t0, t0 + Duration::minutes(121)));
        let short = Settings::from_figment(&base.merge(("session_hours", 1))).unwrap();
        assert_eq!(idle_limit(&short, Role::Claimant), Duration::minutes(60), "not longer than the session");
    }
}
