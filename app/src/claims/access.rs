//! Who on the staff may read which claims, and the watch on their reads:
//! lawyers see only the cases they are members of (S7), staff pass the
//! second factor before reading a claim (S5), every read of a claim or its
//! evidence is audited for the claimant to see (S10), and past a per-user
//! cap over an hour or a day a read is refused with 429 and an alert is
//! raised (S9).
use chrono::Duration;
use entities::{alert, audit_event, case_member, claim, read_counter};
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, ExprTrait, PaginatorTrait, QueryFilter, QuerySelect, Set};
use uuid::Uuid;

use super::domain::ClaimStatus;
use crate::audit::{self, Event};
use crate::auth::{CurrentUser, Role};
use crate::db::WriteTx;
use crate::error::{AppError, AppResult};
use crate::mail::{Mail, MailKind};
use crate::AppState;

/// A read the portal counts against the reader's caps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Read {
    ClaimView,
    EvidenceDownload,
    /// A filing-bundle export (every plaintiff's data at once).
    Export,
    /// A filing bundle downloaded.
    BundleDownload,
}

impl Read {
    /// The audit action that records the read (and is counted).
    pub fn action(self) -> &'static str {
        match self {
            Read::ClaimView => "claim.viewed",
            Read::EvidenceDownload => "evidence.viewed",
            Read::Export => "export.requested",
            Read::BundleDownload => "export.downloaded",
        }
    }
    pub fn alert_kind(self) -> &'static str {
        match self {
            Read::ClaimView => "cap.claim_views",
            Read::EvidenceDownload => "cap.evidence_downloads",
            Read::Export => "cap.exports",
            Read::BundleDownload => "cap.bundle_downloads",
        }
    }
    /// The caps: (per hour, per 24 hours).
    pub fn caps(self, state: &AppState) -> (u32, u32) {
        let s = &state.settings;
        match self {
            Read::ClaimView => (s.claim_views_per_hour, s.claim_views_per_day),
            Read::EvidenceDownload => (s.evidence_downloads_per_hour, s.evidence_downloads_per_day),
            Read::Export => (s.exports_per_hour, s.exports_per_day),
            Read::BundleDownload => (s.bundle_downloads_per_hour, s.bundle_downloads_per_day),
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
    let status = super::store::status_of(&model)?;
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
/// one transaction that first bumps the reader's counter row, which orders
/// that reader's concurrent reads, so none slips past the cap. Past the cap: an alert for administrators (once an
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
/// caps for `read`, over the last hour and the last 24 hours: past either,
/// nothing is recorded, an alert is raised and the answer is
/// `TooManyRequests`. A day well above the reader's own usual (three times
/// their daily average over the two weeks before, and at least 50) raises
/// an alert without refusing.
pub async fn record_capped(state: &AppState, user: &CurrentUser, read: Read, event: Event) -> AppResult<()> {
    let now = state.clock.now();
    let (per_hour, per_day) = read.caps(state);
    let txn = state.db.begin_write().await?;
    count_read(&txn, user.id, read).await?;
    audit::append(&txn, &user.actor(), event).await?;
    let count_since = |since: chrono::DateTime<chrono::Utc>| {
        audit_event::Entity::find()
            .filter(audit_event::Column::ActorId.eq(user.id))
            .filter(audit_event::Column::Action.eq(read.action()))
            .filter(audit_event::Column::At.gte(since))
    };
    // The day's reads and, among them, the last hour's: one query.
    let last_hour = Expr::case(audit_event::Column::At.gte(now - Duration::hours(1)), 1).finally(0);
    let (day, hour): (i64, Option<i64>) = count_since(now - Duration::hours(24))
        .select_only()
        .column_as(audit_event::Column::Id.count(), "day")
        .column_as(Expr::expr(last_hour).sum(), "hour")
        .into_tuple()
        .one(&txn)
        .await?
        .unwrap_or_default();
    let (day, hour) = (u64::try_from(day).unwrap_or(0), u64::try_from(hour.unwrap_or(0)).unwrap_or(0));
    let window = if hour > u64::from(per_hour) {
        Some(("hour", per_hour))
    } else if day > u64::from(per_day) {
        Some(("day", per_day))
    } else {
        None
    };
    let Some((window, cap)) = window else {
        // Looked at every 50 reads of the day, so that the look costs little.
        if day >= BASELINE_FLOOR && day % BASELINE_FLOOR == 0 {
            let before = count_since(now - Duration::days(15)).count(&txn).await?.saturating_sub(day);
            if day > 3 * Ord::max(before.div_ceil(14), 1) {
                let kind = format!("baseline.{}", read.alert_kind().trim_start_matches("cap."));
                let detail = serde_json::json!({"today": day, "usual_per_day": before / 14, "action": read.action()});
                raise_alert(state, &txn, &kind, Some(user), detail, Duration::hours(24)).await?;
            }
        }
        txn.commit().await?;
        return Ok(());
    };
    drop(txn);
    let txn = state.db.begin_write().await?;
    let detail = serde_json::json!({"window": window, "cap": cap, "role": user.role.as_str(), "action": read.action()});
    raise_alert(state, &txn, read.alert_kind(), Some(user), detail, Duration::hours(1)).await?;
    let refused = Event::new("access.capped")
        .subject("user", user.id)
        .detail(serde_json::json!({"kind": read.alert_kind(), "window": window, "cap": cap}));
    audit::append(&txn, &user.actor(), refused).await?;
    txn.commit().await?;
    Err(AppError::TooManyRequests)
}

/// Bump the reader's counter of `read`s. The row's update is the reader's
/// own lock (on PostgreSQL it is held to the commit): the next read of the
/// same kind by the same person counts after this one is recorded. Others'
/// reads and every other write go on beside it.
async fn count_read(txn: &WriteTx, reader: Uuid, read: Read) -> AppResult<()> {
    use sea_orm::sea_query::OnConflict;
    read_counter::Entity::insert(read_counter::ActiveModel {
        user_id: Set(reader),
        kind: Set(read.action().to_string()),
        n: Set(1),
    })
    .on_conflict(
        OnConflict::columns([read_counter::Column::UserId, read_counter::Column::Kind])
            .value(read_counter::Column::N, Expr::col((read_counter::Entity, read_counter::Column::N)).add(1))
            .to_owned(),
    )
    .exec_without_returning(txn)
    .await?;
    Ok(())
}

/// A day's reads below this never count as unusual.
const BASELINE_FLOOR: u64 = 50;

/// Raise an alert of `kind` about `about` (once per `quiet` per person and
/// kind), audited, with a mail to every administrator other than the person
/// it is about. Inside the caller's transaction.
pub async fn raise_alert(
    state: &AppState,
    txn: &WriteTx,
    kind: &str,
    about: Option<&CurrentUser>,
    detail: serde_json::Value,
    quiet: Duration,
) -> AppResult<()> {
    let now = state.clock.now();
    let mut recent =
        alert::Entity::find().filter(alert::Column::Kind.eq(kind)).filter(alert::Column::CreatedAt.gte(now - quiet));
    if let Some(user) = about {
        recent = recent.filter(alert::Column::UserId.eq(user.id));
    }
    if recent.count(txn).await? > 0 {
        return Ok(());
    }
    let id = Uuid::new_v4();
    alert::Entity::insert(alert::ActiveModel {
        id: sea_orm::Set(id),
        kind: sea_orm::Set(kind.to_string()),
        user_id: sea_orm::Set(about.map(|u| u.id)),
        detail: sea_orm::Set(detail.to_string()),
        created_at: sea_orm::Set(now),
        acknowledged_at: sea_orm::Set(None),
        acknowledged_by: sea_orm::Set(None),
    })
    .exec_without_returning(txn)
    .await?;
    let actor = about.map(CurrentUser::actor).unwrap_or_default();
    audit::append(
        txn,
        &actor,
        Event::new("alert.raised").subject("alert", id).detail(serde_json::json!({"kind": kind})),
    )
    .await?;
    let admins = entities::user::Entity::find()
        .filter(entities::user::Column::Role.eq(Role::Admin.as_str()))
        .filter(entities::user::Column::Disabled.eq(false))
        .all(txn)
        .await?;
    for admin in admins.iter().filter(|a| about.is_none_or(|u| u.id != a.id)) {
        let mail = Mail::to(MailKind::AlertRaised, admin.id, serde_json::json!({"kind": kind}), None);
        crate::mail::queue(txn, now, mail).await?;
    }
    tracing::warn!(kind, user = ?about.map(|u| u.id), "alert raised");
    Ok(())
}
