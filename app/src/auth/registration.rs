//! Claimants register themselves, and prove their address by a link sent
//! to it before they can submit a claim (they may sign in and draft before).
//!
//! Registration answers the same for a new and a known address, after the
//! same work (S2): "we sent you a mail". The owner of a new address gets
//! the link; the owner of a known address gets a mail saying someone tried
//! to register with it. The cheap checks (the form, the per-address and
//! portal-wide limits) come before the password hash; the hash is computed
//! whether the address is new or not.
use std::net::IpAddr;
use std::num::NonZeroU32;

use chrono::{DateTime, Duration, Utc};
use entities::user;
use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, Quota, RateLimiter};
use jsonwebtoken::{decode, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation};
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, Set};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::service::{email_index, hash_password_blocking, new_user_row};
use super::{CurrentUser, Password, Role};
use crate::audit::{self, Actor, Event};
use crate::crypto::Keyring;
use crate::domain::Email;
use crate::error::{AppError, AppResult};
use crate::i18n::Lang;
use crate::mail::{Mail, MailKind};
use crate::{AppState, Settings};

/// How long a confirmation link works.
pub const LINK_DAYS: i64 = 7;
const LINK_TYPE: &str = "confirm-address";
const ISSUER: &str = "claimant-portal";

/// New accounts per client address (per hour) and for the whole portal
/// (per minute), in this process's memory.
pub struct RegistrationLimits {
    per_address: DefaultKeyedRateLimiter<IpAddr>,
    portal: DefaultDirectRateLimiter,
}

impl RegistrationLimits {
    pub fn new(settings: &Settings) -> Self {
        let per_address = NonZeroU32::new(settings.registrations_per_ip_per_hour).unwrap_or(NonZeroU32::MIN);
        let portal = NonZeroU32::new(settings.registrations_per_minute).unwrap_or(NonZeroU32::MIN);
        Self {
            per_address: RateLimiter::keyed(Quota::per_hour(per_address)),
            portal: RateLimiter::direct(Quota::per_minute(portal)),
        }
    }

    fn check(&self, ip: Option<IpAddr>) -> AppResult<()> {
        if ip.is_some_and(|ip| self.per_address.check_key(&ip).is_err()) || self.portal.check().is_err() {
            return Err(AppError::TooManyRequests);
        }
        Ok(())
    }
}

