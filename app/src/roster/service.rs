//! Roster import and lookups.
//!
//! An import streams the file: a reader thread parses and hashes lines in
//! batches; the database side writes them (multi-row INSERTs on SQLite; on
//! PostgreSQL one `COPY … FROM STDIN` into the import's own unindexed
//! partition, indexed in bulk when it is attached). Rows carry their import's id and
//! only a `complete` import is ever matched, so an import is all-or-nothing:
//! if it fails, its rows are deleted and it is marked `failed`, and nothing
//! of it was ever visible. It is not resumable: run it again.
use std::io::Read;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use chrono::Utc;
use entities::{roster_entry, roster_import};
use sea_orm::sea_query::{Expr, Query};
use sea_orm::{ColumnTrait, ConnectionTrait, DatabaseBackend, EntityTrait, ExprTrait, QueryFilter, QuerySelect, Set};
use serde::Serialize;
use uuid::Uuid;

use super::domain::{hash_row, parse_row, RosterHashes, COLUMNS};
use crate::audit::{self, Actor, Event};
use crate::error::{AppError, AppResult};
use crate::AppState;

/// Lines hashed and written together.
const BATCH: usize = 4_000;
/// Rejected lines kept for the report (all are counted).
const MAX_REPORTED: usize = 1_000;

/// What an import did.
#[derive(Debug, Serialize)]
pub struct ImportReport {
    pub import_id: Uuid,
    pub rows_imported: u64,
    pub rows_rejected: u64,
    /// (line number, reason) of the first rejected lines.
    pub rejected: Vec<(u64, String)>,
}

/// How far an import is, for a progress bar.
#[derive(Default)]
pub struct Progress {
    pub bytes_read: AtomicU64,
    pub rows: AtomicU64,
}

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

enum Piece {
    Rows(Vec<RosterHashes>),
    Rejected(u64, String),
    Failed(String),
}

/// Parse and hash the file on a blocking thread, sending batches.
fn read_file(
    reader: impl Read + Send + 'static,
    keys: crate::crypto::Keyring,
    progress: Arc<Progress>,
    tx: rocket::tokio::sync::mpsc::Sender<Piece>,
) {
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
        Ok(false) => {
            let _ =
                tx.blocking_send(Piece::Failed(format!("the first line must name the columns: {}", COLUMNS.join(","))));
            return;
        }
        Err(e) => {
            let _ = tx.blocking_send(Piece::Failed(format!("cannot read the file: {e}")));
            return;
        }
    }
    let mut batch = Vec::with_capacity(BATCH);
    let mut record = csv::StringRecord::new();
    loop {
        match csv.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {
                let line = record.position().map(|p| p.line()).unwrap_or_default();
                let fields: Vec<&str> = record.iter().collect();
                match parse_row(&fields) {
                    Ok(row) => batch.push(hash_row(&keys, &row)),
                    Err(e) => {
                        if tx.blocking_send(Piece::Rejected(line, e.to_string())).is_err() {
                            return;
                        }
                    }
                }
                progress.rows.fetch_add(1, Ordering::Relaxed);
                if batch.len() == BATCH && tx.blocking_send(Piece::Rows(std::mem::take(&mut batch))).is_err() {
                    return;
                }
            }
            Err(e) => {
                // Broken encoding or quoting: the line is reported, the rest goes on.
                let line = e.position().map(|p| p.line()).unwrap_or_default();
                if matches!(e.kind(), csv::ErrorKind::Io(_)) {
                    let _ = tx.blocking_send(Piece::Failed(format!("cannot read the file: {e}")));
                    return;
                }
                if tx.blocking_send(Piece::Rejected(line, "unreadable line (encoding or quotes)".into())).is_err() {
                    return;
                }
            }
        }
    }
    if !batch.is_empty() {
        let _ = tx.blocking_send(Piece::Rows(batch));
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
    let import_id = Uuid::new_v4();
    let txn = state.db.begin_write().await?;
    roster_import::Entity::insert(roster_import::ActiveModel {
        id: Set(import_id),
        case_id: Set(case.model.id),
        source: Set(source.chars().take(200).collect()),
        status: Set("running".into()),
        rows_imported: Set(0),
        rows_rejected: Set(0),
        started_at: Set(Utc::now()),
        finished_at: Set(None),
    })
    .exec_without_returning(&*txn)
    .await?;
    txn.commit().await?;

    let (tx, rx) = rocket::tokio::sync::mpsc::channel(4);
    let keys = state.keys.clone();
    let reader_thread = rocket::tokio::task::spawn_blocking(move || read_file(reader, keys, progress, tx));
    let written = write_rows(state, import_id, rx).await;
    let _ = reader_thread.await;
    let actor = Actor::default();
    match written {
        Ok((imported, rejected_count, rejected)) => {
            let txn = state.db.begin_write().await?;
            roster_import::Entity::update_many()
                .col_expr(roster_import::Column::Status, Expr::value("complete"))
                .col_expr(roster_import::Column::RowsImported, Expr::value(imported as i64))
                .col_expr(roster_import::Column::RowsRejected, Expr::value(rejected_count as i64))
                .col_expr(roster_import::Column::FinishedAt, Expr::value(Some(Utc::now())))
                .filter(roster_import::Column::Id.eq(import_id))
                .exec(&*txn)
                .await?;
            audit::append(
                &txn,
                &actor,
                Event::new("roster.imported").subject("roster_import", import_id).detail(serde_json::json!({
                    "case": case.model.slug, "rows": imported, "rejected": rejected_count
                })),
            )
            .await?;
            txn.commit().await?;
            state.roster_imports.forget(case.model.id);
            // The case's claims get their signals recomputed against the new roster.
            crate::review::desk::invalidate_signals(state, case.model.id).await?;
            Ok(ImportReport { import_id, rows_imported: imported, rows_rejected: rejected_count, rejected })
        }
        Err(e) => {
            // Nothing of a failed import stays: its rows go, and it is marked failed.
            if state.db.backend() == DatabaseBackend::Postgres {
                state
                    .db
                    .conn()
                    .execute_unprepared(&format!("DROP TABLE IF EXISTS {}", partition_name(import_id)))
                    .await?;
            } else {
                roster_entry::Entity::delete_many()
                    .filter(roster_entry::Column::ImportId.eq(import_id))
                    .exec(state.db.conn())
                    .await?;
            }
            let txn = state.db.begin_write().await?;
            roster_import::Entity::update_many()
                .col_expr(roster_import::Column::Status, Expr::value("failed"))
                .col_expr(roster_import::Column::FinishedAt, Expr::value(Some(Utc::now())))
                .filter(roster_import::Column::Id.eq(import_id))
                .exec(&*txn)
                .await?;
            audit::append(
                &txn,
                &actor,
                Event::new("roster.import_failed")
                    .subject("roster_import", import_id)
                    .detail(serde_json::json!({"case": case.model.slug})),
            )
            .await?;
            txn.commit().await?;
            Err(e)
        }
    }
}

