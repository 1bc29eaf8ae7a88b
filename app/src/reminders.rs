//! Reminders before every deadline, queued by the periodic sweep job. Each
//! reminder has a dedupe key naming its recipient, subject and deadline
//! step, unique in the outbox: however often the sweep runs, on however
//! many servers, a reminder is queued once. A reminder whose condition is
//! gone (the notice answered, the draft submitted, the document signed) is
//! simply not found by the next sweep.
//!
//! | reminder | to | when (default; per case in its catalogue) |
//! |---|---|---|
//! | cure deadline | claimant | 7 and 2 days before a deficiency notice's deadline |
//! | unsubmitted draft | claimant | 14 and 3 days before the next open round's cut-off |
//! | new document version | claimant | once a newer version of a signed document is published |
//! | limitation period | claimant | 90 days before it ends, while in no frozen round |
//! | overdue in review | the case's lawyers | daily while claims wait `APP_REVIEW_OVERDUE_DAYS` (14) |
//! | alerts open | administrators | daily while an alert is unacknowledged for a day |
use std::collections::{BTreeMap, HashSet};

use chrono::{Duration, NaiveDate};
use entities::{
    alert, case_member, claim, consent, consent_document, filing_round, review_decision, round_member, user,
};
use rocket::futures::future::BoxFuture;
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect};
use serde_json::json;
use uuid::Uuid;

use crate::audit::{self, Actor, Event};
use crate::cases::ReminderSchedule;
use crate::db::WriteTx;
use crate::jobs::{Claimed, JobError};
use crate::mail::{self, Mail, MailKind};
use crate::AppState;

/// What one sweep queued, by kind.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SweepReport {
    pub queued: BTreeMap<&'static str, usize>,
}

impl SweepReport {
    pub fn total(&self) -> usize {
        self.queued.values().sum()
    }
}

/// The periodic sweep job: queue due reminders, then recompute the
/// verification signals that went stale.
pub fn sweep_job<'a>(state: &'a AppState, _claimed: &'a Claimed) -> BoxFuture<'a, Result<(), JobError>> {
    Box::pin(async move {
        sweep(state).await?;
        crate::review::desk::refresh_stale(state, None).await?;
        Ok(())
    })
}

/// Look for every reminder that is due and queue it (once).
pub async fn sweep(state: &AppState) -> Result<SweepReport, JobError> {
    let now = state.clock.now();
    let today = state.clock.today();
    let db = state.db.conn();
    let mut due: Vec<Mail> = Vec::new();
    for case in crate::cases::service::all_cases(db).await? {
        let schedule = case.catalogue.reminders.clone();
        due.extend(cure(state, case.model.id, &schedule, today).await?);
        due.extend(drafts(state, case.model.id, &schedule, today).await?);
        due.extend(consents(state, case.model.id).await?);
        due.extend(limitation(state, case.model.id, &schedule, today).await?);
        due.extend(overdue_reviews(state, case.model.id, today).await?);
    }
    due.extend(open_alerts(state, today).await?);
    let mut report = SweepReport::default();
    if due.is_empty() {
        return Ok(report);
    }
    let txn = state.db.begin_write().await?;
    for mail in due {
        let kind = mail.kind;
        let (recipient, claim) = (mail.recipient, mail.claim);
        if let Some(id) = mail::queue(&txn, now, mail).await? {
            *report.queued.entry(kind.as_str()).or_default() += 1;
            record(&txn, kind, id, recipient, claim).await?;
        }
    }
    txn.commit().await?;
    if report.total() > 0 {
        tracing::info!(queued = report.total(), "reminders queued");
    }
    Ok(report)
}

async fn record(txn: &WriteTx, kind: MailKind, id: Uuid, recipient: Uuid, claim: Option<Uuid>) -> Result<(), JobError> {
    audit::append(
        txn,
        &Actor::default(),
        Event::new("reminder.queued")
            .subject("outbox", id)
            .owner(recipient)
            .detail(json!({"kind": kind.as_str(), "claim": claim})),
    )
    .await?;
    Ok(())
}

/// Claims of a case in the given states.
async fn claims_in(state: &AppState, case_id: Uuid, statuses: &[&str]) -> Result<Vec<claim::Model>, JobError> {
    Ok(claim::Entity::find()
        .filter(claim::Column::CaseId.eq(case_id))
        .filter(claim::Column::Status.is_in(statuses.iter().copied()))
        .all(state.db.conn())
        .await?)
}

