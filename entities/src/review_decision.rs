use sea_orm::entity::prelude::*;

/// A decision on a claim: verify, reject, request information (a deficiency
/// notice with a cure deadline) or the system's auto-verification.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "review_decisions")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub claim_id: Uuid,
    pub decided_by: Option<Uuid>,
    pub decision: String,
    /// Sealed with the claim's data key.
    pub reason_sealed: Option<Vec<u8>>,
    pub cure_deadline: Option<Date>,
    pub created_at: DateTimeUtc,
    /// When the claimant resubmitted in answer to a deficiency notice.
    pub answered_at: Option<DateTimeUtc>,
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
