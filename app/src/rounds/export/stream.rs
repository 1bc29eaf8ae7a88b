//! The bundle streamed into the store, front to back through bounded
//! channels so memory stays flat whatever the round's size: evidence files
//! are opened and decrypted a few ahead by tasks of their own; a blocking
//! thread writes the archive (CRC; each file's SHA-256 is the one taken at
//! upload, which authenticated decryption vouches for) and hashes the
//! whole of it; another seals it chunk by chunk with the bundle's own data
//! key; the sealed batches go straight into the evidence store (an S3
//! multipart upload on S3). The party list, decrypted meanwhile, follows
//! the evidence in the archive.
use std::collections::VecDeque;
use std::sync::mpsc as sync_mpsc;
use std::time::{Duration, Instant};

use entities::{claim, evidence, export};
use rocket::tokio::sync::mpsc;
use rocket::tokio::task::JoinHandle;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::plan::{Plan, Retainers};
use crate::crypto::{DataKey, Keyring};
use crate::error::{AppError, AppResult};
use crate::evidence::domain::{ChunkSealer, CHUNK, TAG};
use crate::evidence::service::Download;
use crate::evidence::store::{EvidenceStore, ObjectWriter};
use crate::rounds::bundle::{BundleWriter, Counts, Exhibit, Party, RoundInfo};
use crate::AppState;

/// How many evidence files are opened ahead of the ZIP writer, and how much
/// of each is decrypted ahead.
const PREFETCH_FILES: usize = 4;
const PREFETCH_BYTES: usize = 1 << 20;
/// The size of the writes into the store.
const STORE_BATCH: usize = 1 << 20;

/// What the blocking ZIP writer is told to do.
enum Piece {
    Parties(Vec<Party>),
    Exhibits(Vec<Exhibit>),
    Start(String, bool),
    /// An evidence file: its name, the SHA-256 and size recorded at upload,
    /// and its first chunks (the whole of a small file) in the same message,
    /// so the writer thread is woken once a file, not once a chunk.
    Known(String, String, u64, Vec<Vec<u8>>),
    Data(Vec<u8>),
    Finish(Box<(RoundInfo, Counts, String)>),
}

fn io_err(e: std::io::Error) -> AppError {
    AppError::caused_by("bundle", e)
}

/// The bundle as stored: its key, where it is, what it holds, its digest.
pub(super) struct Streamed {
    pub key: DataKey,
    pub storage_key: String,
    pub counts: Counts,
    pub sha256: String,
    pub size: u64,
}

/// The party list and retainer records, being decrypted by a task of its own.
pub(super) type PartiesTask = JoinHandle<AppResult<(Vec<Party>, Retainers)>>;

/// Write the planned bundle into the store, sealed with a new key. On any
/// failure the partial object is removed.
pub(super) async fn stream(
    state: &AppState,
    id: Uuid,
    plan: Plan,
    parties: PartiesTask,
    exporter: String,
) -> AppResult<Streamed> {
    let began = Instant::now();
    let key = DataKey::generate();
    let storage_key = Uuid::new_v4().simple().to_string();
    let mut out = state.store.writer(&storage_key).await?;
    // pieces → ZIP writer → (plain batches) → sealer → (sealed batches) → store;
    // spent buffers go back the other way for reuse.
    let (tx, rx) = mpsc::channel::<Piece>(8);
    let (plain_tx, plain_rx) = sync_mpsc::sync_channel::<Vec<u8>>(2);
    let (plain_spent_tx, plain_spent_rx) = sync_mpsc::channel::<Vec<u8>>();
    let (sealed_tx, sealed_rx) = mpsc::channel::<Vec<u8>>(4);
    let (spent_tx, spent_rx) = sync_mpsc::channel::<Vec<u8>>();
    let zipper = spawn_zipper(rx, HashingSink::new(plain_tx, plain_spent_rx), state.clock.clone());
    let sealer = spawn_sealer(plain_rx, plain_spent_tx, SealingWriter::new(key.bytes(), sealed_tx, spent_rx));
    let produced = produce(state, id, plan, parties, exporter, tx);
    let stored = store_sealed(out.as_mut(), sealed_rx, spent_tx);
    let (produced, stored) = rocket::tokio::join!(produced, stored);
    tracing::info!(export = %id, total_s = began.elapsed().as_secs_f64(), "bundle: written");
    let zipped = zipper.await.map_err(|e| AppError::caused_by("filing bundle", e))?;
    let sealed = sealer.await.map_err(|e| AppError::caused_by("filing bundle", e))?;
    let outcome = stored
        .and(produced)
        .and_then(|counts| Ok((counts, zipped.map_err(io_err)?)))
        .and_then(|done| sealed.map(|()| done).map_err(io_err));
    match outcome {
        Ok((counts, (sha256, size))) => {
            out.finish().await?;
            Ok(Streamed { key, storage_key, counts, sha256, size })
        }
        Err(e) => {
            out.abort().await;
            Err(e)
        }
    }
}

