use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Evidence {
    Table,
    Id,
    ClaimId,
    Kind,
    ContentType,
    Size,
    Sha256,
    StorageKey,
    IdempotencyKey,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Claims {
    Table,
    Id,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Evidence::Table)
                    .col(ColumnDef::new(Evidence::Id).uuid().not_null().primary_key())
                    .col(ColumnDef::new(Evidence::ClaimId).uuid().not_null())
                    .col(ColumnDef::new(Evidence::Kind).string_len(16).not_null())
                    // Sniffed from the bytes, never taken from the client.
                    .col(ColumnDef::new(Evidence::ContentType).string_len(32).not_null())
                    .col(ColumnDef::new(Evidence::Size).big_integer().not_null())
                    .col(ColumnDef::new(Evidence::Sha256).string_len(64).not_null())
                    // Minted by the server; the object holds ciphertext only.
                    .col(ColumnDef::new(Evidence::StorageKey).string_len(64).not_null().unique_key())
                    .col(ColumnDef::new(Evidence::IdempotencyKey).string_len(64).null())
                    .col(ColumnDef::new(Evidence::CreatedAt).timestamp_with_time_zone().not_null())
                    .foreign_key(
                        ForeignKey::create()
                            .from(Evidence::Table, Evidence::ClaimId)
                            .to(Claims::Table, Claims::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("uq_evidence_claim_idempotency")
                    .table(Evidence::Table)
                    .col(Evidence::ClaimId)
                    .col(Evidence::IdempotencyKey)
                    .unique()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(Evidence::Table).to_owned()).await
    }
}
