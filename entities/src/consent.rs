use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "consents")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub claim_id: Uuid,
    pub document_id: Uuid,
    pub document_sha256: String,
    pub capacity: String,
    pub subject_index: String,
    pub sealed: Vec<u8>,
    pub signed_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(belongs_to = "super::claim::Entity", from = "Column::ClaimId", to = "super::claim::Column::Id")]
    Claim,
    #[sea_orm(
        belongs_to = "super::consent_document::Entity",
        from = "Column::DocumentId",
        to = "super::consent_document::Column::Id"
    )]
    Document,
}

impl Related<super::claim::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Claim.def()
    }
}

impl Related<super::consent_document::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Document.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
