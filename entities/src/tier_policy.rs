use sea_orm::entity::prelude::*;

/// One version of a round's tier policy (canonical JSON; never changed).
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "tier_policies")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub round_id: Uuid,
    pub version: i32,
    pub body: String,
    pub sha256: String,
    pub created_at: DateTimeUtc,
    pub created_by: Option<Uuid>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::filing_round::Entity",
        from = "Column::RoundId",
        to = "super::filing_round::Column::Id"
    )]
    Round,
}

impl Related<super::filing_round::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Round.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
