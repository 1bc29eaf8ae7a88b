//! Checking the audit log: every sequenced event's leaf is recomputed and
//! the tree rebuilt from them in order, and the root at each checkpoint's
//! size is compared with that checkpoint, from the database, from the
//! file under the data directory, from the evidence store and from any
//! note an operator saved earlier. An edited event, a deleted one, a
//! renumbering or a cut-off tail each fail with the event's number.
use std::collections::BTreeMap;
use std::path::Path;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use entities::{audit_checkpoint, audit_event, audit_node};
use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect};
use serde::Serialize;

use super::checkpoint::LogKey;
use super::service::leaf_entry;
use super::tree::{self, Builder, Hash};

#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct TreeReport {
    pub ok: bool,
    /// Events verified, in order from the first.
    pub checked: i64,
    /// Events recorded but not yet sequenced (the sequencer takes them within a second).
    pub pending: u64,
    /// The largest checkpoint the log was checked against.
    pub checkpoint_size: u64,
    /// The root hash of the verified tree (hex).
    pub root: String,
    /// The first event that is wrong or missing.
    pub first_bad_seq: Option<i64>,
    pub reason: Option<String>,
}

/// Where a checkpoint was read from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Source {
    Database,
    File,
    Store,
    Given,
}

impl Source {
    fn label(self) -> &'static str {
        match self {
            Source::Database => "the database",
            Source::File => "the checkpoint file",
            Source::Store => "the evidence store's copy",
            Source::Given => "the checkpoint given",
        }
    }
}

/// Verify the log against every checkpoint known. `given` are notes saved
/// earlier by an operator (`app audit checkpoint`).
pub async fn verify(
    db: &impl ConnectionTrait,
    key: &LogKey,
    dir: &Path,
    copy: Option<String>,
    given: &[String],
) -> Result<TreeReport, DbErr> {
    let mut report = TreeReport {
        ok: true,
        checked: 0,
        pending: audit_event::Entity::find().filter(audit_event::Column::Seq.is_null()).count(db).await?,
        checkpoint_size: 0,
        root: hex::encode(tree::empty_root()),
        first_bad_seq: None,
        reason: None,
    };
    let mut checkpoints: BTreeMap<u64, Vec<(Hash, Source)>> = BTreeMap::new();
    let mut notes: Vec<(String, Source)> = given.iter().map(|n| (n.clone(), Source::Given)).collect();
    let stored = audit_checkpoint::Entity::find().order_by_asc(audit_checkpoint::Column::Size).all(db).await?;
    for row in &stored {
        if let Ok(root) = <Hash>::try_from(row.root.as_slice()) {
            checkpoints.entry(row.size as u64).or_default().push((root, Source::Database));
        }
    }
    if let Some(latest) = stored.last() {
        notes.push((latest.note.clone(), Source::Database));
    }
    if let Ok(note) = rocket::tokio::fs::read_to_string(dir.join("checkpoint")).await {
        notes.push((note, Source::File));
    }
    if let Some(note) = copy {
        notes.push((note, Source::Store));
    }
    for (note, source) in notes {
        match key.open(&note) {
            Ok(c) => checkpoints.entry(c.size).or_default().push((c.root, source)),
            Err(e) => {
                report.fail(None, format!("the checkpoint in {} is not valid: {e}", source.label()));
                return Ok(report);
            }
        }
    }
    if let Ok(lines) = rocket::tokio::fs::read_to_string(dir.join("checkpoints")).await {
        for line in lines.lines() {
            let parsed = line.split_once(' ').and_then(|(size, root)| {
                Some((size.parse::<u64>().ok()?, <Hash>::try_from(B64.decode(root).ok()?.as_slice()).ok()?))
            });
            if let Some((size, root)) = parsed {
                checkpoints.entry(size).or_default().push((root, Source::File));
            }
        }
    }
    report.checkpoint_size = checkpoints.keys().next_back().copied().unwrap_or(0);
    walk(db, &checkpoints, &mut report).await?;
    Ok(report)
}

impl TreeReport {
    fn fail(&mut self, seq: Option<u64>, reason: String) {
        self.ok = false;
        self.first_bad_seq = seq.map(|s| s as i64);
        self.reason = Some(reason);
    }
}

/// Rebuild the tree from the events in order, comparing as it goes.
async fn walk(
    db: &impl ConnectionTrait,
    checkpoints: &BTreeMap<u64, Vec<(Hash, Source)>>,
    report: &mut TreeReport,
) -> Result<(), DbErr> {
    const PAGE: u64 = 2000;
    let mut builder = Builder::default();
    let mut last_matched = 0u64;
    loop {
        let first = builder.size() + 1;
        let page = audit_event::Entity::find()
            .filter(audit_event::Column::Seq.gte(first as i64))
            .order_by_asc(audit_event::Column::Seq)
            .limit(PAGE)
            .all(db)
            .await?;
        let Some(last) = page.last().and_then(|e| e.seq) else {
            break;
        };
        let leaves: std::collections::HashMap<i64, Vec<u8>> = audit_node::Entity::find()
            .filter(audit_node::Column::Level.eq(0))
            .filter(audit_node::Column::Idx.between(first as i64 - 1, last - 1))
            .all(db)
            .await?
            .into_iter()
            .map(|n| (n.idx, n.hash))
            .collect();
        let n = page.len() as u64;
        for event in page {
            let expected = builder.size() + 1;
            if event.seq != Some(expected as i64) {
                report.fail(Some(expected), "missing event (sequence gap)".into());
                return Ok(());
            }
            let leaf = tree::leaf_hash(&leaf_entry(&event));
            if leaves.get(&(expected as i64 - 1)).map(Vec::as_slice) != Some(&leaf[..]) {
                report.fail(Some(expected), "event content altered".into());
                return Ok(());
            }
            builder.push(leaf);
            if let Some(known) = checkpoints.get(&builder.size()) {
                let root = builder.root();
                if let Some((_, source)) = known.iter().find(|(r, _)| *r != root) {
                    let reason = format!(
                        "the events up to {} do not give the root of the checkpoint of that size in {}",
                        builder.size(),
                        source.label()
                    );
                    report.fail(Some(last_matched + 1), reason);
                    return Ok(());
                }
                last_matched = builder.size();
            }
            report.checked = builder.size() as i64;
        }
        if n < PAGE {
            break;
        }
    }
    report.root = hex::encode(builder.root());
    if report.checkpoint_size > builder.size() {
        let reason = format!(
            "events missing from the end: the log holds {} events, its checkpoint {}",
            builder.size(),
            report.checkpoint_size
        );
        report.fail(Some(builder.size() + 1), reason);
    }
    Ok(())
}
