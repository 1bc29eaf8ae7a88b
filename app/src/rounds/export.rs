//! Filing-bundle exports of a frozen round, as background jobs with
//! progress. The ZIP is streamed front to back through bounded channels:
//! evidence files are opened and decrypted a few ahead by tasks of their
//! own; a blocking thread writes the archive (CRC; each file's SHA-256 is
//! the one taken at upload, which authenticated decryption vouches for)
//! and hashes the whole of it; another seals it chunk by chunk with the
//! bundle's own data key; the sealed batches go straight into the evidence
//! store (an S3 multipart upload on S3). The party list is decrypted
//! meanwhile and follows the evidence in the archive. Memory stays flat
//! whatever the round's size. Downloads need a freshly re-entered
//! password, are audited, and exports are capped per hour with an alert
//! past the cap.
use chrono::{DateTime, Utc};
use std::collections::HashMap;

use entities::{claim, consent, evidence, export, filing_round, person, round_member};
use rocket::futures::future::BoxFuture;
use sea_orm::sea_query::{Expr, Query};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
use serde::Serialize;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::bundle::{BundleWriter, Counts, Exhibit, Party, RoundInfo};
use crate::audit::{self, Actor, Event};
use crate::auth::{CurrentUser, Role};
use crate::claims::access::{self, Read as CappedRead};
use crate::claims::store::assemble_draft;
use crate::crypto::{DataKey, Keyring};
use crate::error::{AppError, AppResult};
use crate::evidence::domain::{ChunkSealer, SniffedType, CHUNK, TAG};
use crate::evidence::service::Download;
use crate::evidence::store::EvidenceStore;
use crate::jobs::{self, Claimed, JobError};
use crate::AppState;

#[derive(Clone, Debug, Serialize)]
pub struct ExportView {
    pub id: Uuid,
    pub round_id: Uuid,
    pub status: export::Status,
    pub progress: i32,
    pub sha256: Option<String>,
    pub size: Option<i64>,
    pub counts: serde_json::Value,
    pub error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

impl From<export::Model> for ExportView {
    fn from(m: export::Model) -> Self {
        Self {
            id: m.id,
            round_id: m.round_id,
            status: m.status,
            progress: m.progress,
            sha256: m.sha256,
            size: m.size,
            counts: m.counts.as_deref().and_then(|c| serde_json::from_str(c).ok()).unwrap_or_default(),
            error: m.error,
            created_at: m.created_at,
            finished_at: m.finished_at,
        }
    }
}

/// Ask for a bundle of a frozen round: answered at once with the job; the
/// work goes on in the background (`status` shows its progress).
pub async fn start(state: &AppState, user: &CurrentUser, round_id: Uuid) -> AppResult<ExportView> {
    user.require(Role::Admin)?;
    // The bundle holds every plaintiff's data: the second factor first (S5).
    access::require_staff(user)?;
    let round = filing_round::Entity::find_by_id(round_id).one(state.db.conn()).await?.ok_or(AppError::NotFound)?;
    if round.state == "open" {
        return Err(AppError::WrongState("round_not_frozen"));
    }
    let id = Uuid::new_v4();
    let event =
        Event::new(CappedRead::Export.action()).subject("export", id).detail(serde_json::json!({"round": round_id}));
    access::record_capped(state, user, CappedRead::Export, event).await?;
    // Every plaintiff's data at once: the other administrators hear of it.
    let txn = state.db.begin_write().await?;
    let detail = serde_json::json!({"round": round_id, "export": id});
    access::raise_alert(state, &txn, "export.started", Some(user), detail, chrono::Duration::zero()).await?;
    txn.commit().await?;
    let model = export::Model {
        id,
        round_id,
        status: export::Status::Queued,
        progress: 0,
        storage_key: None,
        wrapped_key: None,
        sha256: None,
        size: None,
        counts: None,
        error: None,
        requested_by: user.id,
        created_at: state.clock.now(),
        finished_at: None,
    };
    // The export and its job commit together: a server that stops before
    // finishing it leaves the job to another (or to itself after a restart).
    let txn = state.db.begin_write().await?;
    export::Entity::insert(export::ActiveModel::from(model.clone())).exec_without_returning(&txn).await?;
    jobs::enqueue(&txn, model.created_at, jobs::Kind::Export, &job_key(id), serde_json::json!({ "export": id }))
        .await?;
    txn.commit().await?;
    Ok(model.into())
}

/// The job's key for an export.
pub fn job_key(export_id: Uuid) -> String {
    format!("export:{export_id}")
}

/// Run the export a claimed job names. An attempt after an interrupted one
/// starts the bundle again from the beginning.
pub async fn run_job(state: &AppState, claimed: &Claimed) -> Result<(), JobError> {
    let payload: serde_json::Value = serde_json::from_str(&claimed.job.payload).unwrap_or_default();
    let id: Uuid = payload["export"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| JobError::permanent("the job names no export"))?;
    let Some(row) = export::Entity::find_by_id(id).one(state.db.conn()).await? else {
        return Err(JobError::permanent("the export no longer exists"));
    };
    if row.status == export::Status::Done {
        return Ok(());
    }
    let exporter = crate::auth::service::account_by_id(state, row.requested_by).await?.email;
    match run(state, id, exporter, Some(claimed)).await {
        Ok(()) => Ok(()),
        Err(e) => {
            tracing::error!(export = %id, error = %e, "filing bundle export attempt failed");
            // Between attempts the bar says so; the last attempt marks it failed.
            set_progress(state, id, export::Status::Queued, 0).await?;
            Err(e.into())
        }
    }
}

/// [`run_job`] as the job runners call it.
pub fn export_job<'a>(state: &'a AppState, claimed: &'a Claimed) -> BoxFuture<'a, Result<(), JobError>> {
    Box::pin(run_job(state, claimed))
}

/// [`job_failed`] as the job runners call it.
pub fn export_given_up<'a>(
    state: &'a AppState,
    claimed: &'a Claimed,
    interrupted: bool,
) -> BoxFuture<'a, AppResult<()>> {
    Box::pin(job_failed(state, claimed, interrupted))
}