/// The ZIP writer, on a blocking thread: writes each piece it is sent into
/// the hashing sink; answers the archive's SHA-256 and size.
fn spawn_zipper(
    mut rx: mpsc::Receiver<Piece>,
    sink: HashingSink,
    clock: crate::clock::Clock,
) -> JoinHandle<std::io::Result<(String, u64)>> {
    rocket::tokio::task::spawn_blocking(move || {
        let mut bundle = BundleWriter::streaming(sink);
        while let Some(piece) = rx.blocking_recv() {
            match piece {
                Piece::Parties(parties) => {
                    bundle.party_list_xlsx(&parties)?;
                    bundle.party_list_csv(&parties)?;
                    bundle.claim_list_csv(&parties)?;
                }
                Piece::Exhibits(exhibits) => bundle.evidence_index_csv(&exhibits)?,
                Piece::Start(name, deflate) => bundle.start(&name, deflate)?,
                Piece::Known(name, sha256, size, head) => {
                    bundle.start_known(&name, &sha256, size)?;
                    for chunk in head {
                        bundle.write_chunk(&chunk)?;
                    }
                }
                Piece::Data(bytes) => bundle.write_chunk(&bytes)?,
                Piece::Finish(finish) => {
                    let (info, counts, exporter) = *finish;
                    let (out, _manifest) = bundle.finish(info, counts, exporter, clock.now())?;
                    // Hand over the rest; dropping the sink closes the channel.
                    return out.into_inner().finish();
                }
            }
        }
        Err(std::io::Error::other("the bundle was not finished"))
    })
}

/// The sealer, on a blocking thread: seals the archive's plain batches as
/// they come and sends each batch back for reuse.
fn spawn_sealer(
    plain_rx: sync_mpsc::Receiver<Vec<u8>>,
    plain_spent_tx: sync_mpsc::Sender<Vec<u8>>,
    mut sealing: SealingWriter,
) -> JoinHandle<std::io::Result<()>> {
    rocket::tokio::task::spawn_blocking(move || {
        while let Ok(batch) = plain_rx.recv() {
            std::io::Write::write_all(&mut sealing, &batch)?;
            // Back to the ZIP side for reuse (dropped if it has finished).
            let _ = plain_spent_tx.send(batch);
        }
        sealing.finish()
    })
}

/// The sealed batches into the store, each sent back for reuse.
async fn store_sealed(
    out: &mut dyn ObjectWriter,
    mut sealed_rx: mpsc::Receiver<Vec<u8>>,
    spent_tx: sync_mpsc::Sender<Vec<u8>>,
) -> AppResult<()> {
    while let Some(bytes) = sealed_rx.recv().await {
        out.write(&bytes).await?;
        // Back for reuse (if the ZIP writer has already finished, dropped).
        let _ = spent_tx.send(bytes);
    }
    Ok(())
}

