//! Account use cases over the database.
use argon2::password_hash::{rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use chrono::{DateTime, Duration, Utc};
use entities::{session, user};
use jsonwebtoken::{decode, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation};
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, Set};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::sessions::Known;
use super::{Password, Role};
use crate::audit::{self, Actor, Event};
use crate::crypto::Keyring;
use crate::db::WriteTx;
use crate::domain::{Email, ErrorCode, FieldErrors};
use crate::error::{AppError, AppResult};
use crate::AppState;

const ISSUER: &str = "claimant-portal";
const AUDIENCE: &str = "claimant-portal";
const TOKEN_TYPE: &str = "session";

/// Claims inside a session token.
#[derive(Debug, Serialize, Deserialize)]
struct TokenClaims {
    iss: String,
    aud: String,
    sub: String,
    sid: String,
    typ: String,
    iat: i64,
    exp: i64,
}

#[derive(Clone, Debug, Serialize)]
pub struct Account {
    pub id: Uuid,
    pub email: String,
    pub role: Role,
}

pub struct IssuedSession {
    pub token: String,
    pub expires_at: DateTime<Utc>,
    pub account: Account,
}

pub fn email_index(keys: &Keyring, email: &Email) -> String {
    keys.blind_index("account-email", email.as_str())
}

fn hash_password(password: &str) -> AppResult<String> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| AppError::internal(format!("argon2: {e}")))
}

/// Hash on a blocking thread: argon2id deliberately costs ~20 ms of CPU.
pub(crate) async fn hash_password_blocking(password: &Password) -> AppResult<String> {
    let pw = password.expose().to_string();
    rocket::tokio::task::spawn_blocking(move || hash_password(&pw))
        .await
        .map_err(|e| AppError::caused_by("password hashing task", e))?
}

/// Verify on a blocking thread: argon2id deliberately costs ~20 ms of CPU.
pub(crate) async fn verify_password(hash: String, password: String) -> bool {
    rocket::tokio::task::spawn_blocking(move || {
        PasswordHash::new(&hash)
            .map(|parsed| Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok())
            .unwrap_or(false)
    })
    .await
    .unwrap_or(false)
}

/// A hash of a random password, verified against when the account is
/// unknown or locked, so every failed login costs the same time.
pub fn dummy_hash() -> String {
    hash_password(&crate::crypto::random_token(24)).unwrap_or_default()
}

/// Parse registration input into field errors in one pass.
pub fn parse_credentials(email: &str, password: &str) -> Result<(Email, Password), FieldErrors> {
    let mut errors = FieldErrors::new();
    let email = errors.check("email", Email::parse(email));
    let password = errors.check("password", Password::parse(password));
    match (email, password) {
        (Some(e), Some(p)) if errors.is_empty() => Ok((e, p)),
        _ => Err(errors),
    }
}

/// Create an account whose address counts as proven: staff accounts made by
/// an administrator or the CLI. Claimants register through `registration`.
pub async fn create_account(
    state: &AppState,
    actor: &Actor,
    email: &Email,
    password: &Password,
    role: Role,
    lang: crate::i18n::Lang,
) -> AppResult<Account> {
    let hash = hash_password_blocking(password).await?;
    let id = Uuid::new_v4();
    let txn = state.db.begin_write().await?;
    let index = email_index(&state.keys, email);
    if user::Entity::find().filter(user::Column::EmailIndex.eq(index)).one(&txn).await?.is_some() {
        return Err(AppError::Invalid({
            let mut e = FieldErrors::new();
            e.add("email", ErrorCode::Duplicate);
            e
        }));
    }
    let mut row = new_user_row(&state.keys, id, email, hash, role, state.clock.now());
    row.language = Set(lang.code().to_string());
    row.insert(&txn).await?;
    audit::append(
        &txn,
        actor,
        Event::new("account.created").subject("user", id).owner(id).detail(serde_json::json!({"role": role.as_str()})),
    )
    .await?;
    txn.commit().await?;
    Ok(Account { id, email: email.as_str().to_string(), role })
}

