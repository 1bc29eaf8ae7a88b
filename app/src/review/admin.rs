//! Administration around the desk: which lawyers work on which case, the
//! case's auto-verification policy, and the alerts raised by the read caps.
use chrono::{DateTime, Utc};
use entities::{alert, case, case_member};
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set};
use serde::Serialize;
use uuid::Uuid;

use super::desk::MemberView;
use crate::audit::{self, Event};
use crate::auth::{CurrentUser, Role};
use crate::domain::{Email, ErrorCode, FieldErrors};
use crate::error::{AppError, AppResult};
use crate::AppState;

pub async fn members(state: &AppState, user: &CurrentUser, slug: &str) -> AppResult<Vec<MemberView>> {
    user.require(Role::Admin)?;
    let case = state.cases.by_slug(state.db.conn(), slug).await?;
    let rows = case_member::Entity::find()
        .filter(case_member::Column::CaseId.eq(case.model.id))
        .order_by_asc(case_member::Column::AddedAt)
        .all(state.db.conn())
        .await?;
    let mut out = Vec::with_capacity(rows.len());
    for m in rows {
        let account = crate::auth::service::account_by_id(state, m.user_id).await?;
        out.push(MemberView { user_id: account.id, email: account.email, role: account.role });
    }
    Ok(out)
}

/// Which of `ids` belong to disabled accounts.
pub async fn disabled_among(state: &AppState, ids: impl Iterator<Item = Uuid>) -> AppResult<Vec<Uuid>> {
    Ok(entities::user::Entity::find()
        .filter(entities::user::Column::Id.is_in(ids.collect::<Vec<_>>()))
        .filter(entities::user::Column::Disabled.eq(true))
        .all(state.db.conn())
        .await?
        .into_iter()
        .map(|u| u.id)
        .collect())
}

/// Make a lawyer a member of a case (by e-mail). Anyone else, or an
/// unknown address, is a field error; adding twice is harmless.
pub async fn add_member(state: &AppState, user: &CurrentUser, slug: &str, email: &str) -> AppResult<MemberView> {
    user.require(Role::Admin)?;
    add_member_by(state, &user.actor(), Some(user.id), slug, email).await
}

/// Add a lawyer to a case on behalf of `actor` (an administrator, or the operator's CLI).
pub async fn add_member_by(
    state: &AppState,
    actor: &crate::audit::Actor,
    added_by: Option<Uuid>,
    slug: &str,
    email: &str,
) -> AppResult<MemberView> {
    let case = state.cases.by_slug(state.db.conn(), slug).await?;
    let mut errors = FieldErrors::new();
    let Some(email) = errors.check("email", Email::parse(email)) else {
        return Err(errors.into());
    };
    let index = crate::auth::service::email_index(&state.keys, &email);
    let account = entities::user::Entity::find()
        .filter(entities::user::Column::EmailIndex.eq(index))
        .filter(entities::user::Column::Role.eq(Role::Lawyer.as_str()))
        .filter(entities::user::Column::Disabled.eq(false))
        .one(state.db.conn())
        .await?;
    let Some(account) = account else {
        errors.add("email", ErrorCode::NotALawyer);
        return Err(errors.into());
    };
    if case_member::Entity::find_by_id((case.model.id, account.id)).one(state.db.conn()).await?.is_none() {
        let txn = state.db.begin_write().await?;
        case_member::Entity::insert(case_member::ActiveModel {
            case_id: Set(case.model.id),
            user_id: Set(account.id),
            added_at: Set(state.clock.now()),
            added_by: Set(added_by),
        })
        .exec_without_returning(&txn)
        .await?;
        audit::append(
            &txn,
            actor,
            Event::new("case.member_added")
                .subject("case", case.model.id)
                .detail(serde_json::json!({"user": account.id})),
        )
        .await?;
        txn.commit().await?;
    }
    Ok(MemberView { user_id: account.id, email: email.as_str().to_string(), role: Role::Lawyer })
}

