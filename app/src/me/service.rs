//! Export and erasure of everything the portal holds about a claimant.
use std::io::Write;

use chrono::{DateTime, Utc};
use entities::{audit_event, claim, consent, evidence, export, harm, outbox, person, round_member, session, user};
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, ExprTrait, QueryFilter, QueryOrder, QuerySelect};
use serde::Serialize;
use uuid::Uuid;

use crate::audit::{self, Event};
use crate::auth::{CurrentUser, Role};
use crate::claims::domain::ClaimStatus;
use crate::consent::service::Signature;
use crate::domain::{ErrorCode, FieldErrors};
use crate::error::{AppError, AppResult};
use crate::evidence::service::EvidenceView;
use crate::intake::service::ClaimDetail;
use crate::AppState;

/// One event about the claimant's data.
#[derive(Clone, Debug, Serialize)]
pub struct AccessEntry {
    /// The event's number in the audit log (none for a moment after it
    /// happens); `/me/access-log/<seq>/proof` proves it is in the log.
    pub seq: Option<i64>,
    pub at: DateTime<Utc>,
    pub actor_id: Option<Uuid>,
    pub actor_role: Option<String>,
    pub action: String,
    pub subject_type: Option<String>,
    pub subject_id: Option<Uuid>,
    pub detail: serde_json::Value,
}

impl From<audit_event::Model> for AccessEntry {
    fn from(m: audit_event::Model) -> Self {
        Self {
            seq: m.seq,
            at: m.at,
            actor_id: m.actor_id,
            actor_role: m.actor_role,
            action: m.action,
            subject_type: m.subject_type,
            subject_id: m.subject_id,
            detail: serde_json::from_str(&m.detail).unwrap_or_default(),
        }
    }
}

/// Who else read or changed the claimant's data: staff, the system.
pub async fn access_log(state: &AppState, user: &CurrentUser) -> AppResult<Vec<AccessEntry>> {
    require_claimant(user)?;
    let mut rows = audit::access_log_for(state.db.conn(), user.id).await?;
    rows.extend(bundle_downloads_of(state, user.id).await?);
    rows.sort_by_key(|r| std::cmp::Reverse(r.id));
    rows.truncate(500);
    Ok(rows.into_iter().map(AccessEntry::from).collect())
}

/// The proof that an event of the claimant's access log is in the audit
/// tree its latest signed checkpoint covers.
pub async fn access_proof(state: &AppState, user: &CurrentUser, seq: i64) -> AppResult<audit::Inclusion> {
    require_claimant(user)?;
    let event = audit_event::Entity::find()
        .filter(audit_event::Column::Seq.eq(seq))
        .filter(audit_event::Column::OwnerId.eq(user.id))
        .one(state.db.conn())
        .await?
        .ok_or(AppError::NotFound)?;
    audit::inclusion(state.db.conn(), &event).await?.ok_or(AppError::NotFound)
}

/// Downloads of the filing bundles that hold the claimant's data (each
/// bundle of a round one of their claims is a plaintiff in).
async fn bundle_downloads_of(state: &AppState, claimant: Uuid) -> AppResult<Vec<audit_event::Model>> {
    let db = state.db.conn();
    let claims: Vec<Uuid> = claim::Entity::find()
        .filter(claim::Column::ClaimantId.eq(claimant))
        .all(db)
        .await?
        .into_iter()
        .map(|c| c.id)
        .collect();
    let rounds: Vec<Uuid> = round_member::Entity::find()
        .filter(round_member::Column::ClaimId.is_in(claims))
        .all(db)
        .await?
        .into_iter()
        .map(|m| m.round_id)
        .collect();
    if rounds.is_empty() {
        return Ok(Vec::new());
    }
    let exports: Vec<Uuid> = export::Entity::find()
        .filter(export::Column::RoundId.is_in(rounds))
        .all(db)
        .await?
        .into_iter()
        .map(|e| e.id)
        .collect();
    Ok(audit_event::Entity::find()
        .filter(audit_event::Column::Action.eq("export.downloaded"))
        .filter(audit_event::Column::SubjectId.is_in(exports))
        .order_by_desc(audit_event::Column::Id)
        .limit(500)
        .all(db)
        .await?)
}

