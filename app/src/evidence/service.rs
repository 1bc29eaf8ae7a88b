//! Evidence use cases: upload (claimant, draft or needs_info only), list,
//! download, delete (draft only). Ownership is checked through the claim.
use chrono::Utc;
use entities::{claim, evidence};
use rocket::tokio::io::{AsyncRead, AsyncReadExt};
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect};
use serde::Serialize;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::domain::{chunk_count, sniff, ChunkOpener, ChunkSealer, EvidenceKind, SniffedType, CHUNK, TAG};
use super::jpeg::strip_metadata;
use super::source::Source;
use super::store::{EvidenceStore, StoreError};
use super::strip::{Filter, Stripped};
use crate::audit::{self, Event};
use crate::auth::{CurrentUser, Role};
use crate::claims::domain::ClaimStatus;
use crate::crypto::{DataKey, Keyring};
use crate::error::{AppError, AppResult};
use crate::AppState;

#[derive(Clone, Debug, Serialize)]
pub struct EvidenceView {
    pub id: Uuid,
    pub kind: String,
    pub content_type: String,
    pub size: i64,
    pub sha256: String,
    pub created_at: chrono::DateTime<Utc>,
}

impl From<&evidence::Model> for EvidenceView {
    fn from(m: &evidence::Model) -> Self {
        Self {
            id: m.id,
            kind: m.kind.clone(),
            content_type: m.content_type.clone(),
            size: m.size,
            sha256: m.sha256.clone(),
            created_at: m.created_at,
        }
    }
}

impl From<StoreError> for AppError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => AppError::NotFound,
            StoreError::BadKey => AppError::internal("bad storage key"),
            StoreError::Unavailable(why) => AppError::Unavailable(why),
        }
    }
}

async fn own_claim(state: &AppState, user: &CurrentUser, claim_id: Uuid) -> AppResult<claim::Model> {
    if user.role != Role::Claimant {
        return Err(AppError::NotFound);
    }
    claim::Entity::find_by_id(claim_id)
        .filter(claim::Column::ClaimantId.eq(user.id))
        .one(state.db.conn())
        .await?
        .ok_or(AppError::NotFound)
}

/// The evidence row and its claim, if the caller owns them.
async fn own_evidence(state: &AppState, user: &CurrentUser, id: Uuid) -> AppResult<(evidence::Model, claim::Model)> {
    let row = evidence::Entity::find_by_id(id).one(state.db.conn()).await?.ok_or(AppError::NotFound)?;
    let claim = own_claim(state, user, row.claim_id).await?;
    Ok((row, claim))
}

fn status_of(claim: &claim::Model) -> AppResult<ClaimStatus> {
    ClaimStatus::parse(&claim.status).ok_or_else(|| AppError::internal("unknown status"))
}

/// Read exactly `buf.len()` bytes unless the input ends first; returns the count.
async fn fill(input: &mut (dyn AsyncRead + Send + Unpin), buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        let n = input.read(&mut buf[filled..]).await?;
        if n == 0 {
            break;
        }
        filled += n;
    }
    Ok(filled)
}

/// Sealed bytes handed to the store at a time (about).
const STORE_BATCH: usize = 256 * 1024;

/// A failed read of the upload: a request body that is not well-formed
/// multipart arrives as `InvalidData` (400); anything else is ours (500).
fn read_error(e: std::io::Error) -> AppError {
    if e.get_ref().is_some_and(|inner| inner.is::<super::strip::StripError>()) {
        // A photo whose structure the metadata removal cannot follow.
        return AppError::UnsupportedType;
    }
    match e.kind() {
        std::io::ErrorKind::InvalidData => AppError::Malformed,
        _ => AppError::caused_by("evidence upload", e),
    }
}

/// Upload one file (`declared_size` bytes, when known before reading) read from `input`;
/// metadata is removed (JPEG, PNG, WebP, HEIC), so the stored size and SHA-256 are those of the
/// file as kept. The object is stored
/// and verified before the row commits; a retried upload with the same
/// idempotency key answers the first upload's record.
pub async fn upload(
    state: &AppState,
    user: &CurrentUser,
    claim_id: Uuid,
    kind: EvidenceKind,
    declared_size: Option<u64>,
    input: &mut (dyn AsyncRead + Send + Unpin),
    idempotency_key: Option<String>,
) -> AppResult<(EvidenceView, bool)> {
    let claim = own_claim(state, user, claim_id).await?;
    if !status_of(&claim)?.is_editable() {
        return Err(AppError::WrongState("claim_not_editable"));
    }
    if let Some(first) = uploaded_with(state, claim_id, idempotency_key.as_deref()).await? {
        return Ok(((&first).into(), false));
    }
    if declared_size.is_some_and(|size| size > state.settings.max_evidence_bytes) {
        return Err(AppError::TooLarge);
    }
    let count = evidence::Entity::find().filter(evidence::Column::ClaimId.eq(claim_id)).count(state.db.conn()).await?;
    if count >= state.settings.max_evidence_files {
        return Err(AppError::Conflict("too_many_files"));
    }
    let wrapped = claim.wrapped_key.as_deref().ok_or(AppError::NotFound)?;
    let data_key = state.keys.unwrap_data_key(wrapped, &claim.id)?;
    let (content_type, source) = open_source(input).await?;
    let stored = seal_into_store(state, &data_key, source).await?;
    let row = evidence::Model {
        id: Uuid::new_v4(),
        claim_id,
        kind: kind.as_str().into(),
        content_type: content_type.mime().into(),
        size: stored.size as i64,
        sha256: stored.sha256,
        storage_key: stored.storage_key,
        idempotency_key,
        created_at: state.clock.now(),
    };
    record_upload(state, user, row).await
}

