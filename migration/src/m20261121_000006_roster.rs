//! The defendant's notice roster, as keyed hashes only. Rows belong to an
//! import; only rows of a `complete` import are ever matched, so an import
//! is all-or-nothing to readers.
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum RosterImports {
    Table,
    Id,
    CaseId,
    Source,
    Status,
    RowsImported,
    RowsRejected,
    StartedAt,
    FinishedAt,
}

#[derive(DeriveIden)]
enum RosterEntries {
    Table,
    Id,
    ImportId,
    CodeHash,
    IdentityHash,
    PhoneHash,
    PostalKanaHash,
}

/// The roster's lookup indexes (name, column).
const ROSTER_INDEXES: [(&str, &str); 4] = [
    ("ix_roster_code", "code_hash"),
    ("ix_roster_identity", "identity_hash"),
    ("ix_roster_phone", "phone_hash"),
    ("ix_roster_postal_kana", "postal_kana_hash"),
];

#[derive(DeriveIden)]
enum Cases {
    Table,
    Id,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(RosterImports::Table)
                    .col(ColumnDef::new(RosterImports::Id).uuid().not_null().primary_key())
                    .col(ColumnDef::new(RosterImports::CaseId).uuid().not_null())
                    // The file's name only (never its content).
                    .col(ColumnDef::new(RosterImports::Source).string_len(200).not_null())
                    // running → complete | failed
                    .col(ColumnDef::new(RosterImports::Status).string_len(16).not_null())
                    .col(ColumnDef::new(RosterImports::RowsImported).big_integer().not_null().default(0))
                    .col(ColumnDef::new(RosterImports::RowsRejected).big_integer().not_null().default(0))
                    .col(ColumnDef::new(RosterImports::StartedAt).timestamp_with_time_zone().not_null())
                    .col(ColumnDef::new(RosterImports::FinishedAt).timestamp_with_time_zone().null())
                    .foreign_key(
                        ForeignKey::create()
                            .from(RosterImports::Table, RosterImports::CaseId)
                            .to(Cases::Table, Cases::Id),
                    )
                    .to_owned(),
            )
            .await?;
        create_entries(manager).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(RosterEntries::Table).to_owned()).await?;
        manager.drop_table(Table::drop().table(RosterImports::Table).to_owned()).await
    }
}

/// The roster's per-line table as this migration made it (one partition per
/// import on PostgreSQL); also what a later migration's `down` restores.
pub(crate) async fn create_entries(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    if manager.get_database_backend() == sea_orm_migration::sea_orm::DatabaseBackend::Postgres {
        // One partition per import: an import is bulk-loaded into its own
        // table, indexed once, then attached (or dropped if it failed).
        // Hex digests compare byte-wise ("C" collation). Rows are only ever
        // looked up by hash, so there is no primary-key index to maintain.
        let db = manager.get_connection();
        db.execute_unprepared(
            r#"CREATE TABLE roster_entries (
                id bigserial NOT NULL,
                import_id uuid NOT NULL,
                code_hash varchar(64) COLLATE "C",
                identity_hash varchar(64) COLLATE "C",
                phone_hash varchar(64) COLLATE "C",
                postal_kana_hash varchar(64) COLLATE "C"
            ) PARTITION BY LIST (import_id)"#,
        )
        .await?;
        for (name, column) in ROSTER_INDEXES {
            db.execute_unprepared(&format!("CREATE INDEX {name} ON roster_entries ({column})")).await?;
        }
        return Ok(());
    }
    manager
        .create_table(
            Table::create()
                .table(RosterEntries::Table)
                .col(ColumnDef::new(RosterEntries::Id).big_integer().not_null().auto_increment().primary_key())
                .col(ColumnDef::new(RosterEntries::ImportId).uuid().not_null())
                // HMAC-SHA256 (blind-index key) of normalised values, hex.
                .col(ColumnDef::new(RosterEntries::CodeHash).string_len(64).null())
                .col(ColumnDef::new(RosterEntries::IdentityHash).string_len(64).null())
                .col(ColumnDef::new(RosterEntries::PhoneHash).string_len(64).null())
                .col(ColumnDef::new(RosterEntries::PostalKanaHash).string_len(64).null())
                .to_owned(),
        )
        .await?;
    for (name, column) in ROSTER_INDEXES {
        manager
            .get_connection()
            .execute_unprepared(&format!("CREATE INDEX {name} ON roster_entries ({column})"))
            .await?;
    }
    manager
        .create_index(
            Index::create()
                .name("ix_roster_import")
                .table(RosterEntries::Table)
                .col(RosterEntries::ImportId)
                .to_owned(),
        )
        .await?;
    Ok(())
}