fn require_claimant(user: &CurrentUser) -> AppResult<()> {
    if user.role == Role::Claimant {
        Ok(())
    } else {
        Err(AppError::NotFound)
    }
}

#[derive(Serialize)]
pub struct AccountExport {
    pub id: Uuid,
    pub email: String,
    pub role: Role,
    pub created_at: DateTime<Utc>,
}

#[derive(Serialize)]
pub struct EvidenceExport {
    #[serde(flatten)]
    pub view: EvidenceView,
    /// Where the file is inside the ZIP download.
    pub file: String,
    /// The authorised route that serves the file.
    pub url: String,
}

#[derive(Serialize)]
pub struct ClaimExport {
    #[serde(flatten)]
    pub detail: ClaimDetail,
    pub signatures: Vec<Signature>,
    pub evidence: Vec<EvidenceExport>,
}

/// Everything held about a claimant.
#[derive(Serialize)]
pub struct Export {
    pub exported_at: DateTime<Utc>,
    pub account: AccountExport,
    pub claims: Vec<ClaimExport>,
    /// Everything recorded about the claimant's account and claims, by anyone.
    pub activity: Vec<AccessEntry>,
}

pub async fn export(state: &AppState, user: &CurrentUser) -> AppResult<Export> {
    require_claimant(user)?;
    let account = crate::auth::service::account_by_id(state, user.id).await?;
    let row = user::Entity::find_by_id(user.id).one(state.db.conn()).await?.ok_or(AppError::NotFound)?;
    let mut claims = Vec::new();
    for summary in crate::intake::service::list_own(state, user).await? {
        let (detail, _) = crate::intake::service::get_own(state, user, summary.id).await?;
        let signatures = crate::consent::service::own_signatures(state, user, summary.id).await?;
        let evidence = crate::evidence::service::list(state, user, summary.id)
            .await?
            .into_iter()
            .map(|view| EvidenceExport {
                file: format!(
                    "evidence/{}/{}",
                    detail.summary.number,
                    crate::evidence::service::file_name(&detail.summary.number, &view)
                ),
                url: format!("/api/v1/evidence/{}/content", view.id),
                view,
            })
            .collect();
        claims.push(ClaimExport { detail, signatures, evidence });
    }
    let activity = audit_event::Entity::find()
        .filter(audit_event::Column::OwnerId.eq(user.id))
        .order_by_asc(audit_event::Column::Id)
        .all(state.db.conn())
        .await?
        .into_iter()
        .map(AccessEntry::from)
        .collect();
    // Taking a copy of one's data is itself recorded.
    let txn = state.db.begin_write().await?;
    audit::append(&txn, &user.actor(), Event::new("me.exported").subject("user", user.id).owner(user.id)).await?;
    txn.commit().await?;
    Ok(Export {
        exported_at: state.clock.now(),
        account: AccountExport { id: account.id, email: account.email, role: account.role, created_at: row.created_at },
        claims,
        activity,
    })
}

fn zip_error(e: impl std::fmt::Display) -> AppError {
    AppError::internal(format!("export archive: {e}"))
}

/// One step of writing the archive.
enum Piece {
    /// Start an entry; `true` to deflate it.
    Start(String, bool),
    Data(Vec<u8>),
}

