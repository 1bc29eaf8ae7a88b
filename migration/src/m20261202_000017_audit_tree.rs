//! The audit log becomes a Merkle tree sequenced in batches (RFC 9162):
//! a request inserts its events unsequenced (`seq` NULL) with the change
//! they record, and one sequencer numbers them, stores the tree's nodes and
//! signs a checkpoint. No write waits on a chain head any more.
//!
//! Up moves the hash-chained events into the new table in their order (the
//! old `seq` becomes the row id, `seq` is left for the sequencer, which
//! builds the tree over them first). Down rebuilds the chain: sequenced
//! events in their order, then unsequenced ones, each hash recomputed.
use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::prelude::{DateTimeUtc, Uuid};
use sea_orm_migration::sea_orm::{ConnectionTrait, DatabaseBackend, Statement};
use sha2::{Digest, Sha256};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum AuditEvents {
    Table,
    Id,
    Seq,
    At,
    ActorId,
    ActorRole,
    Action,
    SubjectType,
    SubjectId,
    OwnerId,
    Ip,
    Detail,
}

#[derive(DeriveIden)]
enum AuditNodes {
    Table,
    Level,
    Idx,
    Hash,
}

#[derive(DeriveIden)]
enum AuditCheckpoints {
    Table,
    Size,
    Root,
    At,
    Note,
}

#[derive(DeriveIden)]
enum ReadCounters {
    Table,
    UserId,
    Kind,
    N,
}

const FIELDS: &str = "at, actor_id, actor_role, action, subject_type, subject_id, owner_id, ip, detail";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        db.execute_unprepared("ALTER TABLE audit_events RENAME TO audit_chain_old").await?;
        // The old table's indexes keep their names through the rename.
        for index in ["idx_audit_owner", "ix_audit_actor_action_at"] {
            db.execute_unprepared(&format!("DROP INDEX IF EXISTS {index}")).await?;
        }
        manager
            .create_table(
                Table::create()
                    .table(AuditEvents::Table)
                    .col(ColumnDef::new(AuditEvents::Id).big_integer().not_null().auto_increment().primary_key())
                    // Assigned by the sequencer; NULL until then.
                    .col(ColumnDef::new(AuditEvents::Seq).big_integer().null())
                    .col(ColumnDef::new(AuditEvents::At).timestamp_with_time_zone().not_null())
                    .col(ColumnDef::new(AuditEvents::ActorId).uuid().null())
                    .col(ColumnDef::new(AuditEvents::ActorRole).string_len(16).null())
                    .col(ColumnDef::new(AuditEvents::Action).string_len(64).not_null())
                    .col(ColumnDef::new(AuditEvents::SubjectType).string_len(32).null())
                    .col(ColumnDef::new(AuditEvents::SubjectId).uuid().null())
                    .col(ColumnDef::new(AuditEvents::OwnerId).uuid().null())
                    .col(ColumnDef::new(AuditEvents::Ip).string_len(64).null())
                    .col(ColumnDef::new(AuditEvents::Detail).text().not_null())
                    .to_owned(),
            )
            .await?;
        db.execute_unprepared(&format!(
            "INSERT INTO audit_events (id, {FIELDS}) SELECT seq, {FIELDS} FROM audit_chain_old ORDER BY seq"
        ))
        .await?;
        db.execute_unprepared("DROP TABLE audit_chain_old").await?;
        if db.get_database_backend() == DatabaseBackend::Postgres {
            db.execute_unprepared(
                "SELECT setval(pg_get_serial_sequence('audit_events', 'id'), COALESCE((SELECT MAX(id) FROM audit_events), 0) + 1, false)",
            )
            .await?;
        }
        event_indexes(manager).await?;
        manager
            .create_table(
                Table::create()
                    .table(AuditNodes::Table)
                    // Level 0 holds the leaves; a node at level l covers 2^l leaves from idx * 2^l.
                    .col(ColumnDef::new(AuditNodes::Level).small_integer().not_null())
                    .col(ColumnDef::new(AuditNodes::Idx).big_integer().not_null())
                    .col(ColumnDef::new(AuditNodes::Hash).binary().not_null())
                    .primary_key(Index::create().col(AuditNodes::Level).col(AuditNodes::Idx))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(AuditCheckpoints::Table)
                    .col(ColumnDef::new(AuditCheckpoints::Size).big_integer().not_null().primary_key())
                    .col(ColumnDef::new(AuditCheckpoints::Root).binary().not_null())
                    .col(ColumnDef::new(AuditCheckpoints::At).timestamp_with_time_zone().not_null())
                    // The signed note (C2SP tlog-checkpoint).
                    .col(ColumnDef::new(AuditCheckpoints::Note).text().not_null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(ReadCounters::Table)
                    .col(ColumnDef::new(ReadCounters::UserId).uuid().not_null())
                    .col(ColumnDef::new(ReadCounters::Kind).string_len(64).not_null())
                    .col(ColumnDef::new(ReadCounters::N).big_integer().not_null())
                    .primary_key(Index::create().col(ReadCounters::UserId).col(ReadCounters::Kind))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in ["read_counters", "audit_checkpoints", "audit_nodes"] {
            manager.drop_table(Table::drop().table(Alias::new(table)).to_owned()).await?;
        }
        let db = manager.get_connection();
        db.execute_unprepared("ALTER TABLE audit_events RENAME TO audit_tree_old").await?;
        for index in [
            "ix_audit_events_owner",
            "ix_audit_events_actor_action_at",
            "ux_audit_events_seq",
            "ix_audit_events_unsequenced",
        ] {
            db.execute_unprepared(&format!("DROP INDEX IF EXISTS {index}")).await?;
        }
        chain_table(manager).await?;
        let backend = db.get_database_backend();
        let rows = db
            .query_all_raw(Statement::from_string(
                backend,
                format!(
                    "SELECT {FIELDS} FROM audit_tree_old \
                     ORDER BY CASE WHEN seq IS NULL THEN 1 ELSE 0 END, seq, id"
                ),
            ))
            .await?;
        let mut prev = "0".repeat(64);
        for (n, row) in rows.into_iter().enumerate() {
            let seq = n as i64 + 1;
            let at: DateTimeUtc = row.try_get("", "at")?;
            let actor_id: Option<Uuid> = row.try_get("", "actor_id")?;
            let actor_role: Option<String> = row.try_get("", "actor_role")?;
            let action: String = row.try_get("", "action")?;
            let subject_type: Option<String> = row.try_get("", "subject_type")?;
            let subject_id: Option<Uuid> = row.try_get("", "subject_id")?;
            let owner_id: Option<Uuid> = row.try_get("", "owner_id")?;
            let ip: Option<String> = row.try_get("", "ip")?;
            let detail: String = row.try_get("", "detail")?;
            let canonical = serde_json::json!([
                seq,
                at.timestamp_micros(),
                actor_id,
                actor_role,
                action,
                subject_type,
                subject_id,
                owner_id,
                ip,
                detail,
                prev
            ])
            .to_string();
            let hash = hex::encode(Sha256::digest(canonical.as_bytes()));
            let mut insert = Query::insert();
            insert
                .into_table(Alias::new("audit_events"))
                .columns(
                    [
                        "seq",
                        "at",
                        "actor_id",
                        "actor_role",
                        "action",
                        "subject_type",
                        "subject_id",
                        "owner_id",
                        "ip",
                        "detail",
                        "prev_hash",
                        "hash",
                    ]
                    .map(Alias::new),
                )
                .values([
                    seq.into(),
                    at.into(),
                    actor_id.into(),
                    actor_role.into(),
                    action.into(),
                    subject_type.into(),
                    subject_id.into(),
                    owner_id.into(),
                    ip.into(),
                    detail.into(),
                    prev.clone().into(),
                    hash.clone().into(),
                ])
                .map_err(|e| DbErr::Custom(e.to_string()))?;
            db.execute(&insert).await?;
            prev = hash;
        }
        db.execute_unprepared("DROP TABLE audit_tree_old").await?;
        owner_and_actor_indexes(manager).await
    }
}

