use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Cases {
    Table,
    Id,
    Slug,
    ClaimPrefix,
    NextClaimSeq,
    Catalogue,
    IntakeOpensOn,
    IntakeClosesOn,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Claims {
    Table,
    Id,
    CaseId,
    ClaimantId,
    Number,
    Status,
    WrappedKey,
    Sealed,
    LeakedItems,
    Services,
    ApologyLetterReceived,
    RegistrationCodeIndex,
    ApologyOption,
    LearnedOfLeakOn,
    PossibleDuplicate,
    Version,
    SubmittedAt,
    WithdrawnAt,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Persons {
    Table,
    Id,
    ClaimId,
    Position,
    Relation,
    IsMinor,
    Sealed,
    IdentityIndex,
}

#[derive(DeriveIden)]
enum Harms {
    Table,
    Id,
    ClaimId,
    Position,
    Kind,
    OccurredOn,
    Sealed,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Cases::Table)
                    .col(ColumnDef::new(Cases::Id).uuid().not_null().primary_key())
                    .col(ColumnDef::new(Cases::Slug).string_len(64).not_null().unique_key())
                    .col(ColumnDef::new(Cases::ClaimPrefix).string_len(8).not_null())
                    .col(ColumnDef::new(Cases::NextClaimSeq).big_integer().not_null().default(1))
                    // Titles, leaked-item catalogue, services, apology options: configuration.
                    .col(ColumnDef::new(Cases::Catalogue).json_binary().not_null())
                    .col(ColumnDef::new(Cases::IntakeOpensOn).date().not_null())
                    .col(ColumnDef::new(Cases::IntakeClosesOn).date().null())
                    .col(ColumnDef::new(Cases::CreatedAt).timestamp_with_time_zone().not_null())
                    .col(ColumnDef::new(Cases::UpdatedAt).timestamp_with_time_zone().not_null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Claims::Table)
                    .col(ColumnDef::new(Claims::Id).uuid().not_null().primary_key())
                    .col(ColumnDef::new(Claims::CaseId).uuid().not_null())
                    .col(ColumnDef::new(Claims::ClaimantId).uuid().not_null())
                    .col(ColumnDef::new(Claims::Number).string_len(32).not_null().unique_key())
                    .col(ColumnDef::new(Claims::Status).string_len(16).not_null())
                    // The claim's data key, wrapped by the master key; NULL once erased.
                    .col(ColumnDef::new(Claims::WrappedKey).binary().null())
                    .col(ColumnDef::new(Claims::Sealed).binary().null())
                    .col(ColumnDef::new(Claims::LeakedItems).json_binary().not_null())
                    .col(ColumnDef::new(Claims::Services).json_binary().not_null())
                    .col(ColumnDef::new(Claims::ApologyLetterReceived).boolean().null())
                    .col(ColumnDef::new(Claims::RegistrationCodeIndex).string_len(64).null())
                    .col(ColumnDef::new(Claims::ApologyOption).string_len(32).null())
                    .col(ColumnDef::new(Claims::LearnedOfLeakOn).date().null())
                    .col(ColumnDef::new(Claims::PossibleDuplicate).boolean().not_null().default(false))
                    .col(ColumnDef::new(Claims::Version).integer().not_null().default(0))
                    .col(ColumnDef::new(Claims::SubmittedAt).timestamp_with_time_zone().null())
                    .col(ColumnDef::new(Claims::WithdrawnAt).timestamp_with_time_zone().null())
                    .col(ColumnDef::new(Claims::CreatedAt).timestamp_with_time_zone().not_null())
                    .col(ColumnDef::new(Claims::UpdatedAt).timestamp_with_time_zone().not_null())
                    .foreign_key(ForeignKey::create().from(Claims::Table, Claims::CaseId).to(Cases::Table, Cases::Id))
                    .foreign_key(
                        ForeignKey::create().from(Claims::Table, Claims::ClaimantId).to(Users::Table, Users::Id),
                    )
                    .to_owned(),
            )
            .await?;
        // One claim per claimant per case.
        manager
            .create_index(
                Index::create()
                    .name("uq_claims_case_claimant")
                    .table(Claims::Table)
                    .col(Claims::CaseId)
                    .col(Claims::ClaimantId)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_claims_case_status")
                    .table(Claims::Table)
                    .col(Claims::CaseId)
                    .col(Claims::Status)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Persons::Table)
                    .col(ColumnDef::new(Persons::Id).uuid().not_null().primary_key())
                    .col(ColumnDef::new(Persons::ClaimId).uuid().not_null())
                    .col(ColumnDef::new(Persons::Position).integer().not_null())
                    .col(ColumnDef::new(Persons::Relation).string_len(16).not_null())
                    .col(ColumnDef::new(Persons::IsMinor).boolean().not_null())
                    .col(ColumnDef::new(Persons::Sealed).binary().not_null())
                    // Blind index of normalised kana name + birth date.
                    .col(ColumnDef::new(Persons::IdentityIndex).string_len(64).not_null())
                    .foreign_key(
                        ForeignKey::create()
                            .from(Persons::Table, Persons::ClaimId)
                            .to(Claims::Table, Claims::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create().name("idx_persons_claim").table(Persons::Table).col(Persons::ClaimId).to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_persons_identity_index")
                    .table(Persons::Table)
                    .col(Persons::IdentityIndex)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Harms::Table)
                    .col(ColumnDef::new(Harms::Id).uuid().not_null().primary_key())
                    .col(ColumnDef::new(Harms::ClaimId).uuid().not_null())
                    .col(ColumnDef::new(Harms::Position).integer().not_null())
                    .col(ColumnDef::new(Harms::Kind).string_len(16).not_null())
                    .col(ColumnDef::new(Harms::OccurredOn).date().null())
                    .col(ColumnDef::new(Harms::Sealed).binary().not_null())
                    .foreign_key(
                        ForeignKey::create()
                            .from(Harms::Table, Harms::ClaimId)
                            .to(Claims::Table, Claims::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(Index::create().name("idx_harms_claim").table(Harms::Table).col(Harms::ClaimId).to_owned())
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(Harms::Table).to_owned()).await?;
        manager.drop_table(Table::drop().table(Persons::Table).to_owned()).await?;
        manager.drop_table(Table::drop().table(Claims::Table).to_owned()).await?;
        manager.drop_table(Table::drop().table(Cases::Table).to_owned()).await
    }
}
