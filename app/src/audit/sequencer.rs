//! The sequencer: the one app server holding the `audit-sequencer` lease
//! numbers the events requests inserted unsequenced, adds them to the
//! Merkle tree (storing every node it completes) and signs a checkpoint, in
//! one transaction per batch. After each batch the checkpoint is also
//! written where the database cannot rewrite it with the log: a file under
//! the data directory and an object in the evidence store.
//!
//! Requests never wait for it: a committed audited write wakes it, and it
//! also looks every half second for events other servers committed. Should
//! its server die, another takes the lease when it runs out.
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use entities::{audit_checkpoint, audit_event, audit_node};
use rocket::tokio::io::AsyncWriteExt;
use rocket::tokio::sync::Notify;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DbErr, EntityTrait, ExprTrait, QueryFilter, QueryOrder, QuerySelect, Set,
};

use super::checkpoint::LogKey;
use super::service::leaf_entry;
use super::tree::{self, Builder, Hash, NodeId};
use crate::db::Db;
use crate::jobs::lease;

/// The lease that elects the sequencer.
const LEASE: &str = "audit-sequencer";
const LEASE_TTL: chrono::Duration = chrono::Duration::seconds(5);
/// Events numbered per transaction at most.
const BATCH: u64 = 2000;
/// Passes are this far apart at least, so a busy portal signs a few
/// checkpoints a second rather than one per request.
const SPACING: Duration = Duration::from_millis(200);
/// How often to look for events committed by other servers.
const POLL: Duration = Duration::from_millis(500);
/// A copy of the latest checkpoint kept outside the database (the
/// evidence store keeps one).
#[rocket::async_trait]
pub trait CheckpointCopy: Send + Sync {
    async fn put(&self, note: &str) -> Result<(), String>;
    async fn get(&self) -> Option<String>;
}

static WAKE: Notify = Notify::const_new();

/// Tell the sequencer there are events to number (called after a commit).
pub fn wake() {
    WAKE.notify_one();
}

/// What a pass did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pass {
    /// The tree now has `size` leaves, `sequenced` of them added by this pass.
    Done { sequenced: u64, size: u64 },
    /// Another server holds the lease.
    NotLeader,
}

pub struct Sequencer {
    db: Db,
    key: LogKey,
    owner: String,
    dir: PathBuf,
    copy: Arc<dyn CheckpointCopy>,
    running: rocket::tokio::sync::Mutex<()>,
}

impl Sequencer {
    pub fn new(db: Db, key: LogKey, data_dir: PathBuf, copy: Arc<dyn CheckpointCopy>) -> Self {
        let owner = format!("{}:{}", std::process::id(), crate::crypto::random_token(6));
        Self { db, key, owner, dir: data_dir.join("audit"), copy, running: Default::default() }
    }

    /// Verify the log against every checkpoint known: the database's, the
    /// file's, the copy's and those `given` (notes saved earlier).
    pub async fn verify(&self, given: &[String]) -> Result<super::TreeReport, DbErr> {
        let copy = self.copy.get().await;
        super::verify(self.db.conn(), &self.key, &self.dir, copy, given).await
    }

    pub fn key(&self) -> &LogKey {
        &self.key
    }

