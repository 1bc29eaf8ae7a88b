//! Sessions end after a while without use (`last_seen_at`), and an account
//! can be made to choose a new password at its next sign-in (the bootstrap
//! administrator's generated one). Existing sessions count as seen when
//! they began; existing accounts need no change.
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Sessions {
    Table,
    LastSeenAt,
}

#[derive(DeriveIden)]
enum Users {
    Table,
    MustChangePassword,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Sessions::Table)
                    .add_column(ColumnDef::new(Sessions::LastSeenAt).timestamp_with_time_zone().null())
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Users::Table)
                    .add_column(ColumnDef::new(Users::MustChangePassword).boolean().not_null().default(false))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(Table::alter().table(Users::Table).drop_column(Users::MustChangePassword).to_owned())
            .await?;
        manager.alter_table(Table::alter().table(Sessions::Table).drop_column(Sessions::LastSeenAt).to_owned()).await
    }
}
