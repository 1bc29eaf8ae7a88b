//! A claim's draft as one sealed document: the contact details, the people
//! and the harm diary sealed together in `claims.sealed`, so reading a
//! claim is one row and saving it one UPDATE. `document_format` says which
//! layout a claim is in: 1, the contact details in `claims.sealed` and the
//! people and harms as sealed rows of their own; 2, the whole document in
//! `claims.sealed`, with `persons` rows left as index rows (relation, minor,
//! identity blind index) and no `harms` rows.
//!
//! Existing claims are rewritten by the app, which holds the keys: at start
//! (`claims::store::upgrade_documents`). Going down, the app first writes
//! the documents back out as rows (`app claims downgrade-documents`); this
//! migration refuses to go down while any claim is still in format 2, so no
//! draft is lost to a rollback.
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Claims {
    Table,
    DocumentFormat,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Claims::Table)
                    .add_column(ColumnDef::new(Claims::DocumentFormat).small_integer().not_null().default(1))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let mut count = Query::select();
        count
            .expr(Expr::col(Claims::DocumentFormat).count())
            .from(Claims::Table)
            .and_where(Expr::col(Claims::DocumentFormat).gt(1));
        let db = manager.get_connection();
        let row = db.query_one(&count).await?;
        let documents: i64 = match row {
            Some(row) => row.try_get_by_index(0)?,
            None => 0,
        };
        if documents > 0 {
            return Err(DbErr::Migration(format!(
                "{documents} claims hold their draft as one sealed document: \
                 run `app claims downgrade-documents` before migrating below this version"
            )));
        }
        manager.alter_table(Table::alter().table(Claims::Table).drop_column(Claims::DocumentFormat).to_owned()).await
    }
}
