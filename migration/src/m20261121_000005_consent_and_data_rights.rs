//! Versioned consent documents and signatures, notifications to the case's
//! lawyers, and the columns that data-subject rights need (correction,
//! erasure).
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum ConsentDocuments {
    Table,
    Id,
    CaseId,
    Kind,
    Version,
    Title,
    Body,
    Sha256,
    FeeTerms,
    PublishedAt,
    PublishedBy,
}

#[derive(DeriveIden)]
enum Consents {
    Table,
    Id,
    ClaimId,
    DocumentId,
    DocumentSha256,
    Capacity,
    SubjectIndex,
    Sealed,
    SignedAt,
}

#[derive(DeriveIden)]
enum Notifications {
    Table,
    Id,
    CaseId,
    Audience,
    Kind,
    ClaimId,
    CreatedAt,
    ReadAt,
}

#[derive(DeriveIden)]
enum Cases {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Claims {
    Table,
    Id,
    NeedsReverification,
    ErasedAt,
}

#[derive(DeriveIden)]
enum Users {
    Table,
    ErasedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(ConsentDocuments::Table)
                    .col(ColumnDef::new(ConsentDocuments::Id).uuid().not_null().primary_key())
                    .col(ColumnDef::new(ConsentDocuments::CaseId).uuid().not_null())
                    .col(ColumnDef::new(ConsentDocuments::Kind).string_len(16).not_null())
                    .col(ColumnDef::new(ConsentDocuments::Version).integer().not_null())
                    .col(ColumnDef::new(ConsentDocuments::Title).string_len(200).not_null())
                    .col(ColumnDef::new(ConsentDocuments::Body).text().not_null())
                    // SHA-256 of the body as published (UTF-8, LF line endings).
                    .col(ColumnDef::new(ConsentDocuments::Sha256).string_len(64).not_null())
                    .col(ColumnDef::new(ConsentDocuments::FeeTerms).json().null())
                    .col(ColumnDef::new(ConsentDocuments::PublishedAt).timestamp_with_time_zone().not_null())
                    .col(ColumnDef::new(ConsentDocuments::PublishedBy).uuid().null())
                    .foreign_key(
                        ForeignKey::create()
                            .from(ConsentDocuments::Table, ConsentDocuments::CaseId)
                            .to(Cases::Table, Cases::Id),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("uq_consent_documents_case_kind_version")
                    .table(ConsentDocuments::Table)
                    .col(ConsentDocuments::CaseId)
                    .col(ConsentDocuments::Kind)
                    .col(ConsentDocuments::Version)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Consents::Table)
                    .col(ColumnDef::new(Consents::Id).uuid().not_null().primary_key())
                    .col(ColumnDef::new(Consents::ClaimId).uuid().not_null())
                    .col(ColumnDef::new(Consents::DocumentId).uuid().not_null())
                    .col(ColumnDef::new(Consents::DocumentSha256).string_len(64).not_null())
                    // `principal` (for oneself) or `guardian` (法定代理人 for a minor).
                    .col(ColumnDef::new(Consents::Capacity).string_len(16).not_null())
                    // The identity index of the person the signature covers.
                    .col(ColumnDef::new(Consents::SubjectIndex).string_len(64).not_null())
                    // Signer's typed name, the person's name, IP, user agent.
                    .col(ColumnDef::new(Consents::Sealed).binary().not_null())
                    .col(ColumnDef::new(Consents::SignedAt).timestamp_with_time_zone().not_null())
                    .foreign_key(
                        ForeignKey::create()
                            .from(Consents::Table, Consents::ClaimId)
                            .to(Claims::Table, Claims::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(Consents::Table, Consents::DocumentId)
                            .to(ConsentDocuments::Table, ConsentDocuments::Id),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create().name("ix_consents_claim").table(Consents::Table).col(Consents::ClaimId).to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Notifications::Table)
                    .col(ColumnDef::new(Notifications::Id).uuid().not_null().primary_key())
                    .col(ColumnDef::new(Notifications::CaseId).uuid().not_null())
                    .col(ColumnDef::new(Notifications::Audience).string_len(16).not_null())
                    .col(ColumnDef::new(Notifications::Kind).string_len(48).not_null())
                    .col(ColumnDef::new(Notifications::ClaimId).uuid().null())
                    .col(ColumnDef::new(Notifications::CreatedAt).timestamp_with_time_zone().not_null())
                    .col(ColumnDef::new(Notifications::ReadAt).timestamp_with_time_zone().null())
                    .to_owned(),
            )
            .await?;
        // SQLite takes one change per ALTER TABLE.
        manager
            .alter_table(
                Table::alter()
                    .table(Claims::Table)
                    .add_column(ColumnDef::new(Claims::NeedsReverification).boolean().not_null().default(false))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Claims::Table)
                    .add_column(ColumnDef::new(Claims::ErasedAt).timestamp_with_time_zone().null())
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Users::Table)
                    .add_column(ColumnDef::new(Users::ErasedAt).timestamp_with_time_zone().null())
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.alter_table(Table::alter().table(Users::Table).drop_column(Users::ErasedAt).to_owned()).await?;
        manager.alter_table(Table::alter().table(Claims::Table).drop_column(Claims::ErasedAt).to_owned()).await?;
        manager
            .alter_table(Table::alter().table(Claims::Table).drop_column(Claims::NeedsReverification).to_owned())
            .await?;
        manager.drop_table(Table::drop().table(Notifications::Table).to_owned()).await?;
        manager.drop_table(Table::drop().table(Consents::Table).to_owned()).await?;
        manager.drop_table(Table::drop().table(ConsentDocuments::Table).to_owned()).await
    }
}
