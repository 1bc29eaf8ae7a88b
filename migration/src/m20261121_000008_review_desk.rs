//! The review desk: which lawyers work on which case, the decisions taken on
//! a claim (a deficiency notice is a decision with a cure deadline), notes,
//! assignment, stored verification signals, an outbox of e-mails, alerts
//! raised by the per-user caps, and the case's auto-verification policy.
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum CaseMembers {
    Table,
    CaseId,
    UserId,
    AddedAt,
    AddedBy,
}

#[derive(DeriveIden)]
enum ReviewDecisions {
    Table,
    Id,
    ClaimId,
    DecidedBy,
    Decision,
    ReasonSealed,
    CureDeadline,
    CreatedAt,
    AnsweredAt,
}

#[derive(DeriveIden)]
enum ReviewNotes {
    Table,
    Id,
    ClaimId,
    AuthorId,
    BodySealed,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Outbox {
    Table,
    Id,
    RecipientId,
    Kind,
    ClaimId,
    Subject,
    Body,
    CreatedAt,
    SentAt,
}

#[derive(DeriveIden)]
enum Alerts {
    Table,
    Id,
    Kind,
    UserId,
    Detail,
    CreatedAt,
    AcknowledgedAt,
    AcknowledgedBy,
}

#[derive(DeriveIden)]
enum Claims {
    Table,
    CaseId,
    Status,
    AssigneeId,
    CureDeadline,
    Signals,
    SignalsAt,
}

#[derive(DeriveIden)]
enum Cases {
    Table,
    AutoVerify,
}

#[derive(DeriveIden)]
enum AuditEvents {
    Table,
    ActorId,
    Action,
    At,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(CaseMembers::Table)
                    .col(ColumnDef::new(CaseMembers::CaseId).uuid().not_null())
                    .col(ColumnDef::new(CaseMembers::UserId).uuid().not_null())
                    .col(ColumnDef::new(CaseMembers::AddedAt).timestamp_with_time_zone().not_null())
                    .col(ColumnDef::new(CaseMembers::AddedBy).uuid().null())
                    .primary_key(Index::create().col(CaseMembers::CaseId).col(CaseMembers::UserId))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(ReviewDecisions::Table)
                    .col(ColumnDef::new(ReviewDecisions::Id).uuid().not_null().primary_key())
                    .col(ColumnDef::new(ReviewDecisions::ClaimId).uuid().not_null())
                    // NULL when the system decided (the case's auto-verification policy).
                    .col(ColumnDef::new(ReviewDecisions::DecidedBy).uuid().null())
                    .col(ColumnDef::new(ReviewDecisions::Decision).string_len(16).not_null())
                    // The reason may name people: sealed with the claim's data key.
                    .col(ColumnDef::new(ReviewDecisions::ReasonSealed).binary().null())
                    .col(ColumnDef::new(ReviewDecisions::CureDeadline).date().null())
                    .col(ColumnDef::new(ReviewDecisions::CreatedAt).timestamp_with_time_zone().not_null())
                    .col(ColumnDef::new(ReviewDecisions::AnsweredAt).timestamp_with_time_zone().null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_review_decisions_claim")
                    .table(ReviewDecisions::Table)
                    .col(ReviewDecisions::ClaimId)
                    .col(ReviewDecisions::CreatedAt)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(ReviewNotes::Table)
                    .col(ColumnDef::new(ReviewNotes::Id).uuid().not_null().primary_key())
                    .col(ColumnDef::new(ReviewNotes::ClaimId).uuid().not_null())
                    .col(ColumnDef::new(ReviewNotes::AuthorId).uuid().not_null())
                    .col(ColumnDef::new(ReviewNotes::BodySealed).binary().not_null())
                    .col(ColumnDef::new(ReviewNotes::CreatedAt).timestamp_with_time_zone().not_null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_review_notes_claim")
                    .table(ReviewNotes::Table)
                    .col(ReviewNotes::ClaimId)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Outbox::Table)
                    .col(ColumnDef::new(Outbox::Id).uuid().not_null().primary_key())
                    .col(ColumnDef::new(Outbox::RecipientId).uuid().not_null())
                    .col(ColumnDef::new(Outbox::Kind).string_len(48).not_null())
                    .col(ColumnDef::new(Outbox::ClaimId).uuid().null())
                    // No personal data: the claim number and where to sign in.
                    .col(ColumnDef::new(Outbox::Subject).string_len(200).not_null())
                    .col(ColumnDef::new(Outbox::Body).text().not_null())
                    .col(ColumnDef::new(Outbox::CreatedAt).timestamp_with_time_zone().not_null())
                    .col(ColumnDef::new(Outbox::SentAt).timestamp_with_time_zone().null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Alerts::Table)
                    .col(ColumnDef::new(Alerts::Id).uuid().not_null().primary_key())
                    .col(ColumnDef::new(Alerts::Kind).string_len(48).not_null())
                    .col(ColumnDef::new(Alerts::UserId).uuid().null())
                    .col(ColumnDef::new(Alerts::Detail).text().not_null())
                    .col(ColumnDef::new(Alerts::CreatedAt).timestamp_with_time_zone().not_null())
                    .col(ColumnDef::new(Alerts::AcknowledgedAt).timestamp_with_time_zone().null())
                    .col(ColumnDef::new(Alerts::AcknowledgedBy).uuid().null())
                    .to_owned(),
            )
            .await?;
        // SQLite takes one change per ALTER TABLE.
        for column in [
            ColumnDef::new(Claims::AssigneeId).uuid().null().to_owned(),
            ColumnDef::new(Claims::CureDeadline).date().null().to_owned(),
            // ",kind,kind," of the last computed signals, for filtering the queue.
            ColumnDef::new(Claims::Signals).string_len(400).null().to_owned(),
            ColumnDef::new(Claims::SignalsAt).timestamp_with_time_zone().null().to_owned(),
        ] {
            manager.alter_table(Table::alter().table(Claims::Table).add_column(column).to_owned()).await?;
        }
        manager
            .alter_table(
                Table::alter()
                    .table(Cases::Table)
                    .add_column(ColumnDef::new(Cases::AutoVerify).boolean().not_null().default(false))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_claims_case_status")
                    .table(Claims::Table)
                    .col(Claims::CaseId)
                    .col(Claims::Status)
                    .to_owned(),
            )
            .await?;
        // The per-user hourly caps count a user's recent reads.
        manager
            .create_index(
                Index::create()
                    .name("ix_audit_actor_action_at")
                    .table(AuditEvents::Table)
                    .col(AuditEvents::ActorId)
                    .col(AuditEvents::Action)
                    .col(AuditEvents::At)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_index(Index::drop().name("ix_audit_actor_action_at").table(AuditEvents::Table).to_owned()).await?;
        manager.drop_index(Index::drop().name("ix_claims_case_status").table(Claims::Table).to_owned()).await?;
        manager.alter_table(Table::alter().table(Cases::Table).drop_column(Cases::AutoVerify).to_owned()).await?;
        for column in [Claims::SignalsAt, Claims::Signals, Claims::CureDeadline, Claims::AssigneeId] {
            manager.alter_table(Table::alter().table(Claims::Table).drop_column(column).to_owned()).await?;
        }
        manager.drop_table(Table::drop().table(Alerts::Table).to_owned()).await?;
        manager.drop_table(Table::drop().table(Outbox::Table).to_owned()).await?;
        manager.drop_table(Table::drop().table(ReviewNotes::Table).to_owned()).await?;
        manager.drop_table(Table::drop().table(ReviewDecisions::Table).to_owned()).await?;
        manager.drop_table(Table::drop().table(CaseMembers::Table).to_owned()).await?;
        Ok(())
    }
}
