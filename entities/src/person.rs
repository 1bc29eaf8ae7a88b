use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "persons")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub claim_id: Uuid,
    pub position: i32,
    pub relation: String,
    pub is_minor: bool,
    /// The person's details sealed, for a claim in document format 1; empty
    /// when the claim's document holds them (format 2: an index row).
    pub sealed: Vec<u8>,
    pub identity_index: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(belongs_to = "super::claim::Entity", from = "Column::ClaimId", to = "super::claim::Column::Id")]
    Claim,
}

impl Related<super::claim::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Claim.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
