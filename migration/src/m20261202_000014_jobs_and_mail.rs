//! Background work and mail that reach people.
//!
//! - `jobs`: one table for every piece of background work (mail delivery,
//!   filing-bundle exports, reminder sweeps). A job is claimed under a lease
//!   (`lease_owner`, `lease_until`) that its runner renews; a job whose lease
//!   ran out is taken over by another instance. `key` makes enqueueing
//!   idempotent (one delivery per outbox row, one sweep per time slot).
//! - `leases`: named leases for work that one instance at a time must do.
//! - `outbox`: the recipient's language, the template's parameters (rendered
//!   when sent), a unique `dedupe_key` so that a reminder is queued once per
//!   recipient and deadline, and the `Message-ID` it is sent with.
//! - `users`: the language mail is written in, and whether the person wants
//!   reminders.
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Jobs {
    Table,
    Id,
    Kind,
    Key,
    Payload,
    Status,
    Attempts,
    MaxAttempts,
    RunAt,
    LeaseOwner,
    LeaseUntil,
    Progress,
    Error,
    CreatedAt,
    FinishedAt,
}

#[derive(DeriveIden)]
enum Leases {
    Table,
    Name,
    Owner,
    Until,
    Term,
}

#[derive(DeriveIden)]
enum Outbox {
    Table,
    Language,
    Params,
    DedupeKey,
    MessageId,
}

#[derive(DeriveIden)]
enum Users {
    Table,
    Language,
    Reminders,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Jobs::Table)
                    .col(ColumnDef::new(Jobs::Id).uuid().not_null().primary_key())
                    .col(ColumnDef::new(Jobs::Kind).string_len(32).not_null())
                    .col(ColumnDef::new(Jobs::Key).string_len(200).not_null().unique_key())
                    .col(ColumnDef::new(Jobs::Payload).text().not_null())
                    .col(ColumnDef::new(Jobs::Status).string_len(16).not_null())
                    .col(ColumnDef::new(Jobs::Attempts).integer().not_null().default(0))
                    .col(ColumnDef::new(Jobs::MaxAttempts).integer().not_null())
                    .col(ColumnDef::new(Jobs::RunAt).timestamp_with_time_zone().not_null())
                    .col(ColumnDef::new(Jobs::LeaseOwner).string_len(64).null())
                    .col(ColumnDef::new(Jobs::LeaseUntil).timestamp_with_time_zone().null())
                    .col(ColumnDef::new(Jobs::Progress).integer().not_null().default(0))
                    .col(ColumnDef::new(Jobs::Error).string_len(400).null())
                    .col(ColumnDef::new(Jobs::CreatedAt).timestamp_with_time_zone().not_null())
                    .col(ColumnDef::new(Jobs::FinishedAt).timestamp_with_time_zone().null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create().name("idx_jobs_due").table(Jobs::Table).col(Jobs::Status).col(Jobs::RunAt).to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Leases::Table)
                    .col(ColumnDef::new(Leases::Name).string_len(64).not_null().primary_key())
                    .col(ColumnDef::new(Leases::Owner).string_len(64).not_null())
                    .col(ColumnDef::new(Leases::Until).timestamp_with_time_zone().not_null())
                    .col(ColumnDef::new(Leases::Term).big_integer().not_null())
                    .to_owned(),
            )
            .await?;
        for column in [
            ColumnDef::new(Outbox::Language).string_len(8).not_null().default("ja").to_owned(),
            ColumnDef::new(Outbox::Params).text().null().to_owned(),
            ColumnDef::new(Outbox::DedupeKey).string_len(200).null().to_owned(),
            ColumnDef::new(Outbox::MessageId).string_len(200).null().to_owned(),
        ] {
            let mut column = column;
            manager.alter_table(Table::alter().table(Outbox::Table).add_column(&mut column).to_owned()).await?;
        }
        manager
            .create_index(
                Index::create()
                    .name("idx_outbox_dedupe")
                    .table(Outbox::Table)
                    .col(Outbox::DedupeKey)
                    .unique()
                    .to_owned(),
            )
            .await?;
        for column in [
            ColumnDef::new(Users::Language).string_len(8).not_null().default("ja").to_owned(),
            ColumnDef::new(Users::Reminders).boolean().not_null().default(true).to_owned(),
        ] {
            let mut column = column;
            manager.alter_table(Table::alter().table(Users::Table).add_column(&mut column).to_owned()).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in [Users::Reminders, Users::Language] {
            manager.alter_table(Table::alter().table(Users::Table).drop_column(column).to_owned()).await?;
        }
        manager.drop_index(Index::drop().name("idx_outbox_dedupe").table(Outbox::Table).to_owned()).await?;
        for column in [Outbox::MessageId, Outbox::DedupeKey, Outbox::Params, Outbox::Language] {
            manager.alter_table(Table::alter().table(Outbox::Table).drop_column(column).to_owned()).await?;
        }
        manager.drop_table(Table::drop().table(Leases::Table).to_owned()).await?;
        manager.drop_table(Table::drop().table(Jobs::Table).to_owned()).await
    }
}