/// Everything the archive holds, in order, to the ZIP writer: the evidence,
/// then the party list, the evidence index, the retainer records and the
/// manifest. Answers what the bundle counts.
async fn produce(
    state: &AppState,
    id: Uuid,
    plan: Plan,
    parties: PartiesTask,
    exporter: String,
    tx: mpsc::Sender<Piece>,
) -> AppResult<Counts> {
    let began = Instant::now();
    let send = |piece| async { tx.send(piece).await.map_err(|_| AppError::internal("the bundle writer stopped")) };
    write_evidence(state, id, &plan, &tx).await?;
    let (parties, retainers) = parties.await.map_err(|e| AppError::caused_by("filing bundle", e))??;
    tracing::info!(export = %id, plaintiffs = parties.len(), at_s = began.elapsed().as_secs_f64(), "bundle: evidence written, parties ready");
    let counts = Counts {
        plaintiffs: parties.len() as u64,
        exhibits: plan.exhibits.len() as u64,
        retainers: retainers.len() as u64,
        total_yen: parties.iter().map(|p| p.amount_yen).sum(),
    };
    send(Piece::Parties(parties)).await?;
    send(Piece::Exhibits(plan.exhibits)).await?;
    for (number, record) in &retainers {
        let json = serde_json::to_vec_pretty(record).map_err(|e| AppError::caused_by("filing bundle", e))?;
        send(Piece::Start(format!("委任状/原告{number:05}.json"), true)).await?;
        send(Piece::Data(json)).await?;
    }
    send(Piece::Finish(Box::new((plan.info, counts.clone(), exporter)))).await?;
    Ok(counts)
}

/// The evidence files, in exhibit order. Files are opened and their first
/// chunks decrypted a few files ahead, as tasks of their own (in parallel,
/// and the ZIP writer never waits for a file to open); memory stays within
/// PREFETCH_FILES × PREFETCH_BYTES. Progress twice a second, not per file:
/// each update is a write.
async fn write_evidence(state: &AppState, id: Uuid, plan: &Plan, tx: &mpsc::Sender<Piece>) -> AppResult<()> {
    let send = |piece| async { tx.send(piece).await.map_err(|_| AppError::internal("the bundle writer stopped")) };
    let total = plan.files.len().max(1);
    let mut shown = Instant::now();
    let mut queue = plan.files.iter().map(|row| {
        let (store, keys, row, claims) = (state.store.clone(), state.keys.clone(), row.clone(), plan.claims.clone());
        rocket::tokio::spawn(async move {
            let claim = claims.get(&row.claim_id).ok_or(AppError::NotFound)?;
            Prefetched::open(store, keys, row, claim).await
        })
    });
    let mut ahead: VecDeque<_> = queue.by_ref().take(PREFETCH_FILES).collect();
    for (i, (row, exhibit)) in plan.files.iter().zip(&plan.exhibits).enumerate() {
        let next = ahead.pop_front().ok_or_else(|| AppError::internal("prefetch"))?;
        ahead.extend(queue.next());
        let Prefetched { mut download, head, complete } =
            next.await.map_err(|e| AppError::caused_by("filing bundle", e))??;
        send(Piece::Known(exhibit.file_name(), row.sha256.clone(), row.size.max(0) as u64, head)).await?;
        if !complete {
            while let Some(chunk) = download.next_chunk().await? {
                send(Piece::Data(chunk)).await?;
            }
        }
        if shown.elapsed() >= Duration::from_millis(500) {
            super::set_progress(state, id, export::Status::Running, 5 + (90 * i / total) as i32).await?;
            shown = Instant::now();
        }
    }
    Ok(())
}

/// An evidence file opened, with its first chunks decrypted.
struct Prefetched {
    download: Download,
    head: Vec<Vec<u8>>,
    /// Whether `head` is the whole file.
    complete: bool,
}

impl Prefetched {
    async fn open(
        store: std::sync::Arc<dyn EvidenceStore>,
        keys: Keyring,
        row: evidence::Model,
        claim: &claim::Model,
    ) -> AppResult<Self> {
        let mut download = crate::evidence::service::open_object(store.as_ref(), &keys, &row, claim).await?;
        let mut head = Vec::new();
        let mut bytes = 0;
        while bytes < PREFETCH_BYTES {
            match download.next_chunk().await? {
                Some(chunk) => {
                    bytes += chunk.len();
                    head.push(chunk);
                }
                None => return Ok(Self { download, head, complete: true }),
            }
        }
        Ok(Self { download, head, complete: false })
    }
}

