//! Filing-bundle exports (DB-backed jobs with progress) and the time a
//! session last re-entered its password (fresh re-authentication, S5).
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Exports {
    Table,
    Id,
    RoundId,
    Status,
    Progress,
    StorageKey,
    WrappedKey,
    Sha256,
    Size,
    Counts,
    Error,
    RequestedBy,
    CreatedAt,
    FinishedAt,
}

#[derive(DeriveIden)]
enum Sessions {
    Table,
    ReauthenticatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Exports::Table)
                    .col(ColumnDef::new(Exports::Id).uuid().not_null().primary_key())
                    .col(ColumnDef::new(Exports::RoundId).uuid().not_null())
                    .col(ColumnDef::new(Exports::Status).string_len(16).not_null())
                    .col(ColumnDef::new(Exports::Progress).integer().not_null().default(0))
                    .col(ColumnDef::new(Exports::StorageKey).string_len(64).null())
                    // The bundle's own data key, wrapped by the master key.
                    .col(ColumnDef::new(Exports::WrappedKey).binary().null())
                    .col(ColumnDef::new(Exports::Sha256).string_len(64).null())
                    .col(ColumnDef::new(Exports::Size).big_integer().null())
                    .col(ColumnDef::new(Exports::Counts).text().null())
                    .col(ColumnDef::new(Exports::Error).string_len(400).null())
                    .col(ColumnDef::new(Exports::RequestedBy).uuid().not_null())
                    .col(ColumnDef::new(Exports::CreatedAt).timestamp_with_time_zone().not_null())
                    .col(ColumnDef::new(Exports::FinishedAt).timestamp_with_time_zone().null())
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Sessions::Table)
                    .add_column(ColumnDef::new(Sessions::ReauthenticatedAt).timestamp_with_time_zone().null())
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(Table::alter().table(Sessions::Table).drop_column(Sessions::ReauthenticatedAt).to_owned())
            .await?;
        manager.drop_table(Table::drop().table(Exports::Table).to_owned()).await
    }
}
