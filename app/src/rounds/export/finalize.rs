//! The stored bundle recorded: its key (wrapped), digest, size and counts
//! on the export's row, and `export.completed` audited, in one
//! transaction that only the job's current holder can commit.
use entities::export;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use uuid::Uuid;

use super::stream::Streamed;
use crate::audit::{self, Actor, Event};
use crate::error::{AppError, AppResult};
use crate::jobs::{self, Claimed};
use crate::AppState;

pub(super) async fn record(
    state: &AppState,
    id: Uuid,
    round_id: Uuid,
    claimed: Option<&Claimed>,
    bundle: Streamed,
) -> AppResult<()> {
    let txn = state.db.begin_write().await?;
    if let Some(claimed) = claimed {
        // Only the job's holder records the bundle (the update locks the
        // job's row until commit, so no other server can take it meanwhile).
        let lease = state.settings.background.job_lease;
        if !jobs::renew(&txn, claimed, state.clock.now(), lease).await? {
            return Err(AppError::WrongState("export_taken_over"));
        }
    }
    let Streamed { key, storage_key, counts, sha256, size } = bundle;
    export::Entity::update_many()
        .col_expr(export::Column::Status, Expr::value(export::Status::Done))
        .col_expr(export::Column::Progress, Expr::value(100))
        .col_expr(export::Column::StorageKey, Expr::value(Some(storage_key)))
        .col_expr(export::Column::WrappedKey, Expr::value(Some(state.keys.wrap_data_key(&key, &id))))
        .col_expr(export::Column::Sha256, Expr::value(Some(sha256.clone())))
        .col_expr(export::Column::Size, Expr::value(Some(size as i64)))
        .col_expr(export::Column::Counts, Expr::value(Some(serde_json::to_string(&counts).unwrap_or_default())))
        .col_expr(export::Column::FinishedAt, Expr::value(Some(state.clock.now())))
        .filter(export::Column::Id.eq(id))
        .exec(&txn)
        .await?;
    let detail =
        serde_json::json!({"round": round_id, "sha256": sha256, "size": size, "plaintiffs": counts.plaintiffs});
    audit::append(&txn, &Actor::default(), Event::new("export.completed").subject("export", id).detail(detail)).await?;
    txn.commit().await?;
    Ok(())
}
