//! One signature per (claim, document, capacity, person): a unique index
//! instead of a check inside the write transaction. The check let two
//! concurrent signings of the same document both record on PostgreSQL; the
//! index refuses the second, and signing inserts with ON CONFLICT DO NOTHING.
//! Any duplicates already recorded are removed first, keeping the earliest
//! (the audit log still holds every signing event).
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone, Copy)]
enum Consents {
    Table,
    Id,
    ClaimId,
    DocumentId,
    Capacity,
    SubjectIndex,
    SignedAt,
}

const INDEX: &str = "uq_consents_signature";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let (later, earlier) = (Alias::new("later"), Alias::new("earlier"));
        let same = |c: Consents| Expr::col((earlier.clone(), c)).equals((later.clone(), c));
        let duplicates = Query::select()
            .column((later.clone(), Consents::Id))
            .from_as(Consents::Table, later.clone())
            .join_as(
                JoinType::InnerJoin,
                Consents::Table,
                earlier.clone(),
                Condition::all()
                    .add(same(Consents::ClaimId))
                    .add(same(Consents::DocumentId))
                    .add(same(Consents::Capacity))
                    .add(same(Consents::SubjectIndex))
                    .add(
                        Condition::any()
                            .add(
                                Expr::col((earlier.clone(), Consents::SignedAt))
                                    .lt(Expr::col((later.clone(), Consents::SignedAt))),
                            )
                            .add(Condition::all().add(same(Consents::SignedAt)).add(
                                Expr::col((earlier.clone(), Consents::Id)).lt(Expr::col((later.clone(), Consents::Id))),
                            )),
                    ),
            )
            .to_owned();
        manager
            .get_connection()
            .execute(
                &Query::delete()
                    .from_table(Consents::Table)
                    .and_where(Expr::col(Consents::Id).in_subquery(duplicates))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name(INDEX)
                    .table(Consents::Table)
                    .col(Consents::ClaimId)
                    .col(Consents::DocumentId)
                    .col(Consents::Capacity)
                    .col(Consents::SubjectIndex)
                    .unique()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_index(Index::drop().name(INDEX).table(Consents::Table).to_owned()).await
    }
}