    /// Keep passes from running until the guard is dropped (the intake
    /// benchmark's trace of each request's trips leaves the sequencer's out).
    pub async fn hold(&self) -> rocket::tokio::sync::MutexGuard<'_, ()> {
        self.running.lock().await
    }

    /// Number every pending event, if this server is (or can become) the sequencer.
    pub async fn pass(&self) -> Result<Pass, DbErr> {
        let _one_at_a_time = self.running.lock().await;
        let mut sequenced = 0;
        loop {
            match self.batch().await? {
                Batch::NotLeader => return Ok(Pass::NotLeader),
                Batch::Added { added, size, note } => {
                    sequenced += added;
                    if added > 0 {
                        self.publish(&note, size).await;
                    }
                    if added < BATCH {
                        return Ok(Pass::Done { sequenced, size });
                    }
                }
            }
        }
    }

    async fn batch(&self) -> Result<Batch, DbErr> {
        let txn = self.db.begin_write().await?;
        let now = Utc::now();
        if lease::acquire(&txn, LEASE, &self.owner, now, LEASE_TTL).await?.is_none() {
            return Ok(Batch::NotLeader);
        }
        let pending = audit_event::Entity::find()
            .filter(audit_event::Column::Seq.is_null())
            .order_by_asc(audit_event::Column::Id)
            .limit(BATCH)
            .all(&txn)
            .await?;
        let size = tree_size(&txn).await?;
        let numbered: Option<Option<i64>> = audit_event::Entity::find()
            .select_only()
            .column_as(audit_event::Column::Seq.max(), "seq")
            .into_tuple()
            .one(&txn)
            .await?;
        let numbered = numbered.flatten().unwrap_or(0) as u64;
        if numbered != size {
            // Someone changed the log or its checkpoints: numbering more
            // would bury that. Events keep being recorded, unsequenced.
            return Err(DbErr::Custom(format!(
                "the audit log's numbered events end at {numbered} but its last checkpoint has {size}; \
                 run `app audit verify`"
            )));
        }
        if pending.is_empty() {
            txn.commit().await?;
            return Ok(Batch::Added { added: 0, size, note: String::new() });
        }
        let mut builder = resume(&txn, size).await?;
        let mut nodes = Vec::with_capacity(pending.len() * 2);
        let mut seqs = Vec::with_capacity(pending.len());
        for event in &pending {
            nodes.extend(builder.push(tree::leaf_hash(&leaf_entry(event))));
            seqs.push((event.id, builder.size() as i64));
        }
        for chunk in seqs.chunks(500) {
            let mut numbering = Expr::case(audit_event::Column::Id.eq(chunk[0].0), chunk[0].1);
            for (id, seq) in &chunk[1..] {
                numbering = numbering.case(audit_event::Column::Id.eq(*id), *seq);
            }
            audit_event::Entity::update_many()
                .col_expr(audit_event::Column::Seq, Expr::expr(numbering.finally(Expr::null())))
                .filter(audit_event::Column::Id.is_in(chunk.iter().map(|(id, _)| *id)))
                .filter(audit_event::Column::Seq.is_null())
                .exec(&txn)
                .await?;
        }
        for chunk in nodes.chunks(1000) {
            audit_node::Entity::insert_many(chunk.iter().map(|(id, hash)| audit_node::ActiveModel {
                level: Set(i16::from(id.level)),
                idx: Set(id.idx as i64),
                hash: Set(hash.to_vec()),
            }))
            .exec_without_returning(&txn)
            .await?;
        }
        let (size, root) = (builder.size(), builder.root());
        let note = self.key.sign(size, &root, now);
        audit_checkpoint::Entity::insert(audit_checkpoint::ActiveModel {
            size: Set(size as i64),
            root: Set(root.to_vec()),
            at: Set(now),
            note: Set(note.clone()),
        })
        .exec_without_returning(&txn)
        .await?;
        txn.commit().await?;
        Ok(Batch::Added { added: pending.len() as u64, size, note })
    }

    /// Keep the checkpoint outside the database: the latest note in
    /// `audit/checkpoint` and in the store, and a line per checkpoint in
    /// `audit/checkpoints`. A failure here is logged, not fatal: the
    /// checkpoint is in the database and the next one follows.
    async fn publish(&self, note: &str, size: u64) {
        if let Err(e) = self.write_files(note, size).await {
            tracing::error!(error = %e, "could not write the audit checkpoint file");
        }
        if let Err(e) = self.copy.put(note).await {
            tracing::error!(error = %e, "could not store the audit checkpoint");
        }
    }

    async fn write_files(&self, note: &str, size: u64) -> std::io::Result<()> {
        rocket::tokio::fs::create_dir_all(&self.dir).await?;
        let latest = self.dir.join("checkpoint");
        let fresh = self.dir.join("checkpoint.new");
        let mut file = rocket::tokio::fs::File::create(&fresh).await?;
        file.write_all(note.as_bytes()).await?;
        file.sync_all().await?;
        rocket::tokio::fs::rename(&fresh, &latest).await?;
        let root = note.lines().nth(2).unwrap_or_default();
        let mut log =
            rocket::tokio::fs::OpenOptions::new().create(true).append(true).open(self.dir.join("checkpoints")).await?;
        log.write_all(format!("{size} {root}\n").as_bytes()).await?;
        log.sync_data().await
    }

    /// Run passes for as long as the server runs.
    pub fn spawn(self: Arc<Self>) {
        rocket::tokio::spawn(async move {
            loop {
                let _ = rocket::tokio::time::timeout(POLL, WAKE.notified()).await;
                if let Err(e) = self.pass().await {
                    tracing::warn!(error = %e, "audit sequencing pass failed");
                }
                rocket::tokio::time::sleep(SPACING).await;
            }
        });
    }
}