/// Write the export as a ZIP (`export.json` plus every evidence file,
/// decrypted) into `out`. Files are decrypted chunk by chunk here and
/// written by a blocking thread, so neither is ever whole in memory.
pub async fn export_zip(state: &AppState, user: &CurrentUser, out: std::fs::File) -> AppResult<std::fs::File> {
    let export = export(state, user).await?;
    let json = serde_json::to_vec_pretty(&export).map_err(zip_error)?;
    let (tx, mut rx) = rocket::tokio::sync::mpsc::channel::<Piece>(4);
    let writer = rocket::tokio::task::spawn_blocking(move || -> zip::result::ZipResult<std::fs::File> {
        use zip::write::SimpleFileOptions;
        use zip::CompressionMethod;
        let mut zip = zip::ZipWriter::new(out);
        while let Some(piece) = rx.blocking_recv() {
            match piece {
                Piece::Start(name, deflate) => {
                    // Photos and PDFs are compressed already: store them as they are.
                    let method = if deflate { CompressionMethod::Deflated } else { CompressionMethod::Stored };
                    zip.start_file(name, SimpleFileOptions::default().compression_method(method))?
                }
                Piece::Data(bytes) => zip.write_all(&bytes)?,
            }
        }
        zip.finish()
    });
    let produced: AppResult<()> = async {
        let send = |piece| async { tx.send(piece).await.map_err(|_| zip_error("the archive writer stopped")) };
        send(Piece::Start("export.json".into(), true)).await?;
        send(Piece::Data(json)).await?;
        for claim in &export.claims {
            for file in &claim.evidence {
                let mut download = crate::evidence::service::download(state, user, file.view.id).await?;
                send(Piece::Start(file.file.clone(), false)).await?;
                while let Some(chunk) = download.next_chunk().await? {
                    send(Piece::Data(chunk)).await?;
                }
            }
        }
        Ok(())
    }
    .await;
    drop(tx);
    let written = writer.await.map_err(zip_error)?;
    // A failure to produce explains more than the writer's view of it.
    produced?;
    written.map_err(zip_error)
}

/// What an erasure removed.
#[derive(Debug, Serialize)]
pub struct ErasureReport {
    pub claims: usize,
    pub evidence_objects: usize,
    /// Objects the store could not delete now; the reconciler removes them
    /// (they are unreadable already: their key is gone).
    pub objects_left_for_reconciler: usize,
}

/// Erase the claimant: after the password is re-entered, every claim's data
/// key is destroyed (crypto-shredding) and its sealed rows and blind
/// indexes deleted, evidence objects are removed from the store, sessions
/// are revoked and the account is closed. The audit trail keeps only
/// non-personal facts (ids, actions, times).
pub async fn erase(state: &AppState, user: &CurrentUser, password: &str) -> AppResult<ErasureReport> {
    require_claimant(user)?;
    check_password_to_erase(state, user, password).await?;
    let claims = claim::Entity::find().filter(claim::Column::ClaimantId.eq(user.id)).all(state.db.conn()).await?;
    let claim_ids: Vec<Uuid> = claims.iter().map(|c| c.id).collect();
    let objects: Vec<String> = evidence::Entity::find()
        .filter(evidence::Column::ClaimId.is_in(claim_ids.clone()))
        .all(state.db.conn())
        .await?
        .into_iter()
        .map(|e| e.storage_key)
        .collect();
    let bundles = bundles_holding(state, &claim_ids).await?;
    let now = state.clock.now();
    let txn = state.db.begin_write().await?;
    destroy_bundles(&txn, user, &bundles).await?;
    shred_claims(&txn, &claim_ids, now).await?;
    close_account(state, &txn, user, now).await?;
    for claim in &claims {
        audit::append(
            &txn,
            &user.actor(),
            Event::new("claim.erased").subject("claim", claim.id).owner(user.id).detail(serde_json::json!({
                "number": claim.number, "from": claim.status
            })),
        )
        .await?;
    }
    audit::append(
        &txn,
        &user.actor(),
        Event::new("me.erased").subject("user", user.id).owner(user.id).detail(serde_json::json!({
            "claims": claims.len(), "evidence_objects": objects.len(), "bundles_destroyed": bundles.len()
        })),
    )
    .await?;
    txn.commit().await?;
    // SQLite keeps old page images in its write-ahead log until a
    // checkpoint: fold them in (secure_delete zeroes the freed pages) and
    // empty the log, so the destroyed keys are nowhere in the files.
    state.db.purge_freed_pages().await?;
    // The rows are gone and the keys destroyed; now remove the ciphertext.
    let bundle_objects = bundles.iter().filter_map(|b| b.storage_key.clone());
    let objects: Vec<String> = objects.into_iter().chain(bundle_objects).collect();
    let left = delete_objects(state, &objects).await;
    Ok(ErasureReport { claims: claims.len(), evidence_objects: objects.len(), objects_left_for_reconciler: left })
}