/// The job behind an export was given up: the export is marked failed.
pub async fn job_failed(state: &AppState, claimed: &Claimed, interrupted: bool) -> AppResult<()> {
    let payload: serde_json::Value = serde_json::from_str(&claimed.job.payload).unwrap_or_default();
    let Some(id) = payload["export"].as_str().and_then(|s| s.parse::<Uuid>().ok()) else {
        return Ok(());
    };
    let why =
        if interrupted { AppError::WrongState("export_interrupted") } else { AppError::WrongState("export_failed") };
    fail(state, id, &why).await
}

async fn fail(state: &AppState, id: Uuid, e: &AppError) -> AppResult<()> {
    // The message a person reads, never personal data.
    let why = e.message(crate::i18n::Lang::En);
    export::Entity::update_many()
        .col_expr(export::Column::Status, Expr::value(export::Status::Failed))
        .col_expr(export::Column::Error, Expr::value(Some(why.chars().take(400).collect::<String>())))
        .col_expr(export::Column::FinishedAt, Expr::value(Some(state.clock.now())))
        .filter(export::Column::Id.eq(id))
        .exec(state.db.conn())
        .await?;
    let txn = state.db.begin_write().await?;
    audit::append(&txn, &Actor::default(), Event::new("export.failed").subject("export", id)).await?;
    txn.commit().await?;
    Ok(())
}

/// The export's status and progress, mirrored on its job's row.
async fn set_progress(state: &AppState, id: Uuid, status: export::Status, progress: i32) -> AppResult<()> {
    let progress = progress.clamp(0, 100);
    export::Entity::update_many()
        .col_expr(export::Column::Status, Expr::value(status))
        .col_expr(export::Column::Progress, Expr::value(progress))
        .filter(export::Column::Id.eq(id))
        .exec(state.db.conn())
        .await?;
    entities::job::Entity::update_many()
        .col_expr(entities::job::Column::Progress, Expr::value(progress))
        .filter(entities::job::Column::Key.eq(job_key(id)))
        .filter(entities::job::Column::Status.eq(entities::job::Status::Running))
        .exec(state.db.conn())
        .await?;
    Ok(())
}

