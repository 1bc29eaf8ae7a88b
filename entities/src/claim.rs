use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "claims")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub case_id: Uuid,
    pub claimant_id: Uuid,
    #[sea_orm(unique)]
    pub number: String,
    pub status: String,
    pub wrapped_key: Option<Vec<u8>>,
    /// Sealed with the claim's key: in `document_format` 2 the whole draft's
    /// personal part (contact, people, harms); in format 1 only the contact.
    pub sealed: Option<Vec<u8>>,
    pub leaked_items: Json,
    pub services: Json,
    pub apology_letter_received: Option<bool>,
    pub registration_code_index: Option<String>,
    pub apology_option: Option<String>,
    pub learned_of_leak_on: Option<Date>,
    /// `learned_of_leak_on` is the first day of the month the claimant gave.
    pub learned_month_only: bool,
    pub possible_duplicate: bool,
    pub version: i32,
    pub submitted_at: Option<DateTimeUtc>,
    pub withdrawn_at: Option<DateTimeUtc>,
    pub needs_reverification: bool,
    pub erased_at: Option<DateTimeUtc>,
    pub assignee_id: Option<Uuid>,
    pub cure_deadline: Option<Date>,
    /// ",kind,kind," of the last computed verification signals.
    pub signals: Option<String>,
    pub signals_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    /// 1: people and harms as sealed rows; 2: one sealed document.
    pub document_format: i16,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(belongs_to = "super::case::Entity", from = "Column::CaseId", to = "super::case::Column::Id")]
    Case,
    #[sea_orm(belongs_to = "super::user::Entity", from = "Column::ClaimantId", to = "super::user::Column::Id")]
    Claimant,
}

/// A claim's people: read with the claim in one query.
impl Related<super::person::Entity> for Entity {
    fn to() -> RelationDef {
        super::person::Relation::Claim.def().rev()
    }
}

impl Related<super::case::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Case.def()
    }
}

impl Related<super::user::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Claimant.def()
    }
}

impl Related<super::harm::Entity> for Entity {
    fn to() -> RelationDef {
        super::harm::Relation::Claim.def().rev()
    }
}

impl Related<super::evidence::Entity> for Entity {
    fn to() -> RelationDef {
        super::evidence::Relation::Claim.def().rev()
    }
}

impl Related<super::consent::Entity> for Entity {
    fn to() -> RelationDef {
        super::consent::Relation::Claim.def().rev()
    }
}

impl Related<super::review_decision::Entity> for Entity {
    fn to() -> RelationDef {
        super::review_decision::Relation::Claim.def().rev()
    }
}

impl Related<super::review_note::Entity> for Entity {
    fn to() -> RelationDef {
        super::review_note::Relation::Claim.def().rev()
    }
}

impl ActiveModelBehavior for ActiveModel {}
