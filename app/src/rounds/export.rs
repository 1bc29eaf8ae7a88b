//! Filing-bundle exports of a frozen round, as background jobs with
//! progress. The ZIP is streamed front to back through bounded channels:
//! evidence is decrypted chunk by chunk here, a blocking thread writes the
//! archive (CRC, per-file SHA-256), another hashes the whole archive and
//! seals it chunk by chunk with the bundle's own data key, and the sealed
//! chunks go straight into the evidence store (an S3 multipart upload on
//! S3). Memory stays flat whatever the round's size. Downloads need a
//! freshly re-entered password, are audited, and exports are capped per
//! hour with an alert past the cap.
use chrono::{DateTime, Utc};
use entities::{claim, evidence, export, filing_round, round_member};
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
use serde::Serialize;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::bundle::{BundleWriter, Counts, Exhibit, Party, RoundInfo};
use crate::audit::{self, Actor, Event};
use crate::auth::{CurrentUser, Role};
use crate::crypto::DataKey;
use crate::error::{AppError, AppResult};
use crate::evidence::domain::{ChunkSealer, SniffedType, CHUNK};
use crate::evidence::service::Download;
use crate::intake::service::{load_draft, Parts};
use crate::review::access::{self, Read as CappedRead};
use crate::AppState;

#[derive(Clone, Debug, Serialize)]
pub struct ExportView {
    pub id: Uuid,
    pub round_id: Uuid,
    pub status: String,
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
    let model = export::Model {
        id,
        round_id,
        status: "queued".into(),
        progress: 0,
        storage_key: None,
        wrapped_key: None,
        sha256: None,
        size: None,
        counts: None,
        error: None,
        requested_by: user.id,
        created_at: Utc::now(),
        finished_at: None,
    };
    export::Entity::insert(export::ActiveModel::from(model.clone())).exec_without_returning(state.db.conn()).await?;
    let worker = state.worker();
    let exporter = crate::auth::service::account_by_id(state, user.id).await?.email;
    rocket::tokio::spawn(async move {
        if let Err(e) = run(&worker, id, exporter).await {
            tracing::error!(export = %id, error = %e, "filing bundle export failed");
            let _ = fail(&worker, id, &e).await;
        }
    });
    Ok(model.into())
}

async fn fail(state: &AppState, id: Uuid, e: &AppError) -> AppResult<()> {
    // The message a person reads, never personal data.
    let why = e.message(crate::i18n::Lang::En);
    export::Entity::update_many()
        .col_expr(export::Column::Status, Expr::value("failed"))
        .col_expr(export::Column::Error, Expr::value(Some(why.chars().take(400).collect::<String>())))
        .col_expr(export::Column::FinishedAt, Expr::value(Some(Utc::now())))
        .filter(export::Column::Id.eq(id))
        .exec(state.db.conn())
        .await?;
    let txn = state.db.begin_write().await?;
    audit::append(&txn, &Actor::default(), Event::new("export.failed").subject("export", id)).await?;
    txn.commit().await?;
    Ok(())
}

async fn set_progress(state: &AppState, id: Uuid, status: &str, progress: i32) -> AppResult<()> {
    export::Entity::update_many()
        .col_expr(export::Column::Status, Expr::value(status))
        .col_expr(export::Column::Progress, Expr::value(progress.clamp(0, 100)))
        .filter(export::Column::Id.eq(id))
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
    AppError::Internal(format!("bundle: {e}"))
}

