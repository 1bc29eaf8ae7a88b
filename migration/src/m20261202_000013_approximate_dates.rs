//! Dates a claimant only remembers to the month (「2014年7月ごろ」): a harm's
//! date and the day the claimant learned of the leak keep their first day
//! in the date column, and a flag says the day is not known. Existing dates
//! are exact. Down drops the flags, so a month becomes its first day.
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Harms {
    Table,
    OccurredMonthOnly,
}

#[derive(DeriveIden)]
enum Claims {
    Table,
    LearnedMonthOnly,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Harms::Table)
                    .add_column(ColumnDef::new(Harms::OccurredMonthOnly).boolean().not_null().default(false))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Claims::Table)
                    .add_column(ColumnDef::new(Claims::LearnedMonthOnly).boolean().not_null().default(false))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(Table::alter().table(Claims::Table).drop_column(Claims::LearnedMonthOnly).to_owned())
            .await?;
        manager.alter_table(Table::alter().table(Harms::Table).drop_column(Harms::OccurredMonthOnly).to_owned()).await
    }
}