pub async fn remove_member(state: &AppState, user: &CurrentUser, slug: &str, member: Uuid) -> AppResult<()> {
    user.require(Role::Admin)?;
    let case = state.cases.by_slug(state.db.conn(), slug).await?;
    let txn = state.db.begin_write().await?;
    let removed = case_member::Entity::delete_by_id((case.model.id, member)).exec(&txn).await?;
    if removed.rows_affected == 0 {
        return Err(AppError::NotFound);
    }
    // Their assignments go back to the pool.
    entities::claim::Entity::update_many()
        .col_expr(entities::claim::Column::AssigneeId, Expr::value(Option::<Uuid>::None))
        .filter(entities::claim::Column::CaseId.eq(case.model.id))
        .filter(entities::claim::Column::AssigneeId.eq(member))
        .exec(&txn)
        .await?;
    audit::append(
        &txn,
        &user.actor(),
        Event::new("case.member_removed").subject("case", case.model.id).detail(serde_json::json!({"user": member})),
    )
    .await?;
    txn.commit().await?;
    Ok(())
}

/// Turn the case's auto-verification policy on or off.
pub async fn set_auto_verify(state: &AppState, user: &CurrentUser, slug: &str, on: bool) -> AppResult<()> {
    user.require(Role::Admin)?;
    let case = state.cases.by_slug(state.db.conn(), slug).await?;
    let txn = state.db.begin_write().await?;
    case::Entity::update_many()
        .col_expr(case::Column::AutoVerify, Expr::value(on))
        .col_expr(case::Column::UpdatedAt, Expr::value(state.clock.now()))
        .filter(case::Column::Id.eq(case.model.id))
        .exec(&txn)
        .await?;
    audit::append(
        &txn,
        &user.actor(),
        Event::new("case.policy_changed").subject("case", case.model.id).detail(serde_json::json!({"auto_verify": on})),
    )
    .await?;
    txn.commit().await?;
    state.cases.forget(case.model.id);
    Ok(())
}

#[derive(Clone, Debug, Serialize)]
pub struct AlertView {
    pub id: Uuid,
    pub kind: String,
    pub user_id: Option<Uuid>,
    pub user_email: Option<String>,
    pub detail: serde_json::Value,
    pub created_at: DateTime<Utc>,
    pub acknowledged_at: Option<DateTime<Utc>>,
}

/// The most recent alerts, newest first.
pub async fn alerts(state: &AppState, user: &CurrentUser) -> AppResult<Vec<AlertView>> {
    user.require(Role::Admin)?;
    let rows = alert::Entity::find().order_by_desc(alert::Column::CreatedAt).limit(200).all(state.db.conn()).await?;
    let mut out = Vec::with_capacity(rows.len());
    for a in rows {
        let user_email = match a.user_id {
            Some(id) => crate::auth::service::account_by_id(state, id).await.ok().map(|acc| acc.email),
            None => None,
        };
        out.push(AlertView {
            id: a.id,
            kind: a.kind,
            user_id: a.user_id,
            user_email,
            detail: serde_json::from_str(&a.detail).unwrap_or_default(),
            created_at: a.created_at,
            acknowledged_at: a.acknowledged_at,
        });
    }
    Ok(out)
}

pub async fn acknowledge_alert(state: &AppState, user: &CurrentUser, id: Uuid) -> AppResult<()> {
    user.require(Role::Admin)?;
    let txn = state.db.begin_write().await?;
    // An alert about an administrator is for another administrator to clear.
    let about = alert::Entity::find_by_id(id).one(&txn).await?.ok_or(AppError::NotFound)?;
    if about.user_id == Some(user.id) {
        return Err(AppError::Conflict("alert_about_yourself"));
    }
    let changed = alert::Entity::update_many()
        .col_expr(alert::Column::AcknowledgedAt, Expr::value(state.clock.now()))
        .col_expr(alert::Column::AcknowledgedBy, Expr::value(user.id))
        .filter(alert::Column::Id.eq(id))
        .filter(alert::Column::AcknowledgedAt.is_null())
        .exec(&txn)
        .await?;
    if changed.rows_affected == 0 {
        return Err(AppError::NotFound);
    }
    audit::append(&txn, &user.actor(), Event::new("alert.acknowledged").subject("alert", id)).await?;
    txn.commit().await?;
    Ok(())
}