/// Register a claimant with `email`, or tell the owner of a known address
/// that someone tried. Either way the caller hears the same.
pub async fn register(
    state: &AppState,
    ip: Option<IpAddr>,
    email: &Email,
    password: &Password,
    lang: Lang,
) -> AppResult<()> {
    state.registrations.check(ip)?;
    let hash = hash_password_blocking(password).await?;
    let actor = Actor { ip: ip.map(|i| i.to_string()), ..Default::default() };
    let now = state.clock.now();
    let txn = state.db.begin_write().await?;
    let known =
        user::Entity::find().filter(user::Column::EmailIndex.eq(email_index(&state.keys, email))).one(&txn).await?;
    match known {
        Some(owner) => {
            // Once a day at most, whatever is tried.
            let dedupe = format!("registration_attempt:{}:{}", owner.id, crate::today_of(now));
            let mail = Mail::to(MailKind::RegistrationAttempt, owner.id, serde_json::json!({}), Some(dedupe));
            crate::mail::queue(&txn, now, mail).await?;
            audit::append(
                &txn,
                &actor,
                Event::new("account.registration_attempted").subject("user", owner.id).owner(owner.id),
            )
            .await?;
        }
        None => {
            let id = Uuid::new_v4();
            let mut row = new_user_row(&state.keys, id, email, hash, Role::Claimant, now);
            row.language = Set(lang.code().to_string());
            row.email_verified_at = Set(None);
            row.insert(&txn).await?;
            let mail = Mail::to(MailKind::ConfirmAddress, id, serde_json::json!({}), None);
            crate::mail::queue(&txn, now, mail).await?;
            audit::append(
                &txn,
                &actor,
                Event::new("account.created")
                    .subject("user", id)
                    .owner(id)
                    .detail(serde_json::json!({"role": Role::Claimant.as_str()})),
            )
            .await?;
        }
    }
    match txn.commit().await {
        Ok(()) => Ok(()),
        // The same new address registered twice at once: the other won, and
        // this caller hears what a known address hears.
        Err(e) if e.sql_err().is_some_and(|e| matches!(e, sea_orm::SqlErr::UniqueConstraintViolation(_))) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct LinkClaims {
    iss: String,
    sub: String,
    typ: String,
    exp: i64,
}

/// The token in a confirmation link for `user`, made when the mail is sent
/// (it is never stored).
pub fn link_token(keys: &Keyring, user: Uuid, now: DateTime<Utc>) -> AppResult<String> {
    let claims = LinkClaims {
        iss: ISSUER.into(),
        sub: user.to_string(),
        typ: LINK_TYPE.into(),
        exp: (now + Duration::days(LINK_DAYS)).timestamp(),
    };
    encode(&Header::new(Algorithm::HS256), &claims, &EncodingKey::from_secret(keys.jwt_secret()))
        .map_err(|e| AppError::caused_by("jwt encode", e))
}

fn link_user(keys: &Keyring, token: &str) -> Option<Uuid> {
    let mut validation = Validation::new(Algorithm::HS256);
    validation.set_issuer(&[ISSUER]);
    validation.set_required_spec_claims(&["exp", "iss", "sub"]);
    let data = decode::<LinkClaims>(token.trim(), &DecodingKey::from_secret(keys.jwt_secret()), &validation).ok()?;
    (data.claims.typ == LINK_TYPE).then_some(())?;
    data.claims.sub.parse().ok()
}

/// Open a confirmation link: the address is proven. Opening it again is
/// fine; a link that is expired, altered or for a closed account is refused.
pub async fn confirm(state: &AppState, token: &str) -> AppResult<()> {
    let user_id = link_user(&state.keys, token).ok_or(AppError::WrongState("confirmation_link_invalid"))?;
    let row = user::Entity::find_by_id(user_id).one(state.db.conn()).await?;
    let row = row
        .filter(|u| u.erased_at.is_none() && !u.disabled)
        .ok_or(AppError::WrongState("confirmation_link_invalid"))?;
    if row.email_verified_at.is_some() {
        return Ok(());
    }
    let now = state.clock.now();
    let txn = state.db.begin_write().await?;
    user::Entity::update_many()
        .col_expr(user::Column::EmailVerifiedAt, Expr::value(Some(now)))
        .filter(user::Column::Id.eq(user_id))
        .filter(user::Column::EmailVerifiedAt.is_null())
        .exec(&txn)
        .await?;
    // Sessions remember whether the address is proven.
    state.sessions.forget_after(&txn, user_id).await?;
    let actor = Actor { user_id: Some(user_id), ..Default::default() };
    audit::append(&txn, &actor, Event::new("account.address_confirmed").subject("user", user_id).owner(user_id))
        .await?;
    txn.commit().await?;
    Ok(())
}

/// Whether the caller has proven their address.
pub async fn confirmed(state: &AppState, user_id: Uuid) -> AppResult<bool> {
    let row = user::Entity::find_by_id(user_id).one(state.db.conn()).await?.ok_or(AppError::Unauthenticated)?;
    Ok(row.email_verified_at.is_some())
}

/// Send the link again (once an hour at most; nothing if already proven).
pub async fn resend(state: &AppState, user: &CurrentUser) -> AppResult<()> {
    if confirmed(state, user.id).await? {
        return Ok(());
    }
    let now = state.clock.now();
    let dedupe = format!("confirm_address:{}:{}", user.id, now.format("%Y-%m-%dT%H"));
    let txn = state.db.begin_write().await?;
    let queued =
        crate::mail::queue(&txn, now, Mail::to(MailKind::ConfirmAddress, user.id, serde_json::json!({}), Some(dedupe)))
            .await?;
    if queued.is_some() {
        audit::append(
            &txn,
            &user.actor(),
            Event::new("account.confirmation_resent").subject("user", user.id).owner(user.id),
        )
        .await?;
    }
    txn.commit().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_link_names_its_user_and_nothing_else_passes() {
        let keys = crate::crypto::tests::test_keyring();
        let user = Uuid::new_v4();
        let token = link_token(&keys, user, Utc::now()).unwrap();
        assert_eq!(link_user(&keys, &token), Some(user));
        assert_eq!(link_user(&keys, &format!(" {token}\n")), Some(user), "a pasted link keeps working");
        let expired = link_token(&keys, user, Utc::now() - Duration::days(LINK_DAYS + 1)).unwrap();
        assert_eq!(link_user(&keys, &expired), None);
        let mut altered = token.clone();
        altered.insert(token.len() / 2, 'x');
        assert_eq!(link_user(&keys, &altered), None);
        use crate::config::{Secret, SecretKeys};
        use zeroize::Zeroizing;
        let other = Keyring::new(&SecretKeys {
            jwt: Secret::new(Zeroizing::new(vec![9u8; 32])),
            master: Secret::new(Zeroizing::new([4u8; 32])),
            blind_index: Secret::new(Zeroizing::new([5u8; 32])),
        });
        assert_eq!(link_user(&other, &token), None, "another portal's key");
    }
}
