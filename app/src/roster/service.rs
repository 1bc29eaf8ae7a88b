//! Roster import and lookups.
//!
//! An import has two passes. The first streams the file: a reader thread
//! splits it into batches of lines, worker threads (one per core) parse and
//! hash them into roster keys, and a spill thread appends each key to one of
//! 64 temporary files by kind and top four bits, so memory stays flat
//! whatever the roster's size. The second pass takes the files one by one,
//! sorts each and cuts it into buckets of about 128 keys, one row per bucket
//! (a binary `COPY` on PostgreSQL, multi-row INSERTs on SQLite). A lookup
//! reads one small row by primary key per value and searches it.
//!
//! Rows carry their import's id and only a `complete` import is ever
//! matched, so an import is all-or-nothing: if it fails, its rows are
//! deleted and it is marked `failed`, and nothing of it was ever visible. It
//! is not resumable: run it again.
use std::io::{Read, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use entities::{roster_bucket, roster_import};
use sea_orm::sea_query::{Expr, Query};
use sea_orm::{ColumnTrait, ConnectionTrait, DatabaseBackend, EntityTrait, ExprTrait, QueryFilter, QuerySelect, Set};
use serde::Serialize;
use uuid::Uuid;

use super::domain::{
    bucket_bits, bucket_contains, bucket_of, encode_bucket, keys_of_row, parse_row, RosterKeys, COLUMNS, KINDS,
};
use crate::audit::{self, Actor, Event};
use crate::error::{AppError, AppResult};
use crate::AppState;

/// Lines parsed and hashed together.
const BATCH: usize = 4_000;
/// Rejected lines kept for the report (all are counted).
const MAX_REPORTED: usize = 1_000;
/// Spill files per kind: keys are split by their top `SPILL_BITS` bits.
const SPILL_BITS: u32 = 4;
const SPILLS: usize = 1 << SPILL_BITS;

/// What an import did.
#[derive(Debug, Serialize)]
pub struct ImportReport {
    pub import_id: Uuid,
    pub rows_imported: u64,
    pub rows_rejected: u64,
    /// (line number, reason) of the first rejected lines.
    pub rejected: Vec<(u64, String)>,
}

/// How far an import is, for a progress bar: the first pass reads the file
/// (`bytes_read`, `rows`), the second writes `SPILL_FILES` sorted parts.
#[derive(Default)]
pub struct Progress {
    pub bytes_read: AtomicU64,
    pub rows: AtomicU64,
    pub parts_written: AtomicU64,
}

/// How many parts the second pass writes, for a progress bar.
pub const SPILL_FILES: u64 = (KINDS * SPILLS) as u64;

struct CountingReader<R> {
    inner: R,
    progress: Arc<Progress>,
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.progress.bytes_read.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// Skipped lines: all counted, the `MAX_REPORTED` first by line number kept
/// for the report (they arrive from several workers, not in order).
#[derive(Default)]
struct Rejected {
    count: u64,
    lines: Vec<(u64, String)>,
}

impl Rejected {
    fn note(&mut self, lines: Vec<(u64, String)>) {
        self.count += lines.len() as u64;
        self.lines.extend(lines);
        if self.lines.len() > 2 * MAX_REPORTED {
            self.trim();
        }
    }

    fn trim(&mut self) {
        self.lines.sort_by_key(|(line, _)| *line);
        self.lines.truncate(MAX_REPORTED);
    }
}

/// The first pass's result: every accepted line's keys, spilled by kind and
/// top bits, and the lines refused.
struct Spill {
    dir: tempfile::TempDir,
    files: Vec<std::io::BufWriter<std::fs::File>>,
    /// Keys of each kind.
    counts: [u64; KINDS],
    lines: u64,
    rejected: Rejected,
}

impl Spill {
    fn new() -> std::io::Result<Self> {
        let dir = tempfile::Builder::new().prefix("roster-import-").tempdir()?;
        let files = (0..KINDS * SPILLS)
            .map(|i| {
                Ok(std::io::BufWriter::with_capacity(64 * 1024, std::fs::File::create(dir.path().join(i.to_string()))?))
            })
            .collect::<std::io::Result<_>>()?;
        Ok(Self { dir, files, counts: [0; KINDS], lines: 0, rejected: Rejected::default() })
    }

    fn push(&mut self, rows: &[RosterKeys]) -> std::io::Result<()> {
        self.lines += rows.len() as u64;
        for row in rows {
            for (kind, key) in row.by_kind().into_iter().enumerate() {
                if let Some(key) = key {
                    let spill = ((key as u64) >> (64 - SPILL_BITS)) as usize;
                    self.files[kind * SPILLS + spill].write_all(&key.to_ne_bytes())?;
                    self.counts[kind] += 1;
                }
            }
        }
        Ok(())
    }

    /// Flush, and give the files' paths in (kind, top bits) order.
    fn finish(self) -> std::io::Result<Spilled> {
        for mut f in self.files {
            f.flush()?;
        }
        let paths = (0..KINDS * SPILLS).map(|i| self.dir.path().join(i.to_string())).collect();
        let bits = bucket_bits(self.counts.iter().copied().max().unwrap_or(0));
        Ok(Spilled { _dir: self.dir, paths, bits, lines: self.lines, rejected: self.rejected })
    }
}

struct Spilled {
    /// Removed (with the files) when the import ends, however it ends.
    _dir: tempfile::TempDir,
    paths: Vec<std::path::PathBuf>,
    bits: u8,
    lines: u64,
    rejected: Rejected,
}

/// Lines read but not yet parsed: (line number, record). Batches go back to
/// the reader once parsed, so their records' buffers are reused rather than
/// grown afresh for every line.
struct Lines {
    lines: Vec<(u64, csv::StringRecord)>,
    filled: usize,
}

enum Parsed {
    Rows(Vec<RosterKeys>),
    Rejected(Vec<(u64, String)>),
}

/// The first pass, on blocking threads: read the file, have one worker per
/// core parse and hash its lines, and spill their keys. An error is a reason
/// the whole import fails (unreadable file, wrong header, full disk).
fn read_file(reader: impl Read, keys: &crate::crypto::Keyring, progress: Arc<Progress>) -> Result<Spilled, String> {
    let mut csv = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .from_reader(CountingReader { inner: reader, progress: progress.clone() });
    let header_ok = csv.headers().map(|h| {
        h.iter()
            .map(|c| c.trim().trim_start_matches('\u{feff}').to_ascii_lowercase())
            .eq(COLUMNS.iter().map(|c| c.to_string()))
    });
    match header_ok {
        Ok(true) => {}
        Ok(false) => return Err(format!("the first line must name the columns: {}", COLUMNS.join(","))),
        Err(e) => return Err(format!("cannot read the file: {e}")),
    }
    let mut spill = Spill::new().map_err(|e| format!("cannot write temporary files: {e}"))?;
    let workers = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1).clamp(1, 8);
    let (lines_tx, lines_rx) = std::sync::mpsc::sync_channel::<Lines>(workers * 2);
    let lines_rx = Arc::new(std::sync::Mutex::new(lines_rx));
    let (spent_tx, spent_rx) = std::sync::mpsc::channel::<Lines>();
    let (parsed_tx, parsed_rx) = std::sync::mpsc::sync_channel::<Parsed>(workers * 2);
    std::thread::scope(|scope| {
        for _ in 0..workers {
            let (lines_rx, spent_tx, parsed_tx) = (lines_rx.clone(), spent_tx.clone(), parsed_tx.clone());
            scope.spawn(move || loop {
                let next = match lines_rx.lock() {
                    Ok(rx) => rx.recv(),
                    Err(_) => return,
                };
                let Ok(batch) = next else { return };
                let mut rows = Vec::with_capacity(batch.filled);
                let mut rejected = Vec::new();
                let mut fields: Vec<&str> = Vec::with_capacity(COLUMNS.len());
                for (line, record) in &batch.lines[..batch.filled] {
                    fields.clear();
                    fields.extend(record.iter());
                    match parse_row(&fields) {
                        Ok(row) => rows.push(keys_of_row(keys, &row)),
                        Err(e) => rejected.push((*line, e.to_string())),
                    }
                }
                drop(fields);
                let _ = spent_tx.send(batch);
                if (!rejected.is_empty() && parsed_tx.send(Parsed::Rejected(rejected)).is_err())
                    || parsed_tx.send(Parsed::Rows(rows)).is_err()
                {
                    return;
                }
            });
        }
        drop((spent_tx, parsed_tx));
        let spiller = scope.spawn(move || {
            for parsed in parsed_rx {
                match parsed {
                    Parsed::Rows(rows) => {
                        spill.push(&rows).map_err(|e| format!("cannot write temporary files: {e}"))?
                    }
                    Parsed::Rejected(lines) => spill.rejected.note(lines),
                }
            }
            Ok::<_, String>(spill)
        });
        let read = read_lines(&mut csv, &lines_tx, &spent_rx, &progress);
        // Closing the channel lets the workers finish their last batches.
        drop(lines_tx);
        let mut spill = spiller.join().map_err(|_| "the import stopped unexpectedly".to_string())??;
        spill.rejected.note(read?);
        spill.finish().map_err(|e| format!("cannot write temporary files: {e}"))
    })
}

/// Read the lines in batches for the workers; gives the lines whose
/// encoding or quoting is broken (reported, the rest goes on).
fn read_lines<R: Read>(
    csv: &mut csv::Reader<R>,
    lines_tx: &std::sync::mpsc::SyncSender<Lines>,
    spent_rx: &std::sync::mpsc::Receiver<Lines>,
    progress: &Progress,
) -> Result<Vec<(u64, String)>, String> {
    let fresh = || Lines { lines: Vec::with_capacity(BATCH), filled: 0 };
    let stopped = || "the import stopped unexpectedly".to_string();
    let mut batch = fresh();
    let mut broken = Vec::new();
    loop {
        if batch.filled == batch.lines.len() {
            batch.lines.push((0, csv::StringRecord::new()));
        }
        let (line, record) = &mut batch.lines[batch.filled];
        match csv.read_record(record) {
            Ok(false) => break,
            Ok(true) => {
                *line = record.position().map(|p| p.line()).unwrap_or_default();
                batch.filled += 1;
                progress.rows.fetch_add(1, Ordering::Relaxed);
                if batch.filled == BATCH {
                    let mut next = spent_rx.try_recv().unwrap_or_else(|_| fresh());
                    next.filled = 0;
                    lines_tx.send(std::mem::replace(&mut batch, next)).map_err(|_| stopped())?;
                }
            }
            Err(e) if matches!(e.kind(), csv::ErrorKind::Io(_)) => return Err(format!("cannot read the file: {e}")),
            Err(e) => {
                let line = e.position().map(|p| p.line()).unwrap_or_default();
                broken.push((line, "unreadable line (encoding or quotes)".to_string()));
            }
        }
    }
    if batch.filled > 0 {
        lines_tx.send(batch).map_err(|_| stopped())?;
    }
    Ok(broken)
}

/// One bucket row: (kind, bucket, keys).
type Bucket = (i16, i32, Vec<u8>);

/// The second pass's source, on a blocking thread: each spill file in
/// turn, sorted, deduplicated and cut into buckets, sent in batches.
/// A bucket never spans two spill files because `bucket_bits` is never
/// below `SPILL_BITS` (4): each bucket is written once.
fn buckets_of(
    paths: &[std::path::PathBuf],
    bits: u8,
    progress: &Progress,
    tx: &rocket::tokio::sync::mpsc::Sender<Result<Vec<Bucket>, String>>,
) {
    let mut keys: Vec<u64> = Vec::new();
    let mut bytes: Vec<u8> = Vec::new();
    for (i, path) in paths.iter().enumerate() {
        let kind = (i / SPILLS) as i16;
        bytes.clear();
        let read = std::fs::File::open(path).and_then(|mut f| f.read_to_end(&mut bytes));
        if let Err(e) = read {
            let _ = tx.blocking_send(Err(format!("cannot read temporary files: {e}")));
            return;
        }
        keys.clear();
        keys.extend(bytes.chunks_exact(8).map(|c| {
            let mut k = [0u8; 8];
            k.copy_from_slice(c);
            i64::from_ne_bytes(k) as u64
        }));
        keys.sort_unstable();
        keys.dedup();
        let mut batch = Vec::new();
        for group in keys.chunk_by(|a, b| bucket_of(*a as i64, bits) == bucket_of(*b as i64, bits)) {
            let mut blob = Vec::new();
            encode_bucket(group, &mut blob);
            batch.push((kind, bucket_of(group[0] as i64, bits), blob));
        }
        if !batch.is_empty() && tx.blocking_send(Ok(batch)).is_err() {
            return;
        }
        progress.parts_written.fetch_add(1, Ordering::Relaxed);
    }
}

/// Import a roster file for a case. `source` is the file's name, for the record.
pub async fn import(
    state: &AppState,
    case_slug: &str,
    source: &str,
    reader: impl Read + Send + 'static,
    progress: Arc<Progress>,
) -> AppResult<ImportReport> {
    let case = crate::cases::service::by_slug(state.db.conn(), case_slug).await?;
    let import_id = begin_import(state, case.model.id, source).await?;
    let keys = state.keys.clone();
    let reading = progress.clone();
    let spilled = rocket::tokio::task::spawn_blocking(move || read_file(reader, &keys, reading))
        .await
        .map_err(|e| AppError::caused_by("roster reading task", e))
        .and_then(|r| r.map_err(AppError::internal));
    let written = match spilled {
        Ok(spilled) => write_buckets(state, import_id, spilled, progress).await,
        Err(e) => Err(e),
    };
    match written {
        Ok((imported, bits, rejected)) => complete_import(state, &case, import_id, imported, bits, rejected).await,
        Err(e) => {
            fail_import(state, &case, import_id).await?;
            Err(e)
        }
    }
}

/// The import's record, committed before any row is read: a failed or
/// interrupted import is on file.
async fn begin_import(state: &AppState, case_id: Uuid, source: &str) -> AppResult<Uuid> {
    let import_id = Uuid::new_v4();
    let txn = state.db.begin_write().await?;
    roster_import::Entity::insert(roster_import::ActiveModel {
        id: Set(import_id),
        case_id: Set(case_id),
        source: Set(source.chars().take(200).collect()),
        status: Set("running".into()),
        rows_imported: Set(0),
        rows_rejected: Set(0),
        bucket_bits: Set(0),
        started_at: Set(state.clock.now()),
        finished_at: Set(None),
    })
    .exec_without_returning(&txn)
    .await?;
    txn.commit().await?;
    Ok(import_id)
}

/// The import is complete: recorded and audited, the case's cached roster
/// forgotten, and its claims' verification signals recomputed by a job.
async fn complete_import(
    state: &AppState,
    case: &crate::cases::service::Case,
    import_id: Uuid,
    imported: u64,
    bits: u8,
    mut rejected: Rejected,
) -> AppResult<ImportReport> {
    let txn = state.db.begin_write().await?;
    roster_import::Entity::update_many()
        .col_expr(roster_import::Column::Status, Expr::value("complete"))
        .col_expr(roster_import::Column::RowsImported, Expr::value(imported as i64))
        .col_expr(roster_import::Column::RowsRejected, Expr::value(rejected.count as i64))
        .col_expr(roster_import::Column::BucketBits, Expr::value(i16::from(bits)))
        .col_expr(roster_import::Column::FinishedAt, Expr::value(Some(state.clock.now())))
        .filter(roster_import::Column::Id.eq(import_id))
        .exec(&txn)
        .await?;
    let detail = serde_json::json!({"case": case.model.slug, "rows": imported, "rejected": rejected.count});
    let event = Event::new("roster.imported").subject("roster_import", import_id).detail(detail);
    audit::append(&txn, &Actor::default(), event).await?;
    txn.commit().await?;
    state.roster_imports.forget(case.model.id);
    // The case's claims get their signals recomputed against the new roster.
    crate::review::desk::invalidate_signals(state, case.model.id).await?;
    // A job recomputes them now, so the queue does not wait for them.
    crate::jobs::enqueue(
        state.db.conn(),
        state.clock.now(),
        crate::jobs::Kind::Signals,
        &format!("signals:{import_id}"),
        serde_json::json!({ "case": case.model.id }),
    )
    .await?;
    rejected.trim();
    Ok(ImportReport { import_id, rows_imported: imported, rows_rejected: rejected.count, rejected: rejected.lines })
}

/// Nothing of a failed import stays: its rows go, and it is marked failed.
async fn fail_import(state: &AppState, case: &crate::cases::service::Case, import_id: Uuid) -> AppResult<()> {
    roster_bucket::Entity::delete_many()
        .filter(roster_bucket::Column::ImportId.eq(import_id))
        .exec(state.db.conn())
        .await?;
    let txn = state.db.begin_write().await?;
    roster_import::Entity::update_many()
        .col_expr(roster_import::Column::Status, Expr::value("failed"))
        .col_expr(roster_import::Column::FinishedAt, Expr::value(Some(state.clock.now())))
        .filter(roster_import::Column::Id.eq(import_id))
        .exec(&txn)
        .await?;
    let event = Event::new("roster.import_failed")
        .subject("roster_import", import_id)
        .detail(serde_json::json!({"case": case.model.slug}));
    audit::append(&txn, &Actor::default(), event).await?;
    txn.commit().await?;
    Ok(())
}

/// Binary `COPY` framing (PostgreSQL's documented format).
const COPY_HEADER: &[u8] = b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0";
const COPY_TRAILER: [u8; 2] = (-1i16).to_be_bytes();

/// One bucket row in binary `COPY` form.
fn encode_row(buf: &mut Vec<u8>, import_id: &Uuid, (kind, bucket, keys): &Bucket) {
    buf.extend_from_slice(&4i16.to_be_bytes());
    buf.extend_from_slice(&16i32.to_be_bytes());
    buf.extend_from_slice(import_id.as_bytes());
    buf.extend_from_slice(&2i32.to_be_bytes());
    buf.extend_from_slice(&kind.to_be_bytes());
    buf.extend_from_slice(&4i32.to_be_bytes());
    buf.extend_from_slice(&bucket.to_be_bytes());
    buf.extend_from_slice(&(keys.len() as i32).to_be_bytes());
    buf.extend_from_slice(keys);
}

/// The second pass: write the buckets (one `COPY` statement on PostgreSQL,
/// so a failure leaves none of them; batches of INSERTs on SQLite, cleaned
/// up by the caller on failure). Gives the lines imported, the bucket bits
/// and the lines refused.
async fn write_buckets(
    state: &AppState,
    import_id: Uuid,
    spilled: Spilled,
    progress: Arc<Progress>,
) -> AppResult<(u64, u8, Rejected)> {
    let Spilled { _dir, paths, bits, lines, rejected } = spilled;
    let (tx, mut rx) = rocket::tokio::sync::mpsc::channel(4);
    let producer = rocket::tokio::task::spawn_blocking(move || {
        buckets_of(&paths, bits, &progress, &tx);
        drop(_dir);
    });
    let result = if state.db.backend() == DatabaseBackend::Postgres {
        copy_buckets(state, import_id, &mut rx).await
    } else {
        insert_buckets(state, import_id, &mut rx).await
    };
    // Stop the producer (if the writer failed) and wait for it to remove its files.
    drop(rx);
    let _ = producer.await;
    result.map(|()| (lines, bits, rejected))
}

async fn copy_buckets(
    state: &AppState,
    import_id: Uuid,
    rx: &mut rocket::tokio::sync::mpsc::Receiver<Result<Vec<Bucket>, String>>,
) -> AppResult<()> {
    use sea_orm::sqlx::postgres::PgPoolCopyExt;
    let unavailable = |e: sea_orm::sqlx::Error| AppError::Unavailable(e.to_string());
    let pool = state.db.conn().get_postgres_connection_pool();
    let mut copy = pool
        .copy_in_raw("COPY roster_buckets (import_id, kind, bucket, keys) FROM STDIN (FORMAT binary)")
        .await
        .map_err(unavailable)?;
    let mut buf = COPY_HEADER.to_vec();
    let sent: AppResult<()> = async {
        while let Some(batch) = rx.recv().await {
            for bucket in &batch.map_err(AppError::internal)? {
                encode_row(&mut buf, &import_id, bucket);
            }
            if buf.len() >= 1 << 20 {
                copy.send(std::mem::take(&mut buf)).await.map_err(unavailable)?;
            }
        }
        buf.extend_from_slice(&COPY_TRAILER);
        copy.send(buf).await.map_err(unavailable)?;
        Ok(())
    }
    .await;
    match sent {
        Ok(()) => copy.finish().await.map(|_| ()).map_err(unavailable),
        Err(e) => {
            let _ = copy.abort("import failed").await;
            Err(e)
        }
    }
}

async fn insert_buckets(
    state: &AppState,
    import_id: Uuid,
    rx: &mut rocket::tokio::sync::mpsc::Receiver<Result<Vec<Bucket>, String>>,
) -> AppResult<()> {
    while let Some(batch) = rx.recv().await {
        let batch = batch.map_err(AppError::internal)?;
        // Four values a row, well under SQLite's limit on bound parameters.
        for rows in batch.chunks(1_000) {
            let models = rows.iter().map(|(kind, bucket, keys)| roster_bucket::ActiveModel {
                import_id: Set(import_id),
                kind: Set(*kind),
                bucket: Set(*bucket),
                keys: Set(keys.clone()),
            });
            let txn = state.db.begin_write().await?;
            roster_bucket::Entity::insert_many(models.collect::<Vec<_>>()).exec_without_returning(&txn).await?;
            txn.commit().await?;
        }
    }
    Ok(())
}

/// How long the list of a case's completed imports is served from memory.
/// Another instance sees a newly completed import within this time; this
/// instance sees its own at once.
pub const IMPORTS_CACHE_TTL: std::time::Duration = std::time::Duration::from_secs(30);

/// A case's completed imports: (import id, bucket bits).
type Imports = Vec<(Uuid, u8)>;

/// The completed imports per case with their bucket bits, cached: they change a few times in a
/// case's life, and every lookup needs them.
#[derive(Default)]
pub struct ImportCache {
    entries: std::sync::RwLock<std::collections::HashMap<Uuid, (std::time::Instant, Imports)>>,
}

impl ImportCache {
    pub async fn complete(&self, db: &impl ConnectionTrait, case_id: Uuid) -> AppResult<Imports> {
        let cached = self.entries.read().ok().and_then(|e| {
            e.get(&case_id).filter(|(at, _)| at.elapsed() < IMPORTS_CACHE_TTL).map(|(_, ids)| ids.clone())
        });
        if let Some(ids) = cached {
            return Ok(ids);
        }
        let ids: Vec<(Uuid, i16)> = roster_import::Entity::find()
            .select_only()
            .column(roster_import::Column::Id)
            .column(roster_import::Column::BucketBits)
            .filter(roster_import::Column::CaseId.eq(case_id))
            .filter(roster_import::Column::Status.eq("complete"))
            .into_tuple()
            .all(db)
            .await?;
        let ids: Imports = ids.into_iter().map(|(id, bits)| (id, bits.clamp(1, 63) as u8)).collect();
        if let Ok(mut e) = self.entries.write() {
            e.insert(case_id, (std::time::Instant::now(), ids.clone()));
        }
        Ok(ids)
    }

    pub fn forget(&self, case_id: Uuid) {
        if let Ok(mut e) = self.entries.write() {
            e.remove(&case_id);
        }
    }
}

/// Which kinds of value of a claim appear in a case's completed imports.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct RosterMatch {
    pub code: bool,
    pub identity: bool,
    pub phone: bool,
    pub postal_kana: bool,
}

