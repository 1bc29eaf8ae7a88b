//! A claimant proves their e-mail address by a link sent to it before a
//! claim can be submitted. Accounts made before this (and staff accounts,
//! which administrators create) count as proven from their creation.
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Users {
    Table,
    EmailVerifiedAt,
    CreatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Users::Table)
                    .add_column(ColumnDef::new(Users::EmailVerifiedAt).timestamp_with_time_zone().null())
                    .to_owned(),
            )
            .await?;
        let backfill =
            Query::update().table(Users::Table).value(Users::EmailVerifiedAt, Expr::col(Users::CreatedAt)).to_owned();
        manager.exec_stmt(backfill).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.alter_table(Table::alter().table(Users::Table).drop_column(Users::EmailVerifiedAt).to_owned()).await
    }
}
