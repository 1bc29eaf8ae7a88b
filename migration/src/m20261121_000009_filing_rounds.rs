//! Filing rounds: a case files in rounds (第1次, 第2次 … 提訴), each with a
//! versioned tier policy and, once frozen, its members with stable plaintiff
//! numbers (原告番号), tiers, amounts and reasons.
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum FilingRounds {
    Table,
    Id,
    CaseId,
    Number,
    Name,
    Court,
    CutOff,
    FilingDate,
    State,
    ResultSha256,
    CreatedAt,
    FrozenAt,
    FrozenBy,
}

#[derive(DeriveIden)]
enum TierPolicies {
    Table,
    Id,
    RoundId,
    Version,
    Body,
    Sha256,
    CreatedAt,
    CreatedBy,
}

#[derive(DeriveIden)]
enum RoundMembers {
    Table,
    RoundId,
    PlaintiffNumber,
    ClaimId,
    Position,
    Tier,
    AmountYen,
    Points,
    Reasons,
    LimitationEndedOn,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(FilingRounds::Table)
                    .col(ColumnDef::new(FilingRounds::Id).uuid().not_null().primary_key())
                    .col(ColumnDef::new(FilingRounds::CaseId).uuid().not_null())
                    .col(ColumnDef::new(FilingRounds::Number).integer().not_null())
                    .col(ColumnDef::new(FilingRounds::Name).string_len(100).not_null())
                    .col(ColumnDef::new(FilingRounds::Court).string_len(100).not_null())
                    .col(ColumnDef::new(FilingRounds::CutOff).date().not_null())
                    .col(ColumnDef::new(FilingRounds::FilingDate).date().not_null())
                    .col(ColumnDef::new(FilingRounds::State).string_len(16).not_null())
                    .col(ColumnDef::new(FilingRounds::ResultSha256).string_len(64).null())
                    .col(ColumnDef::new(FilingRounds::CreatedAt).timestamp_with_time_zone().not_null())
                    .col(ColumnDef::new(FilingRounds::FrozenAt).timestamp_with_time_zone().null())
                    .col(ColumnDef::new(FilingRounds::FrozenBy).uuid().null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ux_filing_rounds_case_number")
                    .table(FilingRounds::Table)
                    .col(FilingRounds::CaseId)
                    .col(FilingRounds::Number)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(TierPolicies::Table)
                    .col(ColumnDef::new(TierPolicies::Id).uuid().not_null().primary_key())
                    .col(ColumnDef::new(TierPolicies::RoundId).uuid().not_null())
                    .col(ColumnDef::new(TierPolicies::Version).integer().not_null())
                    // Canonical JSON of the validated policy; never changed once written.
                    .col(ColumnDef::new(TierPolicies::Body).text().not_null())
                    .col(ColumnDef::new(TierPolicies::Sha256).string_len(64).not_null())
                    .col(ColumnDef::new(TierPolicies::CreatedAt).timestamp_with_time_zone().not_null())
                    .col(ColumnDef::new(TierPolicies::CreatedBy).uuid().null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ux_tier_policies_round_version")
                    .table(TierPolicies::Table)
                    .col(TierPolicies::RoundId)
                    .col(TierPolicies::Version)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(RoundMembers::Table)
                    .col(ColumnDef::new(RoundMembers::RoundId).uuid().not_null())
                    .col(ColumnDef::new(RoundMembers::PlaintiffNumber).integer().not_null())
                    .col(ColumnDef::new(RoundMembers::ClaimId).uuid().not_null())
                    .col(ColumnDef::new(RoundMembers::Position).integer().not_null())
                    .col(ColumnDef::new(RoundMembers::Tier).string_len(40).not_null())
                    .col(ColumnDef::new(RoundMembers::AmountYen).big_integer().not_null())
                    .col(ColumnDef::new(RoundMembers::Points).integer().not_null())
                    .col(ColumnDef::new(RoundMembers::Reasons).text().not_null())
                    .col(ColumnDef::new(RoundMembers::LimitationEndedOn).date().null())
                    .primary_key(Index::create().col(RoundMembers::RoundId).col(RoundMembers::PlaintiffNumber))
                    .to_owned(),
            )
            .await?;
        // A person is a plaintiff in one round only.
        manager
            .create_index(
                Index::create()
                    .name("ux_round_members_person")
                    .table(RoundMembers::Table)
                    .col(RoundMembers::ClaimId)
                    .col(RoundMembers::Position)
                    .unique()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(RoundMembers::Table).to_owned()).await?;
        manager.drop_table(Table::drop().table(TierPolicies::Table).to_owned()).await?;
        manager.drop_table(Table::drop().table(FilingRounds::Table).to_owned()).await
    }
}