async fn run(state: &AppState, id: Uuid, exporter: String) -> AppResult<()> {
    let db = state.db.conn();
    let job = export::Entity::find_by_id(id).one(db).await?.ok_or(AppError::NotFound)?;
    set_progress(state, id, "running", 1).await?;
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
    // Parties, in plaintiff-number order; claims are read once each.
    let mut parties = Vec::with_capacity(members.len());
    let mut claim_order: Vec<Uuid> = Vec::new();
    let mut retainers: Vec<(u32, serde_json::Value)> = Vec::new();
    let mut current: Option<(
        Uuid,
        claim::Model,
        crate::intake::domain::Draft,
        Vec<crate::consent::service::Signature>,
    )> = None;
    for m in &members {
        if current.as_ref().map(|c| c.0) != Some(m.claim_id) {
            let model = claim::Entity::find_by_id(m.claim_id).one(db).await?.ok_or(AppError::NotFound)?;
            let draft = load_draft(db, &state.keys, &model, Parts::WithoutHarms).await?;
            let signatures = crate::consent::service::signatures(db, &state.keys, &model).await?;
            claim_order.push(m.claim_id);
            current = Some((m.claim_id, model, draft, signatures));
        }
        let Some((_, model, draft, signatures)) = current.as_ref() else { continue };
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
        let guardian = if person.birth_date.is_minor_on(round.filing_date) {
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

    // Exhibits: each claim's files in plaintiff order, numbered 甲第1号証, 甲第2号証, …
    let mut exhibits = Vec::new();
    let mut files: Vec<(evidence::Model, claim::Model)> = Vec::new();
    for claim_id in &claim_order {
        let model = claim::Entity::find_by_id(*claim_id).one(db).await?.ok_or(AppError::NotFound)?;
        let rows = evidence::Entity::find()
            .filter(evidence::Column::ClaimId.eq(*claim_id))
            .order_by_asc(evidence::Column::CreatedAt)
            .all(db)
            .await?;
        for row in rows {
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
            files.push((row, model.clone()));
        }
    }
    set_progress(state, id, "running", 5).await?;
    tracing::info!(export = %id, plaintiffs = parties.len(), exhibits = exhibits.len(), read_s = began.elapsed().as_secs_f64(), "bundle: claims read");

    let counts = Counts {
        plaintiffs: parties.len() as u64,
        exhibits: exhibits.len() as u64,
        retainers: retainers.len() as u64,
        total_yen: parties.iter().map(|p| p.amount_yen).sum(),
    };
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

    // Three stages run at once, each on its own thread, through bounded
    // channels (memory stays flat): this task decrypts evidence and feeds
    // the ZIP writer; the ZIP writer (CRC, per-file SHA-256) streams the
    // archive to the sealer; the sealer hashes the whole ZIP and seals it
    // chunk by chunk; this task writes the sealed chunks to the store.
    let key = DataKey::generate();
    let storage_key = Uuid::new_v4().simple().to_string();
    let mut out = state.store.writer(&storage_key).await?;
    let (tx, mut rx) = rocket::tokio::sync::mpsc::channel::<Piece>(8);
    let (plain_tx, plain_rx) = std::sync::mpsc::sync_channel::<Vec<u8>>(16);
    let (sealed_tx, mut sealed_rx) = rocket::tokio::sync::mpsc::channel::<Vec<u8>>(16);
    let zipper = rocket::tokio::task::spawn_blocking(move || -> std::io::Result<()> {
        let mut bundle = BundleWriter::streaming(std::io::BufWriter::with_capacity(CHUNK, ChannelWriter(plain_tx)));
        while let Some(piece) = rx.blocking_recv() {
            match piece {
                Piece::Parties(parties) => {
                    bundle.party_list_xlsx(&parties)?;
                    bundle.party_list_csv(&parties)?;
                    bundle.claim_list_csv(&parties)?;
                }
                Piece::Exhibits(exhibits) => bundle.evidence_index_csv(&exhibits)?,
                Piece::Start(name, deflate) => bundle.start(&name, deflate)?,
                Piece::Data(bytes) => bundle.write_chunk(&bytes)?,
                Piece::Finish(finish) => {
                    let (info, counts, exporter) = *finish;
                    let (out, _manifest) = bundle.finish(info, counts, exporter, Utc::now())?;
                    // Flush the last bytes; dropping the writer closes the channel.
                    out.into_inner().into_inner().map_err(|e| e.into_error())?;
                    return Ok(());
                }
            }
        }
        Err(std::io::Error::other("the bundle was not finished"))
    });
    let seal_key = zeroize::Zeroizing::new(*key.bytes());
    let sealer_task = rocket::tokio::task::spawn_blocking(move || -> AppResult<(String, u64)> {
        let mut sealer = ChunkSealer::new(&seal_key);
        let send = |bytes: Vec<u8>| {
            sealed_tx.blocking_send(bytes).map_err(|_| AppError::Internal("the store writer stopped".into()))
        };
        send(sealer.header().to_vec())?;
        let mut hasher = Sha256::new();
        let mut size = 0u64;
        let mut block: Vec<u8> = Vec::with_capacity(CHUNK);
        while let Ok(bytes) = plain_rx.recv() {
            hasher.update(&bytes);
            size += bytes.len() as u64;
            let mut rest = &bytes[..];
            while !rest.is_empty() {
                // A full block is sealed only once more data follows: the last one is sealed as last.
                if block.len() == CHUNK {
                    send(sealer.seal_next(&block)?)?;
                    block.clear();
                }
                let take = (CHUNK - block.len()).min(rest.len());
                block.extend_from_slice(&rest[..take]);
                rest = &rest[take..];
            }
        }
        send(sealer.seal_last(&block)?)?;
        Ok((hex::encode(hasher.finalize()), size))
    });
    let produced = async {
        let send =
            |piece| async { tx.send(piece).await.map_err(|_| AppError::Internal("the bundle writer stopped".into())) };
        send(Piece::Parties(parties)).await?;
        send(Piece::Exhibits(exhibits.clone())).await?;
        for (number, record) in &retainers {
            let json = serde_json::to_vec_pretty(record).map_err(|e| AppError::Internal(e.to_string()))?;
            send(Piece::Start(format!("委任状/原告{number:05}.json"), true)).await?;
            send(Piece::Data(json)).await?;
        }
        let total = files.len().max(1);
        for (i, ((row, model), exhibit)) in files.iter().zip(&exhibits).enumerate() {
            let mut download = crate::evidence::service::open_object(state, row, model).await?;
            send(Piece::Start(exhibit.file_name(), false)).await?;
            while let Some(chunk) = download.next_chunk().await? {
                send(Piece::Data(chunk)).await?;
            }
            if i % 50 == 0 {
                set_progress(state, id, "running", 5 + (90 * i / total) as i32).await?;
            }
        }
        send(Piece::Finish(Box::new((info, counts.clone(), exporter)))).await?;
        drop(tx);
        Ok::<(), AppError>(())
    };
    let stored = async {
        while let Some(bytes) = sealed_rx.recv().await {
            out.write(&bytes).await?;
        }
        Ok::<(), AppError>(())
    };
    let (produced, stored) = rocket::tokio::join!(produced, stored);
    tracing::info!(export = %id, total_s = began.elapsed().as_secs_f64(), "bundle: written");
    let zipped = zipper.await.map_err(|e| AppError::Internal(e.to_string()))?;
    let sealed = sealer_task.await.map_err(|e| AppError::Internal(e.to_string()))?;
    let outcome = produced.and(stored).and(zipped.map_err(io_err)).and(sealed);
    let (sha256, size) = match outcome {
        Ok(done) => done,
        Err(e) => {
            out.abort().await;
            return Err(e);
        }
    };
    out.finish().await?;
    let txn = state.db.begin_write().await?;
    export::Entity::update_many()
        .col_expr(export::Column::Status, Expr::value("done"))
        .col_expr(export::Column::Progress, Expr::value(100))
        .col_expr(export::Column::StorageKey, Expr::value(Some(storage_key)))
        .col_expr(export::Column::WrappedKey, Expr::value(Some(state.keys.wrap_data_key(&key, &id))))
        .col_expr(export::Column::Sha256, Expr::value(Some(sha256.clone())))
        .col_expr(export::Column::Size, Expr::value(Some(size as i64)))
        .col_expr(export::Column::Counts, Expr::value(Some(serde_json::to_string(&counts).unwrap_or_default())))
        .col_expr(export::Column::FinishedAt, Expr::value(Some(Utc::now())))
        .filter(export::Column::Id.eq(id))
        .exec(&*txn)
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

/// Hands what is written to the sealing thread.
struct ChannelWriter(std::sync::mpsc::SyncSender<Vec<u8>>);

impl std::io::Write for ChannelWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.send(buf.to_vec()).map_err(|_| std::io::Error::other("the sealer stopped"))?;
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
    if !crate::auth::service::freshly_reauthenticated(user) {
        return Err(AppError::ReauthenticationRequired);
    }
    let job = export::Entity::find_by_id(id).one(state.db.conn()).await?.ok_or(AppError::NotFound)?;
    let (Some(storage_key), Some(wrapped), Some(size)) = (&job.storage_key, &job.wrapped_key, job.size) else {
        return Err(AppError::WrongState("export_not_ready"));
    };
    let key = state.keys.unwrap_data_key(wrapped, &id)?;
    let round = filing_round::Entity::find_by_id(job.round_id).one(state.db.conn()).await?.ok_or(AppError::NotFound)?;
    let txn = state.db.begin_write().await?;
    audit::append(
        &txn,
        &user.actor(),
        Event::new("export.downloaded").subject("export", id).detail(serde_json::json!({"round": job.round_id})),
    )
    .await?;
    txn.commit().await?;
    let file_name = format!("filing-bundle-round{}-{}.zip", round.number, &id.simple().to_string()[..8]);
    Download::sealed_object(state, storage_key, key.bytes(), size as u64, file_name, "application/zip".into()).await
}
