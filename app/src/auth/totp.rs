//! The staff second factor (S5): TOTP (RFC 6238, 30-second steps, 6 digits,
//! SHA-1 for authenticator-app compatibility). Enrolment shows the secret
//! once; confirming it with a code turns it on and verifies the session.
//! Each session of a lawyer or administrator must pass it before reading
//! claims. A code is accepted once (its time step must be newer than the
//! last accepted one), and wrong codes count against the per-address
//! throttle that login uses.
use entities::{session, user};
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde::Serialize;

use super::{CurrentUser, Role};
use crate::audit::{self, Event};
use crate::domain::{ErrorCode, FieldErrors};
use crate::error::{AppError, AppResult};
use crate::AppState;

const ISSUER: &str = "Claimant portal";

/// What an authenticator app needs, shown once at enrolment.
#[derive(Debug, Serialize)]
pub struct TotpSetup {
    /// Base32, for typing into an app.
    pub secret: String,
    /// `otpauth://` URI, for a QR code.
    pub otpauth_url: String,
}

/// Whether the caller has a second factor and whether this session passed it.
#[derive(Debug, Serialize)]
pub struct SecondFactor {
    pub enrolled: bool,
    pub verified: bool,
}

fn require_staff(user: &CurrentUser) -> AppResult<()> {
    match user.role {
        Role::Lawyer | Role::Admin => Ok(()),
        Role::Claimant => Err(AppError::NotFound),
    }
}

fn totp(secret: Vec<u8>, account: &str) -> AppResult<totp_rs::Totp> {
    totp_rs::Builder::new()
        .with_secret(secret)
        .with_account_name(account)
        .with_issuer(Some(ISSUER))
        .build()
        .map_err(|e| AppError::caused_by("totp", e))
}

fn code_error(code: ErrorCode) -> AppError {
    let mut errors = FieldErrors::new();
    errors.add("code", code);
    errors.into()
}

pub async fn status(state: &AppState, user: &CurrentUser) -> AppResult<SecondFactor> {
    let row = user::Entity::find_by_id(user.id).one(state.db.conn()).await?.ok_or(AppError::Unauthenticated)?;
    Ok(SecondFactor { enrolled: row.totp_confirmed_at.is_some(), verified: user.mfa })
}

/// Start (or restart, while unconfirmed) enrolment: a new secret.
pub async fn setup(state: &AppState, user: &CurrentUser) -> AppResult<TotpSetup> {
    require_staff(user)?;
    let row = user::Entity::find_by_id(user.id).one(state.db.conn()).await?.ok_or(AppError::Unauthenticated)?;
    if row.totp_confirmed_at.is_some() {
        return Err(AppError::Conflict("totp_already_enrolled"));
    }
    let secret = totp_rs::Secret::generate();
    let email = state.keys.open_account_email(&row.id, &row.email_sealed)?;
    let setup = TotpSetup {
        secret: secret.to_base32(),
        otpauth_url: totp(secret.as_bytes().to_vec(), &email)?
            .to_url()
            .map_err(|e| AppError::caused_by("totp url", e))?,
    };
    let txn = state.db.begin_write().await?;
    user::Entity::update_many()
        .col_expr(user::Column::TotpSealed, Expr::value(Some(state.keys.seal_totp_secret(&row.id, secret.as_bytes()))))
        .col_expr(user::Column::TotpLastStep, Expr::value(Option::<i64>::None))
        .col_expr(user::Column::UpdatedAt, Expr::value(state.clock.now()))
        .filter(user::Column::Id.eq(row.id))
        .exec(&txn)
        .await?;
    audit::append(&txn, &user.actor(), Event::new("auth.totp_setup").subject("user", user.id).owner(user.id)).await?;
    txn.commit().await?;
    Ok(setup)
}

/// Check a code and mark this session as having passed the second factor;
/// on the first success, enrolment is confirmed.
pub async fn verify(state: &AppState, user: &CurrentUser, code: &str) -> AppResult<()> {
    require_staff(user)?;
    if let Some(ip) = user.ip {
        if state.login_limiter.check_key(&ip).is_err() {
            return Err(AppError::TooManyRequests);
        }
    }
    let row = user::Entity::find_by_id(user.id).one(state.db.conn()).await?.ok_or(AppError::Unauthenticated)?;
    let Some(sealed) = row.totp_sealed.as_deref() else {
        return Err(AppError::WrongState("totp_not_enrolled"));
    };
    let code: String = crate::domain::normalise(code).chars().filter(|c| !c.is_whitespace()).collect();
    if code.is_empty() {
        return Err(code_error(ErrorCode::Required));
    }
    let secret = state.keys.open_totp_secret(&row.id, sealed)?;
    let step = totp(secret.to_vec(), "staff")?.check_current(&code);
    // A code is good once: its step must be newer than the last accepted one.
    let fresh = step.filter(|s| row.totp_last_step.is_none_or(|last| (*s as i64) > last));
    let txn = state.db.begin_write().await?;
    let Some(step) = fresh else {
        audit::append(&txn, &user.actor(), Event::new("auth.mfa_failed").subject("user", user.id).owner(user.id))
            .await?;
        let locked = super::service::record_failure(state, &txn, &user.actor(), user.id).await?;
        txn.commit().await?;
        if locked {
            return Err(AppError::Unauthenticated);
        }
        return Err(code_error(ErrorCode::TotpCode));
    };
    let now = state.clock.now();
    user::Entity::update_many()
        .col_expr(user::Column::TotpLastStep, Expr::value(Some(step as i64)))
        .col_expr(user::Column::FailedLogins, Expr::value(0))
        .col_expr(user::Column::TotpConfirmedAt, Expr::value(Some(row.totp_confirmed_at.unwrap_or(now))))
        .col_expr(user::Column::UpdatedAt, Expr::value(now))
        .filter(user::Column::Id.eq(row.id))
        .exec(&txn)
        .await?;
    session::Entity::update_many()
        .col_expr(session::Column::MfaVerifiedAt, Expr::value(Some(now)))
        .filter(session::Column::Id.eq(user.session_id))
        .exec(&txn)
        .await?;
    state.sessions.forget_after(&txn, user.id).await?;
    let action = if row.totp_confirmed_at.is_none() { "auth.totp_enrolled" } else { "auth.mfa_verified" };
    audit::append(&txn, &user.actor(), Event::new(action).subject("session", user.session_id).owner(user.id)).await?;
    txn.commit().await?;
    Ok(())
}
