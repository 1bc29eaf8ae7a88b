//! The delivery job: one outbox row, sent at least once. Every attempt
//! carries the row's `Message-ID`, so if the portal stops after the server
//! accepted a message and before it recorded that, the resend is
//! recognisably the same message. A row already recorded as sent is not
//! sent again.
use entities::{outbox, user};
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use uuid::Uuid;

use super::render::render;
use super::smtp::Mailer;
use super::MailKind;
use crate::audit::{self, Actor, Event};
use crate::i18n::Lang;
use crate::jobs::{Claimed, JobError};
use crate::AppState;

pub async fn deliver(state: &AppState, mailer: &Mailer, claimed: &Claimed) -> Result<(), JobError> {
    let payload: serde_json::Value = serde_json::from_str(&claimed.job.payload).unwrap_or_default();
    let id: Uuid = payload["outbox"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| JobError::permanent("the job names no outbox row"))?;
    let Some(row) = outbox::Entity::find_by_id(id).one(state.db.conn()).await? else {
        // Erased with its recipient: nothing to send.
        return Ok(());
    };
    if row.sent_at.is_some() {
        return Ok(());
    }
    let recipient = user::Entity::find_by_id(row.recipient_id).one(state.db.conn()).await?;
    let Some(recipient) = recipient.filter(|u| u.erased_at.is_none() && !u.disabled) else {
        return Err(JobError::permanent("the recipient's account is closed"));
    };
    let to = state
        .keys
        .open_account_email(&recipient.id, &recipient.email_sealed)
        .map_err(|_| JobError::permanent("the recipient's address cannot be read"))?;
    let kind = MailKind::parse(&row.kind).ok_or_else(|| JobError::permanent("unknown kind of mail"))?;
    let lang = Lang::from_code(&row.language).unwrap_or(Lang::Ja);
    let mut params: serde_json::Value =
        row.params.as_deref().and_then(|p| serde_json::from_str(p).ok()).unwrap_or_default();
    let public_url = &state.settings.background.public_url;
    // A confirmation link is made now and never stored: the copy kept of the
    // mail says where it led, not the token.
    let mut link = None;
    if kind == MailKind::ConfirmAddress {
        let token = crate::auth::registration::link_token(&state.keys, recipient.id, state.clock.now())
            .map_err(|e| JobError::permanent(e.to_string()))?;
        link = Some(format!("{public_url}/confirm?token={token}"));
        params["link"] = link.clone().into();
    }
    let mail = render(kind, lang, &params, public_url).map_err(JobError::permanent)?;
    let kept_body = match &link {
        Some(link) => mail.body.replace(link.as_str(), &format!("{public_url}/confirm?token=…")),
        None => mail.body.clone(),
    };
    let message_id = row.message_id.clone().unwrap_or_else(|| mailer.message_id(row.id));
    if row.message_id.is_none() {
        // Recorded before the first attempt, so that every attempt says the same.
        outbox::Entity::update_many()
            .col_expr(outbox::Column::MessageId, Expr::value(Some(message_id.clone())))
            .filter(outbox::Column::Id.eq(row.id))
            .exec(state.db.conn())
            .await?;
    }
    mailer
        .send(&to, &message_id, &mail.subject, &mail.body)
        .await
        .map_err(|e| JobError { permanent: e.permanent, message: format!("SMTP: {}", e.reason) })?;
    let now = state.clock.now();
    let txn = state.db.begin_write().await?;
    outbox::Entity::update_many()
        .col_expr(outbox::Column::SentAt, Expr::value(Some(now)))
        .col_expr(outbox::Column::Subject, Expr::value(mail.subject))
        .col_expr(outbox::Column::Body, Expr::value(kept_body))
        .filter(outbox::Column::Id.eq(row.id))
        .filter(outbox::Column::SentAt.is_null())
        .exec(&txn)
        .await?;
    audit::append(
        &txn,
        &Actor::default(),
        Event::new("mail.sent")
            .subject("outbox", row.id)
            .owner(row.recipient_id)
            .detail(serde_json::json!({"kind": row.kind, "claim": row.claim_id})),
    )
    .await?;
    txn.commit().await?;
    Ok(())
}