type Written = (u64, u64, Vec<(u64, String)>);

/// Skipped lines: all counted, the first `MAX_REPORTED` kept for the report.
#[derive(Default)]
struct Rejected {
    count: u64,
    lines: Vec<(u64, String)>,
}

impl Rejected {
    fn note(&mut self, line: u64, why: String) {
        self.count += 1;
        if self.lines.len() < MAX_REPORTED {
            self.lines.push((line, why));
        }
    }
}

/// The PostgreSQL partition that holds one import's rows.
fn partition_name(import_id: Uuid) -> String {
    format!("roster_part_{}", import_id.simple())
}

async fn write_rows(
    state: &AppState,
    import_id: Uuid,
    mut rx: rocket::tokio::sync::mpsc::Receiver<Piece>,
) -> AppResult<Written> {
    let mut imported = 0u64;
    let mut rejected = Rejected::default();
    if state.db.backend() == DatabaseBackend::Postgres {
        use sea_orm::sqlx::postgres::PgPoolCopyExt;
        // Bulk-load into this import's own unindexed table; `attach` indexes it once at the end.
        let part = partition_name(import_id);
        state
            .db
            .conn()
            .execute_unprepared(&format!(
                r#"CREATE TABLE {part} (
                    id bigint NOT NULL DEFAULT nextval('roster_entries_id_seq'),
                    import_id uuid NOT NULL CHECK (import_id = '{import_id}'),
                    code_hash varchar(64) COLLATE "C",
                    identity_hash varchar(64) COLLATE "C",
                    phone_hash varchar(64) COLLATE "C",
                    postal_kana_hash varchar(64) COLLATE "C")"#
            ))
            .await?;
        let pool = state.db.conn().get_postgres_connection_pool();
        let mut copy = pool
            .copy_in_raw(&format!(
                "COPY {part} (import_id, code_hash, identity_hash, phone_hash, postal_kana_hash) FROM STDIN"
            ))
            .await
            .map_err(|e| AppError::Unavailable(e.to_string()))?;
        let id = import_id.to_string();
        while let Some(piece) = rx.recv().await {
            match piece {
                Piece::Rows(rows) => {
                    let mut buf = Vec::with_capacity(rows.len() * 280);
                    for r in &rows {
                        buf.extend_from_slice(id.as_bytes());
                        for v in [&r.code, &r.identity, &r.phone, &r.postal_kana] {
                            buf.push(b'\t');
                            // Hex digests need no escaping; a missing value is \N.
                            buf.extend_from_slice(v.as_deref().unwrap_or("\\N").as_bytes());
                        }
                        buf.push(b'\n');
                    }
                    if let Err(e) = copy.send(buf).await {
                        let _ = copy.abort("import failed").await;
                        return Err(AppError::Unavailable(e.to_string()));
                    }
                    imported += rows.len() as u64;
                }
                Piece::Rejected(line, why) => rejected.note(line, why),
                Piece::Failed(why) => {
                    let _ = copy.abort(&why).await;
                    return Err(AppError::Internal(why));
                }
            }
        }
        copy.finish().await.map_err(|e| AppError::Unavailable(e.to_string()))?;
        let loaded = std::time::Instant::now();
        tracing::info!(rows = imported, "roster rows loaded; indexing");
        // Attaching builds the partition's indexes in bulk (far faster than
        // maintaining them row by row) and, thanks to the CHECK, skips a scan.
        state
            .db
            .conn()
            .execute_unprepared(&format!(
                "ALTER TABLE roster_entries ATTACH PARTITION {part} FOR VALUES IN ('{import_id}')"
            ))
            .await?;
        let indexed = loaded.elapsed();
        // Statistics, so that lookups use the hash indexes from the first query on.
        state.db.conn().execute_unprepared(&format!("ANALYZE {part}")).await?;
        tracing::info!(
            index_s = indexed.as_secs_f64(),
            analyze_s = (loaded.elapsed() - indexed).as_secs_f64(),
            "roster partition attached"
        );
    } else {
        while let Some(piece) = rx.recv().await {
            match piece {
                Piece::Rows(rows) => {
                    let models = rows.into_iter().map(|r| roster_entry::ActiveModel {
                        import_id: Set(import_id),
                        code_hash: Set(r.code),
                        identity_hash: Set(r.identity),
                        phone_hash: Set(r.phone),
                        postal_kana_hash: Set(r.postal_kana),
                        ..Default::default()
                    });
                    let models: Vec<_> = models.collect();
                    let n = models.len() as u64;
                    let txn = state.db.begin_write().await?;
                    roster_entry::Entity::insert_many(models).exec_without_returning(&*txn).await?;
                    txn.commit().await?;
                    imported += n;
                }
                Piece::Rejected(line, why) => rejected.note(line, why),
                Piece::Failed(why) => return Err(AppError::Internal(why)),
            }
        }
    }
    Ok((imported, rejected.count, rejected.lines))
}