/// Where the ZIP writer writes: hashes the archive as it comes and hands it
/// to the sealing thread a megabyte at a time (buffers come back for reuse:
/// a fresh megabyte would be a fresh mapping from the allocator each time).
struct HashingSink {
    hasher: Sha256,
    size: u64,
    batch: Vec<u8>,
    tx: sync_mpsc::SyncSender<Vec<u8>>,
    spent: sync_mpsc::Receiver<Vec<u8>>,
}

fn batch_buffer(spent: &sync_mpsc::Receiver<Vec<u8>>) -> Vec<u8> {
    let mut buf = spent.try_recv().unwrap_or_else(|_| Vec::with_capacity(STORE_BATCH + CHUNK + TAG));
    buf.clear();
    buf
}

impl HashingSink {
    fn new(tx: sync_mpsc::SyncSender<Vec<u8>>, spent: sync_mpsc::Receiver<Vec<u8>>) -> Self {
        Self { hasher: Sha256::new(), size: 0, batch: Vec::with_capacity(STORE_BATCH + CHUNK + TAG), tx, spent }
    }

    fn send(&mut self) -> std::io::Result<()> {
        let next = batch_buffer(&self.spent);
        let full = std::mem::replace(&mut self.batch, next);
        self.tx.send(full).map_err(|_| std::io::Error::other("the sealer stopped"))
    }

    /// Send what is left: the archive's SHA-256 and size.
    fn finish(mut self) -> std::io::Result<(String, u64)> {
        if !self.batch.is_empty() {
            self.send()?;
        }
        Ok((hex::encode(self.hasher.finalize()), self.size))
    }
}

impl std::io::Write for HashingSink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.hasher.update(buf);
        self.size += buf.len() as u64;
        self.batch.extend_from_slice(buf);
        if self.batch.len() >= STORE_BATCH {
            self.send()?;
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Seals the archive chunk by chunk with the bundle's key (in place) and
/// hands the sealed bytes to the store writer a megabyte at a time.
struct SealingWriter {
    sealer: ChunkSealer,
    block: Vec<u8>,
    batch: Vec<u8>,
    tx: mpsc::Sender<Vec<u8>>,
    /// Batches the store writer has written, for reuse.
    spent: sync_mpsc::Receiver<Vec<u8>>,
}

impl SealingWriter {
    fn new(key: &[u8; 32], tx: mpsc::Sender<Vec<u8>>, spent: sync_mpsc::Receiver<Vec<u8>>) -> Self {
        let sealer = ChunkSealer::new(key);
        let mut batch = Vec::with_capacity(STORE_BATCH + CHUNK + TAG);
        batch.extend_from_slice(sealer.header());
        Self { sealer, block: Vec::with_capacity(CHUNK + TAG), batch, tx, spent }
    }

    fn seal_block(&mut self, last: bool) -> std::io::Result<()> {
        self.sealer.seal_in_place(&mut self.block, last).map_err(|e| std::io::Error::other(e.to_string()))?;
        self.batch.extend_from_slice(&self.block);
        self.block.clear();
        if self.batch.len() >= STORE_BATCH || last {
            let next = batch_buffer(&self.spent);
            let full = std::mem::replace(&mut self.batch, next);
            self.tx.blocking_send(full).map_err(|_| std::io::Error::other("the store writer stopped"))?;
        }
        Ok(())
    }

    /// Seal the last block and send what is left.
    fn finish(mut self) -> std::io::Result<()> {
        self.seal_block(true)
    }
}

impl std::io::Write for SealingWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let mut rest = buf;
        while !rest.is_empty() {
            // A full block is sealed only once more data follows: the last one is sealed as last.
            if self.block.len() == CHUNK {
                self.seal_block(false)?;
            }
            let take = (CHUNK - self.block.len()).min(rest.len());
            self.block.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