/// The password re-entered to erase: a wrong one is audited and counts
/// towards the account's lockout.
async fn check_password_to_erase(state: &AppState, user: &CurrentUser, password: &str) -> AppResult<()> {
    let row = user::Entity::find_by_id(user.id).one(state.db.conn()).await?.ok_or(AppError::NotFound)?;
    if !crate::auth::service::verify_password(row.password_hash.clone(), password.to_string()).await {
        let mut errors = FieldErrors::new();
        errors.add("password", if password.is_empty() { ErrorCode::Required } else { ErrorCode::PasswordIncorrect });
        let txn = state.db.begin_write().await?;
        audit::append(&txn, &user.actor(), Event::new("me.erase_refused").subject("user", user.id).owner(user.id))
            .await?;
        let locked = crate::auth::service::record_failure(state, &txn, &user.actor(), user.id).await?;
        txn.commit().await?;
        if locked {
            return Err(AppError::Unauthenticated);
        }
        return Err(errors.into());
    }
    Ok(())
}

/// Filing bundles that hold any of these claims: sealed with keys of
/// their own, they are destroyed with the claims (S19).
async fn bundles_holding(state: &AppState, claim_ids: &[Uuid]) -> AppResult<Vec<export::Model>> {
    let rounds: Vec<Uuid> = round_member::Entity::find()
        .select_only()
        .column(round_member::Column::RoundId)
        .filter(round_member::Column::ClaimId.is_in(claim_ids.to_vec()))
        .distinct()
        .into_tuple()
        .all(state.db.conn())
        .await?;
    Ok(export::Entity::find()
        .filter(export::Column::RoundId.is_in(rounds))
        .filter(export::Column::Status.ne(export::Status::Erased))
        .all(state.db.conn())
        .await?)
}

async fn destroy_bundles(txn: &crate::db::WriteTx, user: &CurrentUser, bundles: &[export::Model]) -> AppResult<()> {
    for bundle in bundles {
        export::Entity::update_many()
            .col_expr(export::Column::Status, Expr::value(export::Status::Erased))
            .col_expr(export::Column::WrappedKey, Expr::value(Option::<Vec<u8>>::None))
            .col_expr(export::Column::StorageKey, Expr::value(Option::<String>::None))
            .filter(export::Column::Id.eq(bundle.id))
            .exec(txn)
            .await?;
        audit::append(
            txn,
            &user.actor(),
            Event::new("export.destroyed").subject("export", bundle.id).detail(serde_json::json!({
                "round": bundle.round_id, "reason": "plaintiff_erased"
            })),
        )
        .await?;
    }
    Ok(())
}

/// Destroy the claims' data keys and delete their sealed rows and blind
/// indexes (crypto-shredding); the claim rows stay, marked erased.
async fn shred_claims(txn: &crate::db::WriteTx, claim_ids: &[Uuid], now: DateTime<Utc>) -> AppResult<()> {
    if !claim_ids.is_empty() {
        person::Entity::delete_many().filter(person::Column::ClaimId.is_in(claim_ids.to_vec())).exec(txn).await?;
        harm::Entity::delete_many().filter(harm::Column::ClaimId.is_in(claim_ids.to_vec())).exec(txn).await?;
        consent::Entity::delete_many().filter(consent::Column::ClaimId.is_in(claim_ids.to_vec())).exec(txn).await?;
        evidence::Entity::delete_many().filter(evidence::Column::ClaimId.is_in(claim_ids.to_vec())).exec(txn).await?;
        claim::Entity::update_many()
            .col_expr(claim::Column::WrappedKey, Expr::value(Option::<Vec<u8>>::None))
            .col_expr(claim::Column::Sealed, Expr::value(Option::<Vec<u8>>::None))
            .col_expr(claim::Column::RegistrationCodeIndex, Expr::value(Option::<String>::None))
            .col_expr(claim::Column::LeakedItems, Expr::value(serde_json::json!([])))
            .col_expr(claim::Column::Services, Expr::value(serde_json::json!([])))
            .col_expr(claim::Column::ApologyLetterReceived, Expr::value(Option::<bool>::None))
            .col_expr(claim::Column::ApologyOption, Expr::value(Option::<String>::None))
            .col_expr(claim::Column::LearnedOfLeakOn, Expr::value(Option::<chrono::NaiveDate>::None))
            .col_expr(claim::Column::Status, Expr::value(ClaimStatus::Erased.as_str()))
            .col_expr(claim::Column::ErasedAt, Expr::value(Some(now)))
            .col_expr(claim::Column::UpdatedAt, Expr::value(now))
            .col_expr(claim::Column::Version, Expr::col(claim::Column::Version).add(1))
            .filter(claim::Column::Id.is_in(claim_ids.to_vec()))
            .exec(txn)
            .await?;
    }
    Ok(())
}