pub async fn status(state: &AppState, user: &CurrentUser, id: Uuid) -> AppResult<ExportView> {
    user.require(Role::Admin)?;
    Ok(export::Entity::find_by_id(id).one(state.db.conn()).await?.ok_or(AppError::NotFound)?.into())
}

pub async fn list(state: &AppState, user: &CurrentUser, round_id: Uuid) -> AppResult<Vec<ExportView>> {
    user.require(Role::Admin)?;
    Ok(export::Entity::find()
        .filter(export::Column::RoundId.eq(round_id))
        .order_by_desc(export::Column::CreatedAt)
        .all(state.db.conn())
        .await?
        .into_iter()
        .map(ExportView::from)
        .collect())
}

/// What the blocking ZIP writer is told to do.
enum Piece {
    Parties(Vec<Party>),
    Exhibits(Vec<Exhibit>),
    Start(String, bool),
    /// An evidence file: its name, and the SHA-256 and size recorded at upload.
    Known(String, String, u64),
    Data(Vec<u8>),
    Finish(Box<(RoundInfo, Counts, String)>),
}

fn kind_text(kind: &str, defendant: &str) -> (String, String, String) {
    match kind {
        "apology_letter" => (
            "おわびの手紙（ご登録用コード記載）".into(),
            defendant.to_string(),
            "原告が漏えいの対象者として通知を受けたこと".into(),
        ),
        "direct_mail" => (
            "ダイレクトメール".into(),
            "送付元の事業者".into(),
            "漏えいした情報が名簿業者を通じて利用されたこと".into(),
        ),
        "call_log" => ("着信記録".into(), "原告".into(), "漏えいした電話番号に勧誘電話があったこと".into()),
        _ => ("その他の資料".into(), "原告".into(), "原告の被害の内容".into()),
    }
}

fn io_err(e: std::io::Error) -> AppError {
    AppError::caused_by("bundle", e)
}