/// A new account's row: the e-mail sealed and blind-indexed, never stored
/// plain, the address taken as proven (see `registration` for claimants).
pub fn new_user_row(
    keys: &Keyring,
    id: Uuid,
    email: &Email,
    password_hash: String,
    role: Role,
    now: DateTime<Utc>,
) -> user::ActiveModel {
    user::ActiveModel {
        id: Set(id),
        email_index: Set(email_index(keys, email)),
        email_sealed: Set(keys.seal_account_email(&id, email.as_str())),
        password_hash: Set(password_hash),
        role: Set(role.as_str().to_string()),
        failed_logins: Set(0),
        locked_until: Set(None),
        disabled: Set(false),
        erased_at: Set(None),
        totp_sealed: Set(None),
        totp_confirmed_at: Set(None),
        totp_last_step: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
        language: Set(crate::i18n::Lang::Ja.code().to_string()),
        reminders: Set(true),
        // Made by an administrator or the operator; self-registration clears it.
        email_verified_at: Set(Some(now)),
        must_change_password: Set(false),
    }
}

/// Log in. Unknown e-mail, wrong password, locked and disabled accounts all
/// answer the same `LoginFailed` after the same work (S2).
pub async fn login(
    state: &AppState,
    ip: Option<std::net::IpAddr>,
    email: &str,
    password: &str,
) -> AppResult<IssuedSession> {
    let ip_text = ip.map(|i| i.to_string());
    let actor = Actor { user_id: None, role: None, ip: ip_text.clone() };
    if let Some(ip) = ip {
        if state.login_limiter.check_key(&ip).is_err() {
            let txn = state.db.begin_write().await?;
            audit::append(&txn, &actor, Event::new("auth.login_throttled")).await?;
            txn.commit().await?;
            return Err(AppError::TooManyRequests);
        }
    }
    let found = match Email::parse(email) {
        Ok(e) => {
            user::Entity::find()
                .filter(user::Column::EmailIndex.eq(email_index(&state.keys, &e)))
                .one(state.db.conn())
                .await?
        }
        Err(_) => None,
    };
    let now = state.clock.now();
    let usable = found.as_ref().is_some_and(|u| !u.disabled && u.locked_until.is_none_or(|t| t <= now));
    let hash = match (&found, usable) {
        (Some(u), true) => u.password_hash.clone(),
        _ => state.dummy_hash.clone(),
    };
    let password_ok = verify_password(hash, password.to_string()).await && usable;

    let txn = state.db.begin_write().await?;
    let Some(user) = found else {
        audit::append(&txn, &actor, Event::new("auth.login_failed").detail(serde_json::json!({"reason": "unknown"})))
            .await?;
        txn.commit().await?;
        return Err(AppError::LoginFailed);
    };
    let role = Role::parse(&user.role).ok_or_else(|| AppError::internal("unknown role"))?;
    let actor = Actor { user_id: Some(user.id), role: Some(role), ip: ip_text };
    if !password_ok {
        refuse_login(state, &txn, &actor, &user, usable).await?;
        txn.commit().await?;
        return Err(AppError::LoginFailed);
    }
    if user.failed_logins != 0 || user.locked_until.is_some() {
        let mut active: user::ActiveModel = user.clone().into();
        active.failed_logins = Set(0);
        active.locked_until = Set(None);
        active.updated_at = Set(now);
        active.update(&txn).await?;
    }
    let issued = open_session(state, &txn, &actor, &user, role).await?;
    txn.commit().await?;
    Ok(issued)
}

