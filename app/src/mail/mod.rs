//! Mail that reaches people. Anything that must tell somebody something
//! queues an outbox row and its delivery job in its own transaction
//! ([`queue`]); a job runner renders the row in the recipient's language
//! and sends it over SMTP ([`deliver`]). Mail carries no personal data beyond
//! what the recipient needs: a claim number, a deadline, where to sign in;
//! never a reason, a name or an address.
pub mod deliver;
pub mod render;
pub mod smtp;

use chrono::{DateTime, Utc};
use entities::{outbox, user};
use sea_orm::sea_query::OnConflict;
use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set};
use serde_json::Value;
use uuid::Uuid;

use crate::jobs;

/// What a mail says. Each has a template under `templates/mail/`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MailKind {
    /// A deficiency notice: more information by a cure deadline.
    InfoRequested,
    Verified,
    Rejected,
    /// Reminder: a deficiency notice's cure deadline is near.
    CureReminder,
    /// Reminder: an unsubmitted draft before a filing round's cut-off.
    DraftReminder,
    /// A new version of a document the claimant signed waits to be signed.
    ConsentReminder,
    /// Reminder: the limitation period ends within 90 days.
    LimitationReminder,
    /// Staff: claims overdue in review.
    ReviewOverdue,
    /// Staff: alerts not acknowledged.
    AlertsOpen,
    /// A new account's link to prove its address.
    ConfirmAddress,
    /// Someone tried to register with an address that has an account.
    RegistrationAttempt,
    /// Staff: an alert was raised (to every administrator but its subject).
    AlertRaised,
}

impl MailKind {
    pub const ALL: [MailKind; 12] = [
        MailKind::InfoRequested,
        MailKind::Verified,
        MailKind::Rejected,
        MailKind::CureReminder,
        MailKind::DraftReminder,
        MailKind::ConsentReminder,
        MailKind::LimitationReminder,
        MailKind::ReviewOverdue,
        MailKind::AlertsOpen,
        MailKind::ConfirmAddress,
        MailKind::RegistrationAttempt,
        MailKind::AlertRaised,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            MailKind::InfoRequested => "claim.info_requested",
            MailKind::Verified => "claim.verified",
            MailKind::Rejected => "claim.rejected",
            MailKind::CureReminder => "reminder.cure",
            MailKind::DraftReminder => "reminder.draft",
            MailKind::ConsentReminder => "reminder.consent",
            MailKind::LimitationReminder => "reminder.limitation",
            MailKind::ReviewOverdue => "staff.review_overdue",
            MailKind::AlertsOpen => "staff.alerts_open",
            MailKind::ConfirmAddress => "account.confirm_address",
            MailKind::RegistrationAttempt => "account.registration_attempt",
            MailKind::AlertRaised => "staff.alert_raised",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == raw)
    }

    /// Whether the recipient may turn this mail off. Notices, decisions and
    /// changes to the documents a claimant signed are always sent.
    pub fn optional(self) -> bool {
        matches!(self, MailKind::CureReminder | MailKind::DraftReminder | MailKind::LimitationReminder)
    }

    pub fn is_reminder(self) -> bool {
        matches!(
            self,
            MailKind::CureReminder
                | MailKind::DraftReminder
                | MailKind::ConsentReminder
                | MailKind::LimitationReminder
                | MailKind::ReviewOverdue
                | MailKind::AlertsOpen
        )
    }
}

/// One mail to queue.
#[derive(Clone, Debug)]
pub struct Mail {
    pub kind: MailKind,
    pub recipient: Uuid,
    pub claim: Option<Uuid>,
    /// The template's parameters: ids, numbers and dates only.
    pub params: Value,
    /// Set for reminders: the same key is queued once, ever.
    pub dedupe_key: Option<String>,
}

impl Mail {
    /// A mail to an account, about no claim.
    pub fn to(kind: MailKind, recipient: Uuid, params: Value, dedupe_key: Option<String>) -> Self {
        Self { kind, recipient, claim: None, params, dedupe_key }
    }

    /// A mail to a claim's claimant about it: the claim number joins `params`.
    pub fn about(
        kind: MailKind,
        claim: &entities::claim::Model,
        mut params: Value,
        dedupe_key: Option<String>,
    ) -> Self {
        if let Some(map) = params.as_object_mut() {
            map.insert("number".into(), claim.number.clone().into());
        }
        Self { kind, recipient: claim.claimant_id, claim: Some(claim.id), params, dedupe_key }
    }
}

