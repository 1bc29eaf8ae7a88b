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
        for (name, col) in [
            ("ix_roster_code", RosterEntries::CodeHash),
            ("ix_roster_identity", RosterEntries::IdentityHash),
            ("ix_roster_phone", RosterEntries::PhoneHash),
            ("ix_roster_postal_kana", RosterEntries::PostalKanaHash),
            ("ix_roster_import", RosterEntries::ImportId),
        ] {
            manager.create_index(Index::create().name(name).table(RosterEntries::Table).col(col).to_owned()).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(RosterEntries::Table).to_owned()).await?;
        manager.drop_table(Table::drop().table(RosterImports::Table).to_owned()).await
    }
}