/// A refused sign-in of a known account, audited with why; a wrong
/// password counts towards the lockout, which it may start.
async fn refuse_login(
    state: &AppState,
    txn: &WriteTx,
    actor: &Actor,
    user: &user::Model,
    usable: bool,
) -> AppResult<()> {
    let reason = if user.disabled {
        "disabled"
    } else if !usable {
        "locked"
    } else {
        "password"
    };
    if reason == "password" {
        let now = state.clock.now();
        let mut active: user::ActiveModel = user.clone().into();
        let failures = user.failed_logins + 1;
        if failures >= state.settings.login_max_failures {
            active.failed_logins = Set(0);
            active.locked_until = Set(Some(now + Duration::minutes(state.settings.lockout_minutes)));
            audit::append(txn, actor, Event::new("auth.locked").subject("user", user.id).owner(user.id)).await?;
        } else {
            active.failed_logins = Set(failures);
        }
        active.updated_at = Set(now);
        active.update(txn).await?;
    }
    let event = Event::new("auth.login_failed")
        .subject("user", user.id)
        .owner(user.id)
        .detail(serde_json::json!({"reason": reason}));
    audit::append(txn, actor, event).await?;
    Ok(())
}

/// A wrong second-factor code, password re-entry or erasure password counts
/// against the account like a failed login, whatever address it comes
/// from: at `login_max_failures` the account locks for `lockout_minutes`
/// and every session of it ends (the one guessing included). Returns
/// whether it locked.
pub async fn record_failure(state: &AppState, txn: &WriteTx, actor: &Actor, user_id: Uuid) -> AppResult<bool> {
    let row = user::Entity::find_by_id(user_id).one(txn).await?.ok_or(AppError::Unauthenticated)?;
    let now = state.clock.now();
    let failures = row.failed_logins + 1;
    let locks = failures >= state.settings.login_max_failures;
    let until = locks.then(|| now + Duration::minutes(state.settings.lockout_minutes));
    user::Entity::update_many()
        .col_expr(user::Column::FailedLogins, Expr::value(if locks { 0 } else { failures }))
        .col_expr(user::Column::LockedUntil, Expr::value(until.or(row.locked_until)))
        .col_expr(user::Column::UpdatedAt, Expr::value(now))
        .filter(user::Column::Id.eq(user_id))
        .exec(txn)
        .await?;
    if locks {
        session::Entity::update_many()
            .col_expr(session::Column::RevokedAt, Expr::value(Some(now)))
            .filter(session::Column::UserId.eq(user_id))
            .filter(session::Column::RevokedAt.is_null())
            .exec(txn)
            .await?;
        state.sessions.forget_after(txn, user_id).await?;
        audit::append(txn, actor, Event::new("auth.locked").subject("user", user_id).owner(user_id)).await?;
    }
    Ok(locks)
}

/// A correct code or password re-entry clears the count of failures.
pub async fn clear_failures(txn: &WriteTx, user_id: Uuid) -> AppResult<()> {
    user::Entity::update_many()
        .col_expr(user::Column::FailedLogins, Expr::value(0))
        .filter(user::Column::Id.eq(user_id))
        .filter(user::Column::FailedLogins.ne(0))
        .exec(txn)
        .await?;
    Ok(())
}

/// Create a server-side session for `user` and sign its token. Callers
/// authenticate first; the benchmark uses it to skip the password step.
pub async fn open_session(
    state: &AppState,
    db: &WriteTx,
    actor: &Actor,
    user: &user::Model,
    role: Role,
) -> AppResult<IssuedSession> {
    let now = state.clock.now();
    let session_id = Uuid::new_v4();
    let expires_at = now + Duration::hours(state.settings.session_hours);
    session::ActiveModel {
        id: Set(session_id),
        user_id: Set(user.id),
        created_at: Set(now),
        expires_at: Set(expires_at),
        revoked_at: Set(None),
        mfa_verified_at: Set(None),
        reauthenticated_at: Set(None),
        last_seen_at: Set(Some(now)),
    }
    .insert(db)
    .await?;
    audit::append(db, actor, Event::new("auth.login").subject("session", session_id).owner(user.id)).await?;
    let token = issue_token(&state.keys, user.id, session_id, now, expires_at)?;
    // The first requests of a new session need no read. Should the
    // transaction not commit, the token is never handed out.
    let generation = state.sessions.generation();
    state.sessions.remember(
        Known {
            user_id: user.id,
            session_id,
            role,
            usable: !user.disabled,
            expires_at,
            mfa: false,
            reauthenticated_at: None,
            must_change_password: user.must_change_password,
            email_confirmed: user.email_verified_at.is_some(),
            last_seen: now,
        },
        generation,
    );
    let email = state.keys.open_account_email(&user.id, &user.email_sealed)?;
    Ok(IssuedSession { token, expires_at, account: Account { id: user.id, email, role } })
}

