//! A counter that every change to an account's sessions raises in the
//! transaction that makes it (logout, disabling, a new password or second
//! factor, erasure). Each app server reads it once a second: when it has
//! moved, the server drops what it remembered of sessions, so a change made
//! by another process (a second app server, the operator's CLI) is seen
//! without reading the session on every request.
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum SessionChanges {
    Table,
    Id,
    Epoch,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(SessionChanges::Table)
                    .col(ColumnDef::new(SessionChanges::Id).integer().not_null().primary_key())
                    .col(ColumnDef::new(SessionChanges::Epoch).big_integer().not_null().default(0))
                    .to_owned(),
            )
            .await?;
        let mut seed = Query::insert();
        seed.into_table(SessionChanges::Table)
            .columns([SessionChanges::Id, SessionChanges::Epoch])
            .values([1.into(), 0i64.into()])
            .map_err(|e| DbErr::Custom(e.to_string()))?;
        manager.exec_stmt(seed).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(SessionChanges::Table).to_owned()).await
    }
}