/// Queue a mail and its delivery inside the caller's transaction. Returns
/// the outbox id, or `None` when it was not queued: the dedupe key was
/// queued before, the recipient is gone, or turned this kind of mail off.
pub async fn queue(conn: &impl ConnectionTrait, now: DateTime<Utc>, mail: Mail) -> Result<Option<Uuid>, DbErr> {
    let Some(recipient) = user::Entity::find_by_id(mail.recipient).one(conn).await? else {
        return Ok(None);
    };
    if recipient.erased_at.is_some() || recipient.disabled || (mail.kind.optional() && !recipient.reminders) {
        return Ok(None);
    }
    let id = Uuid::new_v4();
    let inserted = outbox::Entity::insert(outbox::ActiveModel {
        id: Set(id),
        recipient_id: Set(mail.recipient),
        kind: Set(mail.kind.as_str().into()),
        claim_id: Set(mail.claim),
        subject: Set(String::new()),
        body: Set(String::new()),
        created_at: Set(now),
        sent_at: Set(None),
        language: Set(recipient.language.clone()),
        params: Set(Some(mail.params.to_string())),
        dedupe_key: Set(mail.dedupe_key.clone()),
        message_id: Set(None),
    })
    .on_conflict(OnConflict::column(outbox::Column::DedupeKey).do_nothing().to_owned())
    .exec_without_returning(conn)
    .await?;
    if inserted == 0 {
        return Ok(None);
    }
    jobs::enqueue(conn, now, jobs::Kind::Mail, &delivery_key(id), serde_json::json!({ "outbox": id })).await?;
    Ok(Some(id))
}

/// The delivery job's key for an outbox row.
pub fn delivery_key(outbox_id: Uuid) -> String {
    format!("mail:{outbox_id}")
}

/// A mail the portal sent or will send about a claim, as its owner sees it.
#[derive(Clone, Debug, serde::Serialize)]
pub struct MailLine {
    /// The kind of mail (`reminder.cure`, `claim.info_requested`, …).
    pub kind: String,
    pub queued_at: DateTime<Utc>,
    pub sent_at: Option<DateTime<Utc>>,
}

/// The mail about one of the caller's claims, newest first.
pub async fn about_claim(conn: &impl ConnectionTrait, recipient: Uuid, claim_id: Uuid) -> Result<Vec<MailLine>, DbErr> {
    Ok(outbox::Entity::find()
        .filter(outbox::Column::RecipientId.eq(recipient))
        .filter(outbox::Column::ClaimId.eq(claim_id))
        .order_by_desc(outbox::Column::CreatedAt)
        .all(conn)
        .await?
        .into_iter()
        .map(|row| MailLine { kind: row.kind, queued_at: row.created_at, sent_at: row.sent_at })
        .collect())
}

/// The outbox at a glance, for administrators.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct Overview {
    /// An SMTP server is configured.
    pub configured: bool,
    pub waiting: u64,
    pub sent_last_day: u64,
    /// Waiting after a failed attempt that may pass.
    pub retrying: u64,
    /// Given up (a refusal, or attempts exhausted).
    pub failed: u64,
    pub recent_failures: Vec<Failure>,
}

#[derive(Clone, Debug, serde::Serialize)]
pub struct Failure {
    pub at: DateTime<Utc>,
    pub kind: String,
    pub error: String,
    pub given_up: bool,
}

pub async fn overview(conn: &impl ConnectionTrait, now: DateTime<Utc>, configured: bool) -> Result<Overview, DbErr> {
    use entities::job;
    use sea_orm::PaginatorTrait;
    let waiting = outbox::Entity::find().filter(outbox::Column::SentAt.is_null()).count(conn).await?;
    let sent_last_day =
        outbox::Entity::find().filter(outbox::Column::SentAt.gte(now - chrono::Duration::days(1))).count(conn).await?;
    let troubled = job::Entity::find()
        .filter(job::Column::Kind.eq(jobs::Kind::Mail.as_str()))
        .filter(job::Column::Error.is_not_null())
        .filter(job::Column::Status.is_in([job::Status::Queued, job::Status::Failed]));
    let retrying = troubled.clone().filter(job::Column::Status.eq(job::Status::Queued)).count(conn).await?;
    let failed = troubled.clone().filter(job::Column::Status.eq(job::Status::Failed)).count(conn).await?;
    let recent = troubled.order_by_desc(job::Column::RunAt).limit(20).all(conn).await?;
    let mut recent_failures = Vec::new();
    for job in recent {
        let outbox_id = serde_json::from_str::<Value>(&job.payload)
            .ok()
            .and_then(|p| p["outbox"].as_str().and_then(|s| s.parse::<Uuid>().ok()));
        let kind = match outbox_id {
            Some(id) => outbox::Entity::find_by_id(id).one(conn).await?.map(|o| o.kind).unwrap_or_default(),
            None => String::new(),
        };
        recent_failures.push(Failure {
            at: job.finished_at.unwrap_or(job.run_at),
            kind,
            error: job.error.unwrap_or_default(),
            given_up: job.status == job::Status::Failed,
        });
    }
    Ok(Overview { configured, waiting, sent_last_day, retrying, failed, recent_failures })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_read_back_and_only_reminders_can_be_turned_off() {
        for kind in MailKind::ALL {
            assert_eq!(MailKind::parse(kind.as_str()), Some(kind));
            if kind.optional() {
                assert!(kind.is_reminder(), "{kind:?}");
            }
        }
        assert!(!MailKind::InfoRequested.optional());
        assert!(!MailKind::ConsentReminder.optional());
        assert!(MailKind::CureReminder.optional());
    }
}
