use sea_orm::entity::prelude::*;

/// An e-mail to one account. Holds no personal data beyond the recipient's
/// account id: a template kind and its parameters (a claim number, a
/// deadline), rendered in `language` when it is sent; `subject` and `body`
/// record what was sent.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "outbox")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub recipient_id: Uuid,
    pub kind: String,
    pub claim_id: Option<Uuid>,
    pub subject: String,
    pub body: String,
    pub created_at: DateTimeUtc,
    pub sent_at: Option<DateTimeUtc>,
    /// `ja` or `en`: the recipient's language when the mail was queued.
    pub language: String,
    /// The template's parameters, JSON.
    pub params: Option<String>,
    /// Unique when set: a reminder is queued once per recipient and deadline.
    pub dedupe_key: Option<String>,
    /// The `Message-ID` every attempt carries, so a resend is recognisable.
    pub message_id: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
