//! Who on the staff may read which claims, and the watch on their reads:
//! lawyers see only the cases they are members of (S7), staff pass the
//! second factor before reading a claim (S5), every read of a claim or its
//! evidence is audited for the claimant to see (S10), and past a per-user
//! hourly cap a read is refused with 429 and an alert is raised (S9).
use chrono::Duration;
use entities::{alert, audit_event, case_member, claim};
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use uuid::Uuid;

use crate::audit::{self, Event};
use crate::auth::{CurrentUser, Role};
use crate::error::{AppError, AppResult};
use crate::intake::domain::ClaimStatus;
use crate::AppState;

/// A read the portal counts against the reader's hourly cap.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Read {
    ClaimView,
    EvidenceDownload,
    /// A filing-bundle export (every plaintiff's data at once).
    Export,
}

impl Read {
    /// The audit action that records the read (and is counted).
    pub fn action(self) -> &'static str {
        match self {
            Read::ClaimView => "claim.viewed",
            Read::EvidenceDownload => "evidence.viewed",
            Read::Export => "export.requested",
        }
    }
    pub fn alert_kind(self) -> &'static str {
        match self {
            Read::ClaimView => "cap.claim_views",
            Read::EvidenceDownload => "cap.evidence_downloads",
            Read::Export => "cap.exports",
        }
    }
    pub fn cap(self, state: &AppState) -> u32 {
        match self {
            Read::ClaimView => state.settings.claim_views_per_hour,
            Read::EvidenceDownload => state.settings.evidence_downloads_per_hour,
            Read::Export => state.settings.exports_per_hour,
        }
    }
}

/// Staff only, and only after the second factor in this session.
/// Claimants get 404: the review desk does not exist for them.
pub fn require_staff(user: &CurrentUser) -> AppResult<()> {
    match user.role {
        Role::Claimant => Err(AppError::NotFound),
        _ if !user.mfa => Err(AppError::SecondFactorRequired),
        _ => Ok(()),
    }
}

/// The cases a staff member works on: `None` means every case (admins).
pub async fn case_scope(state: &AppState, user: &CurrentUser) -> AppResult<Option<Vec<Uuid>>> {
    if user.role == Role::Admin {
        return Ok(None);
    }
    let ids = case_member::Entity::find()
        .filter(case_member::Column::UserId.eq(user.id))
        .all(state.db.conn())
        .await?
        .into_iter()
        .map(|m| m.case_id)
        .collect();
    Ok(Some(ids))
}

pub async fn is_member(state: &AppState, case_id: Uuid, user_id: Uuid) -> AppResult<bool> {
    Ok(case_member::Entity::find_by_id((case_id, user_id)).one(state.db.conn()).await?.is_some())
}

/// May this staff member work on the case? Admins may; lawyers if members.
pub async fn may_work_on(state: &AppState, user: &CurrentUser, case_id: Uuid) -> AppResult<bool> {
    Ok(match user.role {
        Role::Admin => true,
        Role::Lawyer => is_member(state, case_id, user.id).await?,
        Role::Claimant => false,
    })
}

/// A claim a staff member may work on: submitted at some point (drafts
/// are the claimant's own), not erased, in one of the caller's cases.
/// Anything else, including another case's claim, is `NotFound`.
pub async fn staff_claim(state: &AppState, user: &CurrentUser, claim_id: Uuid) -> AppResult<claim::Model> {
    require_staff(user)?;
    let model = claim::Entity::find_by_id(claim_id).one(state.db.conn()).await?.ok_or(AppError::NotFound)?;
    let status = crate::intake::service::status_of(&model)?;
    if matches!(status, ClaimStatus::Draft | ClaimStatus::Erased) || model.submitted_at.is_none() {
        return Err(AppError::NotFound);
    }
    if !may_work_on(state, user, model.case_id).await? {
        return Err(AppError::NotFound);
    }
    Ok(model)
}

/// Record a read of `claim`'s personal data by a staff member, within the
/// reader's hourly cap. The read is audited with the claimant as owner, so
/// it shows in their "who accessed my data". The count and the record are
/// one transaction under the audit chain's lock, so concurrent reads cannot
/// slip past the cap. Past the cap: an alert for administrators (once an
/// hour per reader and kind) and `TooManyRequests`.
pub async fn record_read(
    state: &AppState,
    user: &CurrentUser,
    read: Read,
    claim: &claim::Model,
    subject: (&'static str, Uuid),
) -> AppResult<()> {
    let event = Event::new(read.action())
        .subject(subject.0, subject.1)
        .owner(claim.claimant_id)
        .detail(serde_json::json!({"claim": claim.number, "purpose": "review"}));
    record_capped(state, user, read, event).await
}

/// Record `event` (whose action is `read.action()`) within the caller's
/// hourly cap for `read`: past it, nothing is recorded, an alert is raised
/// and the answer is `TooManyRequests`.
pub async fn record_capped(state: &AppState, user: &CurrentUser, read: Read, event: Event) -> AppResult<()> {
    let since = state.clock.now() - Duration::hours(1);
    let txn = state.db.begin_write().await?;
    audit::append(&txn, &user.actor(), event).await?;
    let count = audit_event::Entity::find()
        .filter(audit_event::Column::ActorId.eq(user.id))
        .filter(audit_event::Column::Action.eq(read.action()))
        .filter(audit_event::Column::At.gte(since))
        .count(&*txn)
        .await?;
    let cap = u64::from(read.cap(state));
    if count <= cap {
        txn.commit().await?;
        return Ok(());
    }
    drop(txn);
    raise_cap_alert(state, user, read, cap).await?;
    Err(AppError::TooManyRequests)
}

async fn raise_cap_alert(state: &AppState, user: &CurrentUser, read: Read, cap: u64) -> AppResult<()> {
    let now = state.clock.now();
    let txn = state.db.begin_write().await?;
    let recent = alert::Entity::find()
        .filter(alert::Column::Kind.eq(read.alert_kind()))
        .filter(alert::Column::UserId.eq(user.id))
        .filter(alert::Column::CreatedAt.gte(now - Duration::hours(1)))
        .count(&*txn)
        .await?;
    let refused = Event::new("access.capped")
        .subject("user", user.id)
        .detail(serde_json::json!({"kind": read.alert_kind(), "cap_per_hour": cap}));
    if recent == 0 {
        let id = Uuid::new_v4();
        alert::Entity::insert(alert::ActiveModel {
            id: sea_orm::Set(id),
            kind: sea_orm::Set(read.alert_kind().into()),
            user_id: sea_orm::Set(Some(user.id)),
            detail: sea_orm::Set(
                serde_json::json!({"cap_per_hour": cap, "role": user.role.as_str(), "action": read.action()})
                    .to_string(),
            ),
            created_at: sea_orm::Set(now),
            acknowledged_at: sea_orm::Set(None),
            acknowledged_by: sea_orm::Set(None),
        })
        .exec_without_returning(&*txn)
        .await?;
        audit::append(
            &txn,
            &user.actor(),
            Event::new("alert.raised").subject("alert", id).detail(serde_json::json!({"kind": read.alert_kind()})),
        )
        .await?;
        tracing::warn!(user = %user.id, kind = read.alert_kind(), "a user passed an hourly read cap");
    }
    audit::append(&txn, &user.actor(), refused).await?;
    txn.commit().await?;
    Ok(())
}