/// A deficiency notice not yet answered, its cure deadline near.
async fn cure(
    state: &AppState,
    case_id: Uuid,
    schedule: &ReminderSchedule,
    today: NaiveDate,
) -> Result<Vec<Mail>, JobError> {
    let mut out = Vec::new();
    for claim in claims_in(state, case_id, &["needs_info"]).await? {
        let notice = review_decision::Entity::find()
            .filter(review_decision::Column::ClaimId.eq(claim.id))
            .filter(review_decision::Column::Decision.eq("request_info"))
            .filter(review_decision::Column::AnsweredAt.is_null())
            .order_by_desc(review_decision::Column::CreatedAt)
            .one(state.db.conn())
            .await?;
        let Some((notice, deadline)) = notice.and_then(|n| n.cure_deadline.map(|d| (n, d))) else {
            continue;
        };
        let Some(step) = ReminderSchedule::due_step(&schedule.cure_days_before, deadline, today) else {
            continue;
        };
        // The notice itself told them the deadline: a step whose day had
        // already come when it was sent would only repeat it.
        if crate::today_of(notice.created_at) >= deadline - Duration::days(i64::from(step)) {
            continue;
        }
        let key = format!("reminder.cure:{}:{step}", notice.id);
        let params = json!({"deadline": deadline.to_string()});
        out.push(Mail::about(MailKind::CureReminder, &claim, params, Some(key)));
    }
    Ok(out)
}

/// Unsubmitted drafts before the cut-off of the case's next open round.
async fn drafts(
    state: &AppState,
    case_id: Uuid,
    schedule: &ReminderSchedule,
    today: NaiveDate,
) -> Result<Vec<Mail>, JobError> {
    let round = filing_round::Entity::find()
        .filter(filing_round::Column::CaseId.eq(case_id))
        .filter(filing_round::Column::State.eq("open"))
        .filter(filing_round::Column::CutOff.gte(today))
        .order_by_asc(filing_round::Column::CutOff)
        .one(state.db.conn())
        .await?;
    let Some(round) = round else {
        return Ok(Vec::new());
    };
    let Some(step) = ReminderSchedule::due_step(&schedule.draft_days_before_cut_off, round.cut_off, today) else {
        return Ok(Vec::new());
    };
    Ok(claims_in(state, case_id, &["draft"])
        .await?
        .into_iter()
        .map(|claim| {
            let key = format!("reminder.draft:{}:{}:{step}", claim.id, round.id);
            let params = json!({"cut_off": round.cut_off.to_string(), "round": round.name});
            Mail::about(MailKind::DraftReminder, &claim, params, Some(key))
        })
        .collect())
}

/// Claims that signed an older version of a document whose newest version
/// they have not signed.
async fn consents(state: &AppState, case_id: Uuid) -> Result<Vec<Mail>, JobError> {
    let documents = consent_document::Entity::find()
        .filter(consent_document::Column::CaseId.eq(case_id))
        .order_by_asc(consent_document::Column::Version)
        .all(state.db.conn())
        .await?;
    let mut newest: BTreeMap<&str, &consent_document::Model> = BTreeMap::new();
    for d in &documents {
        newest.insert(d.kind.as_str(), d);
    }
    let mut out = Vec::new();
    for doc in newest.values() {
        let older: Vec<Uuid> =
            documents.iter().filter(|d| d.kind == doc.kind && d.version < doc.version).map(|d| d.id).collect();
        if older.is_empty() {
            continue;
        }
        let signed_older: HashSet<Uuid> = signers(state, &older).await?;
        let signed_newest: HashSet<Uuid> = signers(state, &[doc.id]).await?;
        let waiting: Vec<Uuid> = signed_older.difference(&signed_newest).copied().collect();
        if waiting.is_empty() {
            continue;
        }
        let claims = claim::Entity::find()
            .filter(claim::Column::Id.is_in(waiting))
            .filter(claim::Column::Status.is_in(["draft", "submitted", "needs_info", "verified"]))
            .all(state.db.conn())
            .await?;
        out.extend(claims.into_iter().map(|claim| {
            let key = format!("reminder.consent:{}:{}", claim.id, doc.id);
            Mail::about(MailKind::ConsentReminder, &claim, json!({}), Some(key))
        }));
    }
    Ok(out)
}

async fn signers(state: &AppState, documents: &[Uuid]) -> Result<HashSet<Uuid>, JobError> {
    let ids: Vec<Uuid> = consent::Entity::find()
        .select_only()
        .column(consent::Column::ClaimId)
        .filter(consent::Column::DocumentId.is_in(documents.iter().copied()))
        .into_tuple()
        .all(state.db.conn())
        .await?;
    Ok(ids.into_iter().collect())
}