/// End the account's sessions, drop its unsent mail, and leave a tombstone.
async fn close_account(
    state: &AppState,
    txn: &crate::db::WriteTx,
    user: &CurrentUser,
    now: DateTime<Utc>,
) -> AppResult<()> {
    session::Entity::delete_many().filter(session::Column::UserId.eq(user.id)).exec(txn).await?;
    state.sessions.forget_after(txn, user.id).await?;
    // Mail not yet sent goes too (it names claim numbers).
    outbox::Entity::delete_many().filter(outbox::Column::RecipientId.eq(user.id)).exec(txn).await?;
    // The account stays as a tombstone so ids in the audit trail still
    // resolve; nothing in it identifies the person, and it cannot sign in.
    user::Entity::update_many()
        .col_expr(user::Column::EmailIndex, Expr::value(format!("erased:{}", user.id.simple())))
        .col_expr(user::Column::EmailSealed, Expr::value(Vec::<u8>::new()))
        .col_expr(user::Column::PasswordHash, Expr::value("!erased"))
        .col_expr(user::Column::Disabled, Expr::value(true))
        .col_expr(user::Column::ErasedAt, Expr::value(Some(now)))
        .col_expr(user::Column::UpdatedAt, Expr::value(now))
        .filter(user::Column::Id.eq(user.id))
        .exec(txn)
        .await?;
    Ok(())
}

/// Delete stored objects; returns how many are left for the reconciler.
async fn delete_objects(state: &AppState, objects: &[String]) -> usize {
    let mut left = 0;
    for key in objects {
        if let Err(e) = state.store.delete(key).await {
            tracing::warn!(error = %e, "erased evidence object not deleted; the reconciler will remove it");
            left += 1;
        }
    }
    left
}

/// How a person wants to hear from the portal.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Preferences {
    /// `ja` or `en`: the language of the mail they receive.
    pub language: String,
    /// Whether reminders are sent (notices, decisions and changes to signed
    /// documents always are).
    pub reminders: bool,
}

pub async fn preferences(state: &AppState, user: &CurrentUser) -> AppResult<Preferences> {
    let row = user::Entity::find_by_id(user.id).one(state.db.conn()).await?.ok_or(AppError::NotFound)?;
    Ok(Preferences { language: row.language, reminders: row.reminders })
}

/// Change the language and reminder preference (audited).
pub async fn set_preferences(state: &AppState, user: &CurrentUser, wanted: &Preferences) -> AppResult<Preferences> {
    let Some(lang) = crate::i18n::Lang::from_code(&wanted.language) else {
        let mut errors = FieldErrors::new();
        errors.add("language", ErrorCode::Choice);
        return Err(AppError::Invalid(errors));
    };
    let txn = state.db.begin_write().await?;
    user::Entity::update_many()
        .col_expr(user::Column::Language, Expr::value(lang.code()))
        .col_expr(user::Column::Reminders, Expr::value(wanted.reminders))
        .col_expr(user::Column::UpdatedAt, Expr::value(state.clock.now()))
        .filter(user::Column::Id.eq(user.id))
        .exec(&txn)
        .await?;
    audit::append(
        &txn,
        &user.actor(),
        Event::new("account.preferences_changed")
            .subject("user", user.id)
            .owner(user.id)
            .detail(serde_json::json!({"language": lang.code(), "reminders": wanted.reminders})),
    )
    .await?;
    txn.commit().await?;
    Ok(Preferences { language: lang.code().into(), reminders: wanted.reminders })
}