fn issue_token(keys: &Keyring, user: Uuid, sid: Uuid, now: DateTime<Utc>, exp: DateTime<Utc>) -> AppResult<String> {
    let claims = TokenClaims {
        iss: ISSUER.into(),
        aud: AUDIENCE.into(),
        sub: user.to_string(),
        sid: sid.to_string(),
        typ: TOKEN_TYPE.into(),
        iat: now.timestamp(),
        exp: exp.timestamp(),
    };
    encode(&Header::new(Algorithm::HS256), &claims, &EncodingKey::from_secret(keys.jwt_secret()))
        .map_err(|e| AppError::caused_by("jwt encode", e))
}

/// Validate a token's signature and claims (one algorithm, exp with 5 s
/// leeway, iss, aud, typ) and return (user id, session id) (S3).
pub fn decode_token(keys: &Keyring, token: &str) -> Option<(Uuid, Uuid)> {
    let mut validation = Validation::new(Algorithm::HS256);
    validation.leeway = 5;
    validation.set_issuer(&[ISSUER]);
    validation.set_audience(&[AUDIENCE]);
    validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    let data = decode::<TokenClaims>(token, &DecodingKey::from_secret(keys.jwt_secret()), &validation).ok()?;
    if data.claims.typ != TOKEN_TYPE {
        return None;
    }
    Some((data.claims.sub.parse().ok()?, data.claims.sid.parse().ok()?))
}

/// The live session behind a token: not revoked, not expired, user enabled.
pub async fn authenticate(state: &AppState, token: &str, now: DateTime<Utc>) -> AppResult<Known> {
    let (user_id, sid) = decode_token(&state.keys, token).ok_or(AppError::Unauthenticated)?;
    // An entry that looks idle is read again: the session may have been
    // used on another app server since.
    let remembered = state
        .sessions
        .fresh(sid)
        .filter(|known| !super::lifecycle::idle_expired(&state.settings, known.role, known.last_seen, now));
    let known = match remembered {
        Some(known) => known,
        None => {
            let generation = state.sessions.generation();
            // One round trip: the session and its user.
            let (session, user) = session::Entity::find_by_id(sid)
                .find_also_related(user::Entity)
                .one(state.db.conn())
                .await?
                .ok_or(AppError::Unauthenticated)?;
            let user = user.ok_or(AppError::Unauthenticated)?;
            let known = Known::from_rows(&session, &user).ok_or_else(|| AppError::internal("unknown role"))?;
            state.sessions.remember(known.clone(), generation);
            known
        }
    };
    if known.user_id != user_id || !known.usable || known.expires_at <= now {
        return Err(AppError::Unauthenticated);
    }
    Ok(known)
}

/// Revoke one session (logout).
pub async fn logout(state: &AppState, actor: &Actor, session_id: Uuid) -> AppResult<()> {
    let txn = state.db.begin_write().await?;
    if let Some(s) = session::Entity::find_by_id(session_id).one(&txn).await? {
        let owner = s.user_id;
        let mut active: session::ActiveModel = s.into();
        active.revoked_at = Set(Some(state.clock.now()));
        active.update(&txn).await?;
        state.sessions.forget_after(&txn, owner).await?;
        audit::append(&txn, actor, Event::new("auth.logout").subject("session", session_id).owner(owner)).await?;
    }
    txn.commit().await?;
    Ok(())
}