/// Claims whose limitation period ends soon and that no frozen round holds.
async fn limitation(
    state: &AppState,
    case_id: Uuid,
    schedule: &ReminderSchedule,
    today: NaiveDate,
) -> Result<Vec<Mail>, JobError> {
    let mut out = Vec::new();
    // The earliest learned-of date whose period ends within the window.
    let window = Duration::days(i64::from(schedule.limitation_days_before));
    let candidates = claim::Entity::find()
        .filter(claim::Column::CaseId.eq(case_id))
        .filter(claim::Column::Status.is_in(["draft", "submitted", "needs_info", "verified"]))
        .filter(claim::Column::LearnedOfLeakOn.is_not_null())
        .all(state.db.conn())
        .await?;
    for claim in candidates {
        let Some(learned) = claim.learned_of_leak_on else { continue };
        let last_day = crate::rounds::domain::limitation_last_day(learned);
        if last_day < today || last_day - today > window {
            continue;
        }
        if in_a_frozen_round(state, claim.id).await? {
            continue;
        }
        let key = format!("reminder.limitation:{}:{last_day}", claim.id);
        let params = json!({"last_day": last_day.to_string()});
        out.push(Mail::about(MailKind::LimitationReminder, &claim, params, Some(key)));
    }
    Ok(out)
}

async fn in_a_frozen_round(state: &AppState, claim_id: Uuid) -> Result<bool, JobError> {
    let rounds: Vec<Uuid> = round_member::Entity::find()
        .select_only()
        .column(round_member::Column::RoundId)
        .filter(round_member::Column::ClaimId.eq(claim_id))
        .into_tuple()
        .all(state.db.conn())
        .await?;
    if rounds.is_empty() {
        return Ok(false);
    }
    let frozen = filing_round::Entity::find()
        .filter(filing_round::Column::Id.is_in(rounds))
        .filter(filing_round::Column::State.ne("open"))
        .one(state.db.conn())
        .await?;
    Ok(frozen.is_some())
}

/// One digest a day to each lawyer of a case with claims overdue in review.
async fn overdue_reviews(state: &AppState, case_id: Uuid, today: NaiveDate) -> Result<Vec<Mail>, JobError> {
    let days = state.settings.background.review_overdue_days;
    let before = state.clock.now() - Duration::days(i64::from(days));
    let overdue = claim::Entity::find()
        .filter(claim::Column::CaseId.eq(case_id))
        .filter(claim::Column::Status.eq("submitted"))
        .filter(claim::Column::SubmittedAt.lte(before))
        .count(state.db.conn())
        .await?;
    if overdue == 0 {
        return Ok(Vec::new());
    }
    let lawyers: Vec<Uuid> = case_member::Entity::find()
        .select_only()
        .column(case_member::Column::UserId)
        .filter(case_member::Column::CaseId.eq(case_id))
        .into_tuple()
        .all(state.db.conn())
        .await?;
    Ok(lawyers
        .into_iter()
        .map(|lawyer| Mail {
            kind: MailKind::ReviewOverdue,
            recipient: lawyer,
            claim: None,
            params: json!({"count": overdue, "days": days}),
            dedupe_key: Some(format!("staff.review_overdue:{case_id}:{lawyer}:{today}")),
        })
        .collect())
}

/// One digest a day to each administrator while an alert waits for more than a day.
async fn open_alerts(state: &AppState, today: NaiveDate) -> Result<Vec<Mail>, JobError> {
    let before = state.clock.now() - Duration::days(1);
    let open = alert::Entity::find()
        .filter(alert::Column::AcknowledgedAt.is_null())
        .filter(alert::Column::CreatedAt.lte(before))
        .count(state.db.conn())
        .await?;
    if open == 0 {
        return Ok(Vec::new());
    }
    let admins: Vec<Uuid> = user::Entity::find()
        .select_only()
        .column(user::Column::Id)
        .filter(user::Column::Role.eq("admin"))
        .filter(user::Column::Disabled.eq(false))
        .filter(user::Column::ErasedAt.is_null())
        .into_tuple()
        .all(state.db.conn())
        .await?;
    Ok(admins
        .into_iter()
        .map(|admin| Mail {
            kind: MailKind::AlertsOpen,
            recipient: admin,
            claim: None,
            params: json!({"count": open}),
            dedupe_key: Some(format!("staff.alerts_open:{admin}:{today}")),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn the_due_step_is_the_nearest_step_whose_day_has_come() {
        let steps = [7, 2];
        let deadline = d("2026-12-16");
        assert_eq!(ReminderSchedule::due_step(&steps, deadline, d("2026-12-08")), None);
        assert_eq!(ReminderSchedule::due_step(&steps, deadline, d("2026-12-09")), Some(7));
        assert_eq!(ReminderSchedule::due_step(&steps, deadline, d("2026-12-13")), Some(7));
        assert_eq!(ReminderSchedule::due_step(&steps, deadline, d("2026-12-14")), Some(2));
        assert_eq!(ReminderSchedule::due_step(&steps, deadline, d("2026-12-16")), Some(2));
        assert_eq!(ReminderSchedule::due_step(&steps, deadline, d("2026-12-17")), None);
    }
}