/// The file an earlier upload with this idempotency key stored, if any.
async fn uploaded_with(state: &AppState, claim_id: Uuid, key: Option<&str>) -> AppResult<Option<evidence::Model>> {
    let Some(key) = key else { return Ok(None) };
    Ok(evidence::Entity::find()
        .filter(evidence::Column::ClaimId.eq(claim_id))
        .filter(evidence::Column::IdempotencyKey.eq(key))
        .one(state.db.conn())
        .await?)
}

/// Sniff the first bytes and wrap the input in the metadata filter for its
/// type (for JPEGs, the header is rewritten without its metadata first).
async fn open_source<'a>(input: &'a mut (dyn AsyncRead + Send + Unpin)) -> AppResult<(SniffedType, Stripped<'a>)> {
    let mut head = vec![0u8; 64];
    let got = fill(input, &mut head).await.map_err(read_error)?;
    head.truncate(got);
    let content_type = sniff(&head).ok_or(AppError::UnsupportedType)?;
    let mut source = Source::new(head, input);
    if content_type == SniffedType::Jpeg {
        source = strip_metadata(source).await.map_err(|_| AppError::UnsupportedType)?;
    }
    Ok((content_type, Stripped::new(source, Filter::for_type(content_type))))
}

/// A file as the store holds it.
struct Stored {
    storage_key: String,
    size: u64,
    sha256: String,
}

/// Stream the file into the store: read a chunk, hash the plaintext, seal
/// it in place, and hand the store a quarter megabyte of sealed chunks at
/// a time (one trip to the store per four chunks rather than per chunk).
/// One chunk of look-ahead tells which chunk is last. The stored size is
/// checked against what was sealed; a failed or short object is removed.
async fn seal_into_store(state: &AppState, data_key: &DataKey, mut source: Stripped<'_>) -> AppResult<Stored> {
    let storage_key = Uuid::new_v4().simple().to_string();
    let mut writer = state.store.writer(&storage_key).await?;
    let mut sealer = ChunkSealer::new(data_key.bytes());
    let mut hasher = Sha256::new();
    let mut total: u64 = 0;
    let mut chunks: u64 = 0;
    let streamed: AppResult<()> = async {
        let io = read_error;
        let mut batch = Vec::with_capacity(STORE_BATCH + CHUNK + TAG);
        batch.extend_from_slice(sealer.header());
        let mut block = Vec::with_capacity(CHUNK + TAG);
        let mut current = vec![0u8; CHUNK];
        let mut next = vec![0u8; CHUNK];
        let mut n = source.fill(&mut current).await.map_err(io)?;
        loop {
            let m = if n == CHUNK { source.fill(&mut next).await.map_err(io)? } else { 0 };
            let plain = &current[..n];
            total += n as u64;
            if total > state.settings.max_evidence_bytes {
                return Err(AppError::TooLarge);
            }
            hasher.update(plain);
            chunks += 1;
            let last = m == 0;
            block.clear();
            block.extend_from_slice(plain);
            sealer.seal_in_place(&mut block, last)?;
            batch.extend_from_slice(&block);
            if batch.len() >= STORE_BATCH || last {
                writer.write(&batch).await?;
                batch.clear();
            }
            if last {
                return Ok(());
            }
            std::mem::swap(&mut current, &mut next);
            n = m;
        }
    }
    .await;
    if let Err(e) = streamed {
        writer.abort().await;
        return Err(e);
    }
    let stored = writer.finish().await?;
    let expected = (ChunkOpener::HEADER as u64) + total + chunks * TAG as u64;
    if stored != expected || chunks != chunk_count(total) {
        let _ = state.store.delete(&storage_key).await;
        return Err(AppError::Unavailable(format!("stored {stored} bytes, expected {expected}")));
    }
    Ok(Stored { storage_key, size: total, sha256: hex::encode(hasher.finalize()) })
}