enum Batch {
    NotLeader,
    Added { added: u64, size: u64, note: String },
}

/// The tree's size: that of its latest checkpoint.
pub async fn tree_size(db: &impl ConnectionTrait) -> Result<u64, DbErr> {
    let max: Option<Option<i64>> = audit_checkpoint::Entity::find()
        .select_only()
        .column_as(audit_checkpoint::Column::Size.max(), "size")
        .into_tuple()
        .one(db)
        .await?;
    Ok(max.flatten().unwrap_or(0) as u64)
}

/// The stored nodes named, by id.
pub async fn nodes(
    db: &impl ConnectionTrait,
    ids: &[NodeId],
) -> Result<std::collections::HashMap<NodeId, Hash>, DbErr> {
    let mut found = std::collections::HashMap::new();
    for chunk in ids.chunks(200) {
        let mut any = Condition::any();
        for id in chunk {
            any = any
                .add(audit_node::Column::Level.eq(i16::from(id.level)).and(audit_node::Column::Idx.eq(id.idx as i64)));
        }
        for row in audit_node::Entity::find().filter(any).all(db).await? {
            if let Ok(hash) = <Hash>::try_from(row.hash.as_slice()) {
                found.insert(NodeId { level: row.level as u8, idx: row.idx as u64 }, hash);
            }
        }
    }
    Ok(found)
}

async fn resume(db: &impl ConnectionTrait, size: u64) -> Result<Builder, DbErr> {
    let ids = tree::frontier(size);
    let found = nodes(db, &ids).await?;
    let hashes: Option<Vec<Hash>> = ids.iter().map(|id| found.get(id).copied()).collect();
    hashes
        .and_then(|h| Builder::resume(size, h))
        .ok_or_else(|| DbErr::Custom(format!("the audit tree's nodes at size {size} are missing")))
}

/// The latest signed checkpoint, if the log has any.
pub async fn latest_checkpoint(db: &impl ConnectionTrait) -> Result<Option<audit_checkpoint::Model>, DbErr> {
    audit_checkpoint::Entity::find().order_by_desc(audit_checkpoint::Column::Size).one(db).await
}

/// A proof that an event is in the audit tree its latest checkpoint signs.
#[derive(Debug, serde::Serialize)]
pub struct Inclusion {
    pub seq: i64,
    /// The event's leaf hash (hex), recomputed from the event as stored.
    pub leaf_hash: String,
    pub tree_size: u64,
    /// The root hash the checkpoint signs (hex).
    pub root: String,
    /// The signed checkpoint note.
    pub checkpoint: String,
    /// The sibling hashes from the leaf up (RFC 9162 §2.1.3), hex.
    pub proof: Vec<String>,
}

/// The inclusion proof of the event numbered `seq` in the latest checkpoint;
/// `None` while the event is not yet in a checkpoint.
pub async fn inclusion(db: &impl ConnectionTrait, event: &audit_event::Model) -> Result<Option<Inclusion>, DbErr> {
    let Some(seq) = event.seq else {
        return Ok(None);
    };
    let Some(checkpoint) = latest_checkpoint(db).await? else {
        return Ok(None);
    };
    let (m, n) = (seq as u64 - 1, checkpoint.size as u64);
    if seq < 1 || m >= n {
        return Ok(None);
    }
    let found = nodes(db, &tree::proof_nodes(m, n)).await?;
    let Some(proof) = tree::inclusion_proof(m, n, |id| found.get(&id).copied()) else {
        return Ok(None);
    };
    Ok(Some(Inclusion {
        seq,
        leaf_hash: hex::encode(tree::leaf_hash(&leaf_entry(event))),
        tree_size: n,
        root: hex::encode(&checkpoint.root),
        checkpoint: checkpoint.note,
        proof: proof.iter().map(hex::encode).collect(),
    }))
}
