//! Named leases: work one app server at a time must do (scheduling the
//! reminder sweeps now; electing a sequencer later). A lease is held until
//! a time and renewed before it; whoever finds it run out may take it, and
//! `term` rises with each change of hands, so a holder that was paused past
//! its lease can tell (a fencing token).
use chrono::{DateTime, Duration, Utc};
use entities::lease;
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, EntityTrait, ExprTrait, QueryFilter, Set};

/// A lease held by `owner` for term `term`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Held {
    pub name: String,
    pub owner: String,
    pub term: i64,
    pub until: DateTime<Utc>,
}

/// Take the lease `name` for `owner` if it is free, run out, or already
/// ours (then it is renewed). `None`: another owner holds it.
pub async fn acquire(
    conn: &impl ConnectionTrait,
    name: &str,
    owner: &str,
    now: DateTime<Utc>,
    ttl: Duration,
) -> Result<Option<Held>, DbErr> {
    let until = now + ttl;
    // First taker: the row does not exist yet.
    let created = lease::Entity::insert(lease::ActiveModel {
        name: Set(name.into()),
        owner: Set(owner.into()),
        until: Set(until),
        term: Set(1),
    })
    .on_conflict(OnConflict::column(lease::Column::Name).do_nothing().to_owned())
    .exec_without_returning(conn)
    .await?;
    if created == 1 {
        return Ok(Some(Held { name: name.into(), owner: owner.into(), term: 1, until }));
    }
    // Ours already: renew, same term.
    let renewed = lease::Entity::update_many()
        .col_expr(lease::Column::Until, Expr::value(until))
        .filter(lease::Column::Name.eq(name))
        .filter(lease::Column::Owner.eq(owner))
        .exec(conn)
        .await?;
    if renewed.rows_affected == 0 {
        // Somebody else's: take it only if it ran out, with a new term.
        let taken = lease::Entity::update_many()
            .col_expr(lease::Column::Owner, Expr::value(owner))
            .col_expr(lease::Column::Until, Expr::value(until))
            .col_expr(lease::Column::Term, Expr::col(lease::Column::Term).add(1))
            .filter(lease::Column::Name.eq(name))
            .filter(lease::Column::Until.lt(now))
            .exec(conn)
            .await?;
        if taken.rows_affected == 0 {
            return Ok(None);
        }
    }
    let row = lease::Entity::find_by_id(name.to_string()).one(conn).await?;
    Ok(row.filter(|r| r.owner == owner).map(|r| Held { name: r.name, owner: r.owner, term: r.term, until: r.until }))
}

/// Give a lease up before it runs out (a clean stop), so another server
/// need not wait for it.
pub async fn release(conn: &impl ConnectionTrait, held: &Held, now: DateTime<Utc>) -> Result<(), DbErr> {
    lease::Entity::update_many()
        .col_expr(lease::Column::Until, Expr::value(now - Duration::seconds(1)))
        .filter(lease::Column::Name.eq(held.name.as_str()))
        .filter(lease::Column::Owner.eq(held.owner.as_str()))
        .filter(lease::Column::Term.eq(held.term))
        .exec(conn)
        .await?;
    Ok(())
}
