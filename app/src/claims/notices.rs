//! What the lawyers decided about a claim, as its record keeps it: the
//! decisions with their sealed reasons, the claimant's open deficiency
//! notice, and its answer when the claimant resubmits.
use chrono::{DateTime, NaiveDate, Utc};
use entities::{claim, review_decision};
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
use serde::Serialize;
use uuid::Uuid;

use super::domain::{ClaimStatus, DecisionKind};
use super::store::{data_key, status_of};
use crate::crypto::{self, Keyring};
use crate::error::{AppError, AppResult};
use crate::AppState;

/// A decision as shown to staff and (for notices) to the claimant.
#[derive(Clone, Debug, Serialize)]
pub struct DecisionView {
    pub id: Uuid,
    pub decision: DecisionKind,
    pub decided_by: Option<Uuid>,
    pub reason: Option<String>,
    pub cure_deadline: Option<NaiveDate>,
    pub created_at: DateTime<Utc>,
    pub answered_at: Option<DateTime<Utc>>,
}

/// Open a text sealed with the claim's key (a decision's reason, a note).
pub fn open_text(keys: &Keyring, model: &claim::Model, sealed: &[u8], aad: &Uuid) -> AppResult<String> {
    let key = data_key(keys, model)?;
    Ok(crypto::open_json(key.bytes(), sealed, aad.as_bytes())?)
}

/// Every decision on a claim, newest first.
pub async fn decisions_of(state: &AppState, model: &claim::Model) -> AppResult<Vec<DecisionView>> {
    let rows = review_decision::Entity::find()
        .filter(review_decision::Column::ClaimId.eq(model.id))
        .order_by_desc(review_decision::Column::CreatedAt)
        .all(state.db.conn())
        .await?;
    rows.into_iter()
        .map(|r| {
            let reason = match &r.reason_sealed {
                Some(sealed) => Some(open_text(&state.keys, model, sealed, &r.id)?),
                None => None,
            };
            Ok(DecisionView {
                id: r.id,
                decision: DecisionKind::parse(&r.decision)
                    .ok_or_else(|| AppError::internal(format!("unknown decision {}", r.decision)))?,
                decided_by: r.decided_by,
                reason,
                cure_deadline: r.cure_deadline,
                created_at: r.created_at,
                answered_at: r.answered_at,
            })
        })
        .collect()
}

/// What the claimant is told: the open deficiency notice, or why the claim was rejected.
pub async fn claimant_notice(state: &AppState, model: &claim::Model) -> AppResult<Option<DecisionView>> {
    let status = status_of(model)?;
    if !matches!(status, ClaimStatus::NeedsInfo | ClaimStatus::Rejected) {
        return Ok(None);
    }
    Ok(decisions_of(state, model).await?.into_iter().next())
}

/// When the claimant resubmits after a deficiency notice: the notice is answered.
pub async fn mark_notices_answered(txn: &crate::db::WriteTx, claim_id: Uuid, now: DateTime<Utc>) -> AppResult<()> {
    review_decision::Entity::update_many()
        .col_expr(review_decision::Column::AnsweredAt, Expr::value(now))
        .filter(review_decision::Column::ClaimId.eq(claim_id))
        .filter(review_decision::Column::Decision.eq(DecisionKind::RequestInfo.as_str()))
        .filter(review_decision::Column::AnsweredAt.is_null())
        .exec(txn)
        .await?;
    Ok(())
}
