use sea_orm::entity::prelude::*;

/// A plaintiff of a frozen round: a person (claim + position) with a stable
/// plaintiff number (原告番号), tier, amount and reasons (JSON, no names).
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "round_members")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub round_id: Uuid,
    #[sea_orm(primary_key, auto_increment = false)]
    pub plaintiff_number: i32,
    pub claim_id: Uuid,
    pub position: i32,
    pub tier: String,
    pub amount_yen: i64,
    pub points: i32,
    pub reasons: String,
    pub limitation_ended_on: Option<Date>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::filing_round::Entity",
        from = "Column::RoundId",
        to = "super::filing_round::Column::Id"
    )]
    Round,
    #[sea_orm(belongs_to = "super::claim::Entity", from = "Column::ClaimId", to = "super::claim::Column::Id")]
    Claim,
}

impl Related<super::filing_round::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Round.def()
    }
}

impl Related<super::claim::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Claim.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
