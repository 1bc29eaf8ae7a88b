//! A TOTP second factor for staff (S5): the sealed secret, when it was
//! confirmed, the last accepted time step (a code is accepted once), and
//! whether a session has passed the second factor.
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Users {
    Table,
    TotpSealed,
    TotpConfirmedAt,
    TotpLastStep,
}

#[derive(DeriveIden)]
enum Sessions {
    Table,
    MfaVerifiedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // SQLite takes one change per ALTER TABLE.
        for column in [
            ColumnDef::new(Users::TotpSealed).binary().null().to_owned(),
            ColumnDef::new(Users::TotpConfirmedAt).timestamp_with_time_zone().null().to_owned(),
            ColumnDef::new(Users::TotpLastStep).big_integer().null().to_owned(),
        ] {
            manager.alter_table(Table::alter().table(Users::Table).add_column(column).to_owned()).await?;
        }
        manager
            .alter_table(
                Table::alter()
                    .table(Sessions::Table)
                    .add_column(ColumnDef::new(Sessions::MfaVerifiedAt).timestamp_with_time_zone().null())
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(Table::alter().table(Sessions::Table).drop_column(Sessions::MfaVerifiedAt).to_owned())
            .await?;
        for column in [Users::TotpLastStep, Users::TotpConfirmedAt, Users::TotpSealed] {
            manager.alter_table(Table::alter().table(Users::Table).drop_column(column).to_owned()).await?;
        }
        Ok(())
    }
}
