//! Roster buckets. An import's values are kept as roster keys (the first 64
//! bits of each value's HMAC-SHA256 blind index), sorted and grouped by
//! their top bits into buckets of about 128 keys, one row per bucket and
//! kind. A lookup reads one small row by primary key and searches it.
//!
//! Before, every roster line was a row with four indexed hex digests: the
//! four index builds cost several times what loading the rows did. Now an
//! import writes one row per ~128 values and one small primary-key index.
//! An unrelated value shares a 64-bit key about once in 10^12 lookups of a
//! ten-million-line roster.
//!
//! Rows already imported are converted (the key is the digest's first 16 hex
//! digits read as a big-endian integer), so no import has to be run again.
use std::collections::BTreeMap;

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::prelude::Uuid;
use sea_orm_migration::sea_orm::{ConnectionTrait, DatabaseBackend, Statement};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum RosterBuckets {
    Table,
    ImportId,
    Kind,
    Bucket,
    Keys,
}

#[derive(DeriveIden)]
enum RosterImports {
    Table,
    BucketBits,
}

/// The old digest columns, in kind order (0 code, 1 identity, 2 phone, 3 postal code + kana).
const OLD_COLUMNS: [&str; 4] = ["code_hash", "identity_hash", "phone_hash", "postal_kana_hash"];

/// Converted imports keep 16-bit buckets (about 128 keys a bucket at eight
/// million values of a kind).
const CONVERTED_BITS: u32 = 16;

fn key_of_hex(hex: &str) -> Option<u64> {
    hex.get(..16).and_then(|h| u64::from_str_radix(h, 16).ok())
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(RosterBuckets::Table)
                    .col(ColumnDef::new(RosterBuckets::ImportId).uuid().not_null())
                    .col(ColumnDef::new(RosterBuckets::Kind).small_integer().not_null())
                    .col(ColumnDef::new(RosterBuckets::Bucket).integer().not_null())
                    .col(ColumnDef::new(RosterBuckets::Keys).blob().not_null())
                    .primary_key(
                        Index::create()
                            .col(RosterBuckets::ImportId)
                            .col(RosterBuckets::Kind)
                            .col(RosterBuckets::Bucket),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(RosterImports::Table)
                    .add_column(
                        ColumnDef::new(RosterImports::BucketBits)
                            .small_integer()
                            .not_null()
                            .default(CONVERTED_BITS as i32),
                    )
                    .to_owned(),
            )
            .await?;
        let db = manager.get_connection();
        if manager.get_database_backend() == DatabaseBackend::Postgres {
            // Set-based: each digest's first 16 hex digits as a bigint, grouped
            // by its top 16 bits; bytea order of big-endian keys is unsigned order.
            let keys: Vec<String> = OLD_COLUMNS
                .iter()
                .enumerate()
                .map(|(kind, column)| {
                    format!(
                        "SELECT import_id, {kind}::smallint AS kind, ('x' || left({column}, 16))::bit(64)::bigint AS key
                         FROM roster_entries WHERE {column} IS NOT NULL"
                    )
                })
                .collect();
            db.execute_unprepared(&format!(
                "INSERT INTO roster_buckets (import_id, kind, bucket, keys)
                 SELECT import_id, kind, ((key >> {shift}) & {mask})::int,
                        string_agg(int8send(key), ''::bytea ORDER BY int8send(key))
                 FROM ({union}) AS k GROUP BY 1, 2, 3",
                shift = 64 - CONVERTED_BITS,
                mask = (1u32 << CONVERTED_BITS) - 1,
                union = keys.join(" UNION ALL "),
            ))
            .await?;
            db.execute_unprepared("DROP TABLE roster_entries").await?;
            return Ok(());
        }
        // SQLite (the embedded default, small rosters): convert in memory.
        let rows = db
            .query_all_raw(Statement::from_string(
                DatabaseBackend::Sqlite,
                format!("SELECT import_id, {} FROM roster_entries", OLD_COLUMNS.join(", ")),
            ))
            .await?;
        let mut buckets: BTreeMap<(Uuid, i16, i32), Vec<u64>> = BTreeMap::new();
        for row in rows {
            let import_id: Uuid = row.try_get("", "import_id")?;
            for (kind, column) in OLD_COLUMNS.iter().enumerate() {
                let digest: Option<String> = row.try_get("", column)?;
                if let Some(key) = digest.as_deref().and_then(key_of_hex) {
                    let bucket = (key >> (64 - CONVERTED_BITS)) as i32;
                    buckets.entry((import_id, kind as i16, bucket)).or_default().push(key);
                }
            }
        }
        for ((import_id, kind, bucket), mut keys) in buckets {
            keys.sort_unstable();
            let bytes: Vec<u8> = keys.iter().flat_map(|k| k.to_be_bytes()).collect();
            let mut insert = Query::insert();
            insert
                .into_table(RosterBuckets::Table)
                .columns([RosterBuckets::ImportId, RosterBuckets::Kind, RosterBuckets::Bucket, RosterBuckets::Keys])
                .values([import_id.into(), kind.into(), bucket.into(), bytes.into()])
                .map_err(|e| DbErr::Custom(e.to_string()))?;
            db.execute(&insert).await?;
        }
        db.execute_unprepared("DROP TABLE roster_entries").await?;
        Ok(())
    }

    /// Going down restores the earlier table empty: its full digests cannot
    /// be rebuilt from 64-bit keys, so every import is marked failed and the
    /// roster has to be imported again rather than silently matching nothing.
    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        crate::m20261121_000006_roster::create_entries(manager).await?;
        let db = manager.get_connection();
        db.execute_unprepared("UPDATE roster_imports SET status = 'failed' WHERE status = 'complete'").await?;
        manager.drop_table(Table::drop().table(RosterBuckets::Table).to_owned()).await?;
        manager
            .alter_table(Table::alter().table(RosterImports::Table).drop_column(RosterImports::BucketBits).to_owned())
            .await
    }
}