/// Commit the stored file's row with its audit event. If the row does not
/// commit the object is removed; if a concurrent retry with the same
/// idempotency key won, its record is the answer.
async fn record_upload(state: &AppState, user: &CurrentUser, row: evidence::Model) -> AppResult<(EvidenceView, bool)> {
    let committed: AppResult<()> = async {
        let txn = state.db.begin_write().await?;
        evidence::ActiveModel::from(row.clone()).insert(&txn).await?;
        let detail = serde_json::json!({
            "claim": row.claim_id, "kind": row.kind, "content_type": row.content_type, "size": row.size,
        });
        let event = Event::new("evidence.uploaded").subject("evidence", row.id).owner(user.id).detail(detail);
        audit::append(&txn, &user.actor(), event).await?;
        txn.commit().await?;
        Ok(())
    }
    .await;
    let Err(e) = committed else {
        return Ok(((&row).into(), true));
    };
    let _ = state.store.delete(&row.storage_key).await;
    if let AppError::Conflict(_) = e {
        if let Some(first) = uploaded_with(state, row.claim_id, row.idempotency_key.as_deref()).await? {
            return Ok(((&first).into(), false));
        }
    }
    Err(e)
}

/// The claim's files: its owner's, or for staff working on its case.
pub async fn list(state: &AppState, user: &CurrentUser, claim_id: Uuid) -> AppResult<Vec<EvidenceView>> {
    if user.role == Role::Claimant {
        own_claim(state, user, claim_id).await?;
    } else {
        crate::claims::access::staff_claim(state, user, claim_id).await?;
    }
    let rows = evidence::Entity::find()
        .filter(evidence::Column::ClaimId.eq(claim_id))
        .order_by_asc(evidence::Column::CreatedAt)
        .all(state.db.conn())
        .await?;
    Ok(rows.iter().map(EvidenceView::from).collect())
}

/// A decrypting reader over a stored object.
pub struct Download {
    pub file_name: String,
    pub content_type: String,
    pub size: u64,
    reader: Box<dyn AsyncRead + Send + Unpin>,
    opener: ChunkOpener,
    chunks_left: u64,
    remaining: u64,
}

impl Download {
    /// A decrypting reader over any object sealed chunk by chunk (`ChunkSealer`).
    pub(crate) async fn sealed_object(
        store: &dyn EvidenceStore,
        storage_key: &str,
        key: &[u8; 32],
        size: u64,
        file_name: String,
        content_type: String,
    ) -> AppResult<Self> {
        let mut reader = store.reader(storage_key).await?;
        let mut header = [0u8; ChunkOpener::HEADER];
        let n = fill(reader.as_mut(), &mut header).await.map_err(|e| AppError::Unavailable(e.to_string()))?;
        if n != header.len() {
            return Err(AppError::internal("stored object is truncated"));
        }
        let opener = ChunkOpener::new(key, &header)?;
        Ok(Self { file_name, content_type, size, reader, opener, chunks_left: chunk_count(size), remaining: size })
    }

    /// The next plaintext chunk, `None` at the end.
    pub async fn next_chunk(&mut self) -> AppResult<Option<Vec<u8>>> {
        if self.chunks_left == 0 {
            return Ok(None);
        }
        let plain_len = self.remaining.min(CHUNK as u64) as usize;
        let mut buf = vec![0u8; plain_len + TAG];
        let n = fill(self.reader.as_mut(), &mut buf).await.map_err(|e| AppError::Unavailable(e.to_string()))?;
        if n != buf.len() {
            return Err(AppError::internal("stored object is truncated"));
        }
        self.chunks_left -= 1;
        self.remaining -= plain_len as u64;
        self.opener.open_in_place(&mut buf, self.chunks_left == 0)?;
        Ok(Some(buf))
    }
}

/// The name a file is served under: claim number, kind, short id, extension.
pub fn file_name(claim_number: &str, view: &EvidenceView) -> String {
    let short_id: String = view.id.simple().to_string().chars().take(8).collect();
    format!("{}-{}-{}.{}", claim_number, view.kind, short_id, SniffedType::extension(&view.content_type))
}

/// The evidence row and its claim if the caller may read it: the owner, or
/// staff working on the claim's case — whose read is capped and audited.
async fn readable_evidence(
    state: &AppState,
    user: &CurrentUser,
    id: Uuid,
) -> AppResult<(evidence::Model, claim::Model)> {
    if user.role == Role::Claimant {
        return own_evidence(state, user, id).await;
    }
    crate::claims::access::require_staff(user)?;
    let row = evidence::Entity::find_by_id(id).one(state.db.conn()).await?.ok_or(AppError::NotFound)?;
    let claim = crate::claims::access::staff_claim(state, user, row.claim_id).await?;
    crate::claims::access::record_read(
        state,
        user,
        crate::claims::access::Read::EvidenceDownload,
        &claim,
        ("evidence", row.id),
    )
    .await?;
    Ok((row, claim))
}