async fn run(state: &AppState, id: Uuid, exporter: String, claimed: Option<&Claimed>) -> AppResult<()> {
    let db = state.db.conn();
    let job = export::Entity::find_by_id(id).one(db).await?.ok_or(AppError::NotFound)?;
    set_progress(state, id, export::Status::Running, 1).await?;
    let round = filing_round::Entity::find_by_id(job.round_id).one(db).await?.ok_or(AppError::NotFound)?;
    let case = crate::cases::service::by_id(db, round.case_id).await?;
    let defendant = case.catalogue.defendant.get(crate::i18n::Lang::Ja).to_string();
    let policy =
        super::service::latest_policy_row(state, round.id).await?.ok_or(AppError::WrongState("round_has_no_policy"))?;
    let members = round_member::Entity::find()
        .filter(round_member::Column::RoundId.eq(round.id))
        .order_by_asc(round_member::Column::PlaintiffNumber)
        .all(db)
        .await?;

    let began = std::time::Instant::now();
    // Claims in plaintiff-number order (each once), and their files.
    let mut claim_order: Vec<Uuid> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for m in &members {
        if seen.insert(m.claim_id) {
            claim_order.push(m.claim_id);
        }
    }
    let in_round = round_claims(round.id);
    let claims: HashMap<Uuid, claim::Model> = claim::Entity::find()
        .filter(claim::Column::Id.in_subquery(in_round.clone()))
        .all(db)
        .await?
        .into_iter()
        .map(|c| (c.id, c))
        .collect();
    let claims = std::sync::Arc::new(claims);
    let mut evidence_of = by_claim(
        evidence::Entity::find()
            .filter(evidence::Column::ClaimId.in_subquery(in_round))
            .order_by_asc(evidence::Column::CreatedAt)
            .all(db)
            .await?,
        |e| e.claim_id,
    );

    // Exhibits: each claim's files in plaintiff order, numbered 甲第1号証, 甲第2号証, …
    let mut exhibits = Vec::new();
    let mut files: Vec<(evidence::Model, &claim::Model)> = Vec::new();
    for claim_id in &claim_order {
        let model = claims.get(claim_id).ok_or(AppError::NotFound)?;
        for row in evidence_of.remove(claim_id).unwrap_or_default() {
            let (title, author, purpose) = kind_text(&row.kind, &defendant);
            exhibits.push(Exhibit {
                number: exhibits.len() as u32 + 1,
                title,
                original_or_copy: "写し".into(),
                author,
                date: Some(crate::today_of(row.created_at)),
                purpose,
                evidence_id: row.id,
                extension: SniffedType::extension(&row.content_type).to_string(),
            });
            files.push((row, model));
        }
    }
    // The party list is decrypted in a task of its own while the evidence
    // streams into the archive; its entries follow the evidence.
    let parties_task = rocket::tokio::spawn(parties_of(
        state.db.clone(),
        state.keys.clone(),
        claims.clone(),
        members,
        (round.id, round.case_id, round.filing_date),
    ));
    set_progress(state, id, export::Status::Running, 5).await?;
    tracing::info!(export = %id, exhibits = exhibits.len(), read_s = began.elapsed().as_secs_f64(), "bundle: files listed");

    let info = RoundInfo {
        case: case.model.slug.clone(),
        number: round.number,
        name: round.name.clone(),
        court: round.court.clone(),
        filing_date: round.filing_date,
        policy_version: policy.version,
        policy_sha256: policy.sha256.clone(),
        result_sha256: round.result_sha256.clone().unwrap_or_default(),
    };

    // Stages run at once through bounded channels (memory stays flat):
    // tasks open and decrypt evidence files a few ahead; this task feeds
    // them to the ZIP writer, a blocking thread that also hashes the whole
    // archive and seals it chunk by chunk; this task writes the sealed
    // batches to the store.
    let key = DataKey::generate();
    let storage_key = Uuid::new_v4().simple().to_string();
    let mut out = state.store.writer(&storage_key).await?;
    let (tx, mut rx) = rocket::tokio::sync::mpsc::channel::<Piece>(8);
    let (plain_tx, plain_rx) = std::sync::mpsc::sync_channel::<Vec<u8>>(2);
    let (plain_spent_tx, plain_spent_rx) = std::sync::mpsc::channel::<Vec<u8>>();
    let (sealed_tx, mut sealed_rx) = rocket::tokio::sync::mpsc::channel::<Vec<u8>>(4);
    let (spent_tx, spent_rx) = std::sync::mpsc::channel::<Vec<u8>>();
    let clock = state.clock.clone();
    let zipper = rocket::tokio::task::spawn_blocking(move || -> std::io::Result<(String, u64)> {
        let mut bundle = BundleWriter::streaming(HashingSink::new(plain_tx, plain_spent_rx));
        while let Some(piece) = rx.blocking_recv() {
            match piece {
                Piece::Parties(parties) => {
                    bundle.party_list_xlsx(&parties)?;
                    bundle.party_list_csv(&parties)?;
                    bundle.claim_list_csv(&parties)?;
                }
                Piece::Exhibits(exhibits) => bundle.evidence_index_csv(&exhibits)?,
                Piece::Start(name, deflate) => bundle.start(&name, deflate)?,
                Piece::Known(name, sha256, size) => bundle.start_known(&name, &sha256, size)?,
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
    });
    let seal_key = zeroize::Zeroizing::new(*key.bytes());
    let sealer = rocket::tokio::task::spawn_blocking(move || -> std::io::Result<()> {
        let mut sealing = SealingWriter::new(&seal_key, sealed_tx, spent_rx);
        while let Ok(batch) = plain_rx.recv() {
            std::io::Write::write_all(&mut sealing, &batch)?;
            // Back to the ZIP side for reuse (dropped if it has finished).
            let _ = plain_spent_tx.send(batch);
        }
        sealing.finish()
    });
    let produced = async {
        let send = |piece| async { tx.send(piece).await.map_err(|_| AppError::internal("the bundle writer stopped")) };
        let total = files.len().max(1);
        let mut shown = std::time::Instant::now();
        // Files are opened and their first chunks decrypted a few files
        // ahead, as tasks of their own (in parallel, and the ZIP writer
        // never waits for a file to open); memory stays within
        // PREFETCH_FILES × PREFETCH_BYTES.
        let mut queue = files.iter().map(|(row, model)| {
            let (store, keys, row, model) = (state.store.clone(), state.keys.clone(), row.clone(), (*model).clone());
            rocket::tokio::spawn(async move { Prefetched::open(store, keys, row, model).await })
        });
        let mut ahead: std::collections::VecDeque<_> = queue.by_ref().take(PREFETCH_FILES).collect();
        for (i, ((row, _), exhibit)) in files.iter().zip(&exhibits).enumerate() {
            let next = ahead.pop_front().ok_or_else(|| AppError::internal("prefetch"))?;
            ahead.extend(queue.next());
            let Prefetched { mut download, head, complete } =
                next.await.map_err(|e| AppError::caused_by("filing bundle", e))??;
            send(Piece::Known(exhibit.file_name(), row.sha256.clone(), row.size.max(0) as u64)).await?;
            for chunk in head {
                send(Piece::Data(chunk)).await?;
            }
            if !complete {
                while let Some(chunk) = download.next_chunk().await? {
                    send(Piece::Data(chunk)).await?;
                }
            }
            // Progress twice a second, not per file: each update is a write.
            if shown.elapsed() >= std::time::Duration::from_millis(500) {
                set_progress(state, id, export::Status::Running, 5 + (90 * i / total) as i32).await?;
                shown = std::time::Instant::now();
            }
        }
        let (parties, retainers) = parties_task.await.map_err(|e| AppError::caused_by("filing bundle", e))??;
        tracing::info!(export = %id, plaintiffs = parties.len(), at_s = began.elapsed().as_secs_f64(), "bundle: evidence written, parties ready");
        let counts = Counts {
            plaintiffs: parties.len() as u64,
            exhibits: exhibits.len() as u64,
            retainers: retainers.len() as u64,
            total_yen: parties.iter().map(|p| p.amount_yen).sum(),
        };
        send(Piece::Parties(parties)).await?;
        send(Piece::Exhibits(exhibits.clone())).await?;
        for (number, record) in &retainers {
            let json = serde_json::to_vec_pretty(record).map_err(|e| AppError::caused_by("filing bundle", e))?;
            send(Piece::Start(format!("委任状/原告{number:05}.json"), true)).await?;
            send(Piece::Data(json)).await?;
        }
        send(Piece::Finish(Box::new((info, counts.clone(), exporter)))).await?;
        drop(tx);
        Ok::<Counts, AppError>(counts)
    };
    let stored = async {
        while let Some(bytes) = sealed_rx.recv().await {
            out.write(&bytes).await?;
            // Back for reuse (if the ZIP writer has already finished, dropped).
            let _ = spent_tx.send(bytes);
        }
        Ok::<(), AppError>(())
    };
    let (produced, stored) = rocket::tokio::join!(produced, stored);
    tracing::info!(export = %id, total_s = began.elapsed().as_secs_f64(), "bundle: written");
    let zipped = zipper.await.map_err(|e| AppError::caused_by("filing bundle", e))?;
    let sealed = sealer.await.map_err(|e| AppError::caused_by("filing bundle", e))?;
    let outcome = stored
        .and(produced)
        .and_then(|counts| Ok((counts, zipped.map_err(io_err)?)))
        .and_then(|done| sealed.map(|()| done).map_err(io_err));
    let (counts, (sha256, size)) = match outcome {
        Ok(done) => done,
        Err(e) => {
            out.abort().await;
            return Err(e);
        }
    };
    out.finish().await?;
    let txn = state.db.begin_write().await?;
    if let Some(claimed) = claimed {
        // Only the job's holder records the bundle (the update locks the
        // job's row until commit, so no other server can take it meanwhile).
        let lease = state.settings.background.job_lease;
        if !jobs::renew(&txn, claimed, state.clock.now(), lease).await? {
            return Err(AppError::WrongState("export_taken_over"));
        }
    }
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
    audit::append(
        &txn,
        &Actor::default(),
        Event::new("export.completed").subject("export", id).detail(
            serde_json::json!({"round": round.id, "sha256": sha256, "size": size, "plaintiffs": counts.plaintiffs}),
        ),
    )
    .await?;
    txn.commit().await?;
    Ok(())
}

/// How many evidence files are opened ahead of the ZIP writer, and how much
/// of each is decrypted ahead.
const PREFETCH_FILES: usize = 4;
const PREFETCH_BYTES: usize = 1 << 20;
/// The size of the writes into the store.
const STORE_BATCH: usize = 1 << 20;

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
        claim: claim::Model,
    ) -> AppResult<Self> {
        let mut download = crate::evidence::service::open_object(store.as_ref(), &keys, &row, &claim).await?;
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

/// The claims of a round's members (a subquery, so no list of ids is sent).
fn round_claims(round_id: Uuid) -> sea_orm::sea_query::SelectStatement {
    Query::select()
        .column(round_member::Column::ClaimId)
        .from(round_member::Entity)
        .and_where(round_member::Column::RoundId.eq(round_id))
        .to_owned()
}

fn by_claim<T>(rows: Vec<T>, claim_of: impl Fn(&T) -> Uuid) -> HashMap<Uuid, Vec<T>> {
    let mut out: HashMap<Uuid, Vec<T>> = HashMap::new();
    for row in rows {
        out.entry(claim_of(&row)).or_default().push(row);
    }
    out
}

type Retainers = Vec<(u32, serde_json::Value)>;

/// The party list and each plaintiff's retainer record, in plaintiff-number
/// order. The persons and signatures of the whole round are read in three
/// queries (not several per claim); each claim is decrypted once.
async fn parties_of(
    db: crate::db::Db,
    keys: Keyring,
    claims: std::sync::Arc<HashMap<Uuid, claim::Model>>,
    members: Vec<round_member::Model>,
    (round_id, case_id, filing_date): (Uuid, Uuid, chrono::NaiveDate),
) -> AppResult<(Vec<Party>, Retainers)> {
    let db = db.conn();
    let mut persons = by_claim(
        person::Entity::find()
            .filter(person::Column::ClaimId.in_subquery(round_claims(round_id)))
            .order_by_asc(person::Column::Position)
            .all(db)
            .await?,
        |p| p.claim_id,
    );
    let mut consents = by_claim(
        consent::Entity::find()
            .filter(consent::Column::ClaimId.in_subquery(round_claims(round_id)))
            .order_by_asc(consent::Column::SignedAt)
            .all(db)
            .await?,
        |c| c.claim_id,
    );
    let documents = crate::consent::service::all_versions(db, case_id).await?;
    let mut parties = Vec::with_capacity(members.len());
    let mut retainers = Vec::with_capacity(members.len());
    let mut current: Option<(Uuid, crate::claims::domain::Draft, Vec<crate::consent::service::Signature>)> = None;
    for m in &members {
        let model = claims.get(&m.claim_id).ok_or(AppError::NotFound)?;
        if current.as_ref().map(|c| c.0) != Some(m.claim_id) {
            let draft = assemble_draft(&keys, model, persons.remove(&m.claim_id).unwrap_or_default(), vec![])?;
            let rows = consents.remove(&m.claim_id).unwrap_or_default();
            let signatures = crate::consent::service::open_signatures(&keys, model, &documents, rows)?;
            current = Some((m.claim_id, draft, signatures));
        }
        let Some((_, draft, signatures)) = current.as_ref() else { continue };
        let Some(person) = draft.persons.get(m.position as usize) else { continue };
        let name = person.display_name();
        let address = draft
            .address
            .as_ref()
            .map(|a| {
                let line2 = a.line2.as_deref().unwrap_or("");
                format!("〒{} {}{}{} {}", a.postal_code.display(), a.prefecture.as_str(), a.city, a.line1, line2)
            })
            .unwrap_or_default()
            .trim()
            .to_string();
        let guardian = if person.birth_date.is_minor_on(filing_date) {
            draft.claimant().map(|c| format!("親権者 {}", c.display_name()))
        } else {
            None
        };
        let retainer: Vec<&crate::consent::service::Signature> = signatures
            .iter()
            .filter(|s| s.kind == crate::consent::domain::DocumentKind::Retainer && s.subject_name == name)
            .collect();
        retainers.push((
            m.plaintiff_number as u32,
            serde_json::json!({"plaintiff_number": m.plaintiff_number, "claim": model.number, "signatures": retainer}),
        ));
        parties.push(Party {
            plaintiff_number: m.plaintiff_number as u32,
            name,
            address,
            legal_representative: guardian,
            tier: m.tier.clone(),
            amount_yen: m.amount_yen.max(0) as u64,
        });
    }
    Ok((parties, retainers))
}

/// Where the ZIP writer writes: hashes the archive as it comes and hands it
/// to the sealing thread a megabyte at a time (buffers come back for reuse:
/// a fresh megabyte would be a fresh mapping from the allocator each time).
struct HashingSink {
    hasher: Sha256,
    size: u64,
    batch: Vec<u8>,
    tx: std::sync::mpsc::SyncSender<Vec<u8>>,
    spent: std::sync::mpsc::Receiver<Vec<u8>>,
}

fn batch_buffer(spent: &std::sync::mpsc::Receiver<Vec<u8>>) -> Vec<u8> {
    let mut buf = spent.try_recv().unwrap_or_else(|_| Vec::with_capacity(STORE_BATCH + CHUNK + TAG));
    buf.clear();
    buf
}

impl HashingSink {
    fn new(tx: std::sync::mpsc::SyncSender<Vec<u8>>, spent: std::sync::mpsc::Receiver<Vec<u8>>) -> Self {
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
    tx: rocket::tokio::sync::mpsc::Sender<Vec<u8>>,
    /// Batches the store writer has written, for reuse.
    spent: std::sync::mpsc::Receiver<Vec<u8>>,
}

impl SealingWriter {
    fn new(
        key: &[u8; 32],
        tx: rocket::tokio::sync::mpsc::Sender<Vec<u8>>,
        spent: std::sync::mpsc::Receiver<Vec<u8>>,
    ) -> Self {
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

/// The bundle, decrypted as it streams. Only after the administrator
/// re-entered their password in this session (S5); audited.
pub async fn download(state: &AppState, user: &CurrentUser, id: Uuid) -> AppResult<Download> {
    user.require(Role::Admin)?;
    access::require_staff(user)?;
    if !crate::auth::service::freshly_reauthenticated(user, state.clock.now()) {
        return Err(AppError::ReauthenticationRequired);
    }
    let job = export::Entity::find_by_id(id).one(state.db.conn()).await?.ok_or(AppError::NotFound)?;
    if job.status == export::Status::Erased {
        return Err(AppError::WrongState("export_erased"));
    }
    let (Some(storage_key), Some(wrapped), Some(size)) = (&job.storage_key, &job.wrapped_key, job.size) else {
        return Err(AppError::WrongState("export_not_ready"));
    };
    let key = state.keys.unwrap_data_key(wrapped, &id)?;
    let round = filing_round::Entity::find_by_id(job.round_id).one(state.db.conn()).await?.ok_or(AppError::NotFound)?;
    // Capped like every read of personal data, and shown in the access log
    // of each claimant the bundle holds.
    let event = Event::new(CappedRead::BundleDownload.action())
        .subject("export", id)
        .detail(serde_json::json!({"round": job.round_id}));
    access::record_capped(state, user, CappedRead::BundleDownload, event).await?;
    let file_name = format!("filing-bundle-round{}-{}.zip", round.number, &id.simple().to_string()[..8]);
    Download::sealed_object(
        state.store.as_ref(),
        storage_key,
        key.bytes(),
        size as u64,
        file_name,
        "application/zip".into(),
    )
    .await
}