/// The hash-chained table as it was before the tree.
async fn chain_table(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    let column = |name: &str| ColumnDef::new(Alias::new(name)).to_owned();
    manager
        .create_table(
            Table::create()
                .table(AuditEvents::Table)
                .col(column("seq").big_integer().not_null().primary_key())
                .col(column("at").timestamp_with_time_zone().not_null())
                .col(column("actor_id").uuid().null())
                .col(column("actor_role").string_len(16).null())
                .col(column("action").string_len(64).not_null())
                .col(column("subject_type").string_len(32).null())
                .col(column("subject_id").uuid().null())
                .col(column("owner_id").uuid().null())
                .col(column("ip").string_len(64).null())
                .col(column("detail").text().not_null())
                .col(column("prev_hash").string_len(64).not_null())
                .col(column("hash").string_len(64).not_null())
                .to_owned(),
        )
        .await
}

/// The chain table's indexes, as migrations 3 and 8 made them. Written as
/// plain SQL: sqlx caches prepared statements per connection by their text,
/// and a cached `CREATE INDEX` of the same text run again on another
/// connection after the schema changed can fail as if the index existed.
async fn owner_and_actor_indexes(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    let db = manager.get_connection();
    db.execute_unprepared("create index idx_audit_owner on audit_events (owner_id)").await?;
    db.execute_unprepared("create index ix_audit_actor_action_at on audit_events (actor_id, action, at)").await?;
    Ok(())
}

async fn event_indexes(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    let db = manager.get_connection();
    for sql in [
        // Whose data an event concerns: "who accessed my data".
        "create index ix_audit_events_owner on audit_events (owner_id)",
        // The per-user caps count a user's recent reads.
        "create index ix_audit_events_actor_action_at on audit_events (actor_id, action, at)",
        "create unique index ux_audit_events_seq on audit_events (seq)",
        // What the sequencer looks for: small, since events are sequenced within a second.
        "create index ix_audit_events_unsequenced on audit_events (id) where seq is null",
    ] {
        db.execute_unprepared(sql).await?;
    }
    Ok(())
}