pub async fn download(state: &AppState, user: &CurrentUser, id: Uuid) -> AppResult<Download> {
    let (row, claim) = readable_evidence(state, user, id).await?;
    open_object(state.store.as_ref(), &state.keys, &row, &claim).await
}

/// A decrypting reader over a file whose read the caller has authorised
/// (and audited): the download route above, or a filing-bundle export.
pub(crate) async fn open_object(
    store: &dyn EvidenceStore,
    keys: &Keyring,
    row: &evidence::Model,
    claim: &claim::Model,
) -> AppResult<Download> {
    let wrapped = claim.wrapped_key.as_deref().ok_or(AppError::NotFound)?;
    let data_key = keys.unwrap_data_key(wrapped, &claim.id)?;
    Download::sealed_object(
        store,
        &row.storage_key,
        data_key.bytes(),
        row.size as u64,
        file_name(&claim.number, &EvidenceView::from(row)),
        row.content_type.clone(),
    )
    .await
}

/// Delete a file while the claim is a draft; afterwards evidence is immutable.
pub async fn delete(state: &AppState, user: &CurrentUser, id: Uuid) -> AppResult<()> {
    let (row, claim) = own_evidence(state, user, id).await?;
    if status_of(&claim)? != ClaimStatus::Draft {
        return Err(AppError::WrongState("evidence_immutable"));
    }
    let txn = state.db.begin_write().await?;
    evidence::Entity::delete_by_id(id).exec(&txn).await?;
    audit::append(
        &txn,
        &user.actor(),
        Event::new("evidence.deleted")
            .subject("evidence", id)
            .owner(user.id)
            .detail(serde_json::json!({"claim": claim.id})),
    )
    .await?;
    txn.commit().await?;
    state.store.delete(&row.storage_key).await?;
    Ok(())
}

/// Objects younger than this are never treated as orphans.
pub const RECONCILE_GRACE: std::time::Duration = std::time::Duration::from_secs(15 * 60);

/// What a reconciliation found and did.
#[derive(Debug, Default, Serialize, PartialEq, Eq)]
pub struct ReconcileReport {
    /// Objects with no database row (an upload whose row never committed), removed.
    pub orphans_removed: usize,
    /// Unfinished uploads (a crash mid-upload), removed.
    pub unfinished_removed: usize,
    /// Rows whose object is missing from the store: reported, never hidden.
    pub missing_objects: Vec<Uuid>,
}

/// Bring the store and the database back in line. Objects younger than
/// `grace` are left alone: another instance may be about to commit their row.
pub async fn reconcile(state: &AppState, grace: std::time::Duration) -> AppResult<ReconcileReport> {
    let rows: Vec<(Uuid, String)> = evidence::Entity::find()
        .select_only()
        .column(evidence::Column::Id)
        .column(evidence::Column::StorageKey)
        .into_tuple()
        .all(state.db.conn())
        .await?;
    // Filing bundles live in the same store: their objects are not orphans.
    let bundles: Vec<Option<String>> = entities::export::Entity::find()
        .select_only()
        .column(entities::export::Column::StorageKey)
        .into_tuple()
        .all(state.db.conn())
        .await?;
    let objects = state.store.list().await?;
    let mut known: std::collections::HashSet<&str> = rows.iter().map(|(_, k)| k.as_str()).collect();
    known.extend(bundles.iter().flatten().map(String::as_str));
    // The audit log's latest checkpoint is kept in the store too.
    known.insert(super::store::CHECKPOINT_OBJECT);
    let present: std::collections::HashSet<&str> = objects.iter().map(|o| o.key.as_str()).collect();
    let mut report = ReconcileReport::default();
    for object in &objects {
        let old_enough = object.modified.elapsed().map(|e| e >= grace).unwrap_or(false);
        if !known.contains(object.key.as_str()) && old_enough {
            state.store.delete(&object.key).await?;
            report.orphans_removed += 1;
        }
    }
    report.unfinished_removed = state.store.remove_unfinished(grace).await?;
    report.missing_objects = rows.iter().filter(|(_, k)| !present.contains(k.as_str())).map(|(id, _)| *id).collect();
    if report.orphans_removed + report.unfinished_removed + report.missing_objects.len() > 0 {
        let txn = state.db.begin_write().await?;
        audit::append(
            &txn,
            &Default::default(),
            Event::new("evidence.reconciled").detail(serde_json::json!({
                "orphans_removed": report.orphans_removed,
                "unfinished_removed": report.unfinished_removed,
                "missing_objects": report.missing_objects,
            })),
        )
        .await?;
        txn.commit().await?;
    }
    Ok(report)
}
