use sea_orm::entity::prelude::*;

/// A filing round of a case (第N次提訴): open → frozen → filed.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "filing_rounds")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub case_id: Uuid,
    pub number: i32,
    pub name: String,
    pub court: String,
    /// Claims submitted on or before this day are considered.
    pub cut_off: Date,
    /// The planned filing date (the limitation-period check uses it).
    pub filing_date: Date,
    pub state: String,
    /// SHA-256 of the frozen computation's canonical JSON.
    pub result_sha256: Option<String>,
    pub created_at: DateTimeUtc,
    pub frozen_at: Option<DateTimeUtc>,
    pub frozen_by: Option<Uuid>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(belongs_to = "super::case::Entity", from = "Column::CaseId", to = "super::case::Column::Id")]
    Case,
}

impl Related<super::case::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Case.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