/// Look the keys up in the case's completed imports (cached): one statement
/// reads the bucket of every (import, kind, key) by primary key, and each
/// key is searched in its bucket.
pub async fn lookup(state: &AppState, case_id: Uuid, hashes: &[RosterKeys]) -> AppResult<RosterMatch> {
    let db = state.db.conn();
    let imports = state.roster_imports.complete(db, case_id).await?;
    let wanted: Vec<(i16, i64)> = hashes
        .iter()
        .flat_map(|h| h.by_kind().into_iter().enumerate().filter_map(|(kind, key)| Some((kind as i16, key?))))
        .collect();
    if imports.is_empty() || wanted.is_empty() {
        return Ok(RosterMatch::default());
    }
    let mut places: Vec<(Uuid, i16, i32)> = imports
        .iter()
        .flat_map(|(import, bits)| wanted.iter().map(|(kind, key)| (*import, *kind, bucket_of(*key, *bits))))
        .collect();
    places.sort_unstable();
    places.dedup();
    let query = Query::select()
        .columns([
            roster_bucket::Column::ImportId,
            roster_bucket::Column::Kind,
            roster_bucket::Column::Bucket,
            roster_bucket::Column::Keys,
        ])
        .from(roster_bucket::Entity)
        .and_where(
            Expr::tuple([
                Expr::col(roster_bucket::Column::ImportId),
                Expr::col(roster_bucket::Column::Kind),
                Expr::col(roster_bucket::Column::Bucket),
            ])
            .is_in(places.iter().map(|(i, k, b)| Expr::tuple([Expr::val(*i), Expr::val(*k), Expr::val(*b)]))),
        )
        .to_owned();
    let mut found = [false; KINDS];
    for row in db.query_all(&query).await? {
        let import: Uuid = row.try_get("", "import_id")?;
        let kind: i16 = row.try_get("", "kind")?;
        let bucket: i32 = row.try_get("", "bucket")?;
        let keys: Vec<u8> = row.try_get("", "keys")?;
        let Some((_, bits)) = imports.iter().find(|(id, _)| *id == import) else { continue };
        for (k, key) in &wanted {
            if *k == kind && bucket_of(*key, *bits) == bucket && bucket_contains(&keys, *key) {
                found[kind as usize] = true;
            }
        }
    }
    let [code, identity, phone, postal_kana] = found;
    Ok(RosterMatch { code, identity, phone, postal_kana })
}