pub async fn account_by_id(state: &AppState, id: Uuid) -> AppResult<Account> {
    let row = user::Entity::find_by_id(id).one(state.db.conn()).await?.ok_or(AppError::Unauthenticated)?;
    account(state, &row)
}

pub fn account(state: &AppState, user: &user::Model) -> AppResult<Account> {
    Ok(Account {
        id: user.id,
        email: state.keys.open_account_email(&user.id, &user.email_sealed)?,
        role: Role::parse(&user.role).ok_or_else(|| AppError::internal("unknown role"))?,
    })
}

/// On first start, create an administrator with a one-time random password
/// and return the credential to print once. `None` if an admin exists.
pub async fn bootstrap_admin(state: &AppState) -> AppResult<Option<(String, String)>> {
    let exists =
        user::Entity::find().filter(user::Column::Role.eq(Role::Admin.as_str())).one(state.db.conn()).await?.is_some();
    if exists {
        return Ok(None);
    }
    let email = Email::parse(&state.settings.bootstrap_admin_email)
        .map_err(|_| AppError::internal("bootstrap_admin_email is not a valid e-mail address"))?;
    let password = crate::crypto::random_token(18);
    let parsed = Password::parse(&password).map_err(|_| AppError::internal("generated password refused"))?;
    let actor = Actor::default();
    let account = create_account(state, &actor, &email, &parsed, Role::Admin, crate::i18n::Lang::Ja).await?;
    user::Entity::update_many()
        .col_expr(user::Column::MustChangePassword, Expr::value(true))
        .filter(user::Column::Id.eq(account.id))
        .exec(state.db.conn())
        .await?;
    Ok(Some((email.as_str().to_string(), password)))
}

/// How long a re-entered password counts as fresh (for export downloads).
pub const REAUTH_VALID_MINUTES: i64 = 10;

/// Fresh re-authentication (S5): the signed-in person re-enters their
/// password; the session records when. Wrong passwords are audited and
/// throttled like logins.
pub async fn reauthenticate(state: &AppState, user: &crate::auth::CurrentUser, password: &str) -> AppResult<()> {
    if let Some(ip) = user.ip {
        if state.login_limiter.check_key(&ip).is_err() {
            return Err(AppError::TooManyRequests);
        }
    }
    let row = user::Entity::find_by_id(user.id).one(state.db.conn()).await?.ok_or(AppError::Unauthenticated)?;
    let ok = !password.is_empty() && verify_password(row.password_hash.clone(), password.to_string()).await;
    let txn = state.db.begin_write().await?;
    if !ok {
        audit::append(&txn, &user.actor(), Event::new("auth.reauth_failed").subject("user", user.id).owner(user.id))
            .await?;
        let locked = record_failure(state, &txn, &user.actor(), user.id).await?;
        txn.commit().await?;
        if locked {
            return Err(AppError::Unauthenticated);
        }
        let mut errors = FieldErrors::new();
        errors.add("password", if password.is_empty() { ErrorCode::Required } else { ErrorCode::PasswordIncorrect });
        return Err(errors.into());
    }
    clear_failures(&txn, user.id).await?;
    session::Entity::update_many()
        .col_expr(session::Column::ReauthenticatedAt, Expr::value(Some(state.clock.now())))
        .filter(session::Column::Id.eq(user.session_id))
        .exec(&txn)
        .await?;
    state.sessions.forget_after(&txn, user.id).await?;
    audit::append(
        &txn,
        &user.actor(),
        Event::new("auth.reauthenticated").subject("session", user.session_id).owner(user.id),
    )
    .await?;
    txn.commit().await?;
    Ok(())
}

/// Did this session re-enter its password within the last few minutes?
pub fn freshly_reauthenticated(user: &crate::auth::CurrentUser, now: DateTime<Utc>) -> bool {
    user.reauthenticated_at.is_some_and(|at| now - at < Duration::minutes(REAUTH_VALID_MINUTES))
}