/// How long the list of a case's completed imports is served from memory.
/// Another instance sees a newly completed import within this time; this
/// instance sees its own at once.
pub const IMPORTS_CACHE_TTL: std::time::Duration = std::time::Duration::from_secs(30);

/// The completed imports per case, cached: they change a few times in a
/// case's life, and every lookup needs them.
#[derive(Default)]
pub struct ImportCache {
    entries: std::sync::RwLock<std::collections::HashMap<Uuid, (std::time::Instant, Vec<Uuid>)>>,
}

impl ImportCache {
    pub async fn complete(&self, db: &impl ConnectionTrait, case_id: Uuid) -> AppResult<Vec<Uuid>> {
        let cached = self.entries.read().ok().and_then(|e| {
            e.get(&case_id).filter(|(at, _)| at.elapsed() < IMPORTS_CACHE_TTL).map(|(_, ids)| ids.clone())
        });
        if let Some(ids) = cached {
            return Ok(ids);
        }
        let ids: Vec<Uuid> = roster_import::Entity::find()
            .select_only()
            .column(roster_import::Column::Id)
            .filter(roster_import::Column::CaseId.eq(case_id))
            .filter(roster_import::Column::Status.eq("complete"))
            .into_tuple()
            .all(db)
            .await?;
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

/// Look the hashes up in the case's completed imports (cached): one
/// statement for the four kinds of value, each an indexed EXISTS.
pub async fn lookup(state: &AppState, case_id: Uuid, hashes: &[RosterHashes]) -> AppResult<RosterMatch> {
    let db = state.db.conn();
    let imports = state.roster_imports.complete(db, case_id).await?;
    if imports.is_empty() {
        return Ok(RosterMatch::default());
    }
    // One statement with an EXISTS per kind of value: one round trip.
    let pick = |f: fn(&RosterHashes) -> &Option<String>| hashes.iter().filter_map(|h| f(h).clone()).collect::<Vec<_>>();
    let exists = |column: roster_entry::Column, values: Vec<String>| {
        Expr::exists(
            Query::select()
                .expr(Expr::val(1))
                .from(roster_entry::Entity)
                .and_where(Expr::col(column).is_in(values))
                .and_where(Expr::col(roster_entry::Column::ImportId).is_in(imports.clone()))
                .limit(1)
                .to_owned(),
        )
    };
    let query = Query::select()
        .expr_as(exists(roster_entry::Column::CodeHash, pick(|h| &h.code)), "code")
        .expr_as(exists(roster_entry::Column::IdentityHash, pick(|h| &h.identity)), "identity")
        .expr_as(exists(roster_entry::Column::PhoneHash, pick(|h| &h.phone)), "phone")
        .expr_as(exists(roster_entry::Column::PostalKanaHash, pick(|h| &h.postal_kana)), "postal_kana")
        .to_owned();
    let row = db.query_one(&query).await?.ok_or_else(|| AppError::Internal("roster lookup returned nothing".into()))?;
    let flag = |name: &str| row.try_get::<bool>("", name).map_err(AppError::from);
    Ok(RosterMatch {
        code: flag("code")?,
        identity: flag("identity")?,
        phone: flag("phone")?,
        postal_kana: flag("postal_kana")?,
    })
}
