use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "users")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    #[sea_orm(unique)]
    pub email_index: String,
    pub email_sealed: Vec<u8>,
    pub password_hash: String,
    pub role: String,
    pub failed_logins: i32,
    pub locked_until: Option<DateTimeUtc>,
    pub disabled: bool,
    pub erased_at: Option<DateTimeUtc>,
    /// The TOTP secret, sealed with the account key.
    pub totp_sealed: Option<Vec<u8>>,
    pub totp_confirmed_at: Option<DateTimeUtc>,
    /// The last accepted TOTP time step: a code is accepted once.
    pub totp_last_step: Option<i64>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    /// `ja` or `en`: the language of the mail this person receives.
    pub language: String,
    /// Whether this person wants reminders (notices and decisions are always sent).
    pub reminders: bool,
    /// When the owner of the address opened the link sent to it (staff:
    /// when the account was made). A claim cannot be submitted before.
    pub email_verified_at: Option<DateTimeUtc>,
    /// The password was generated for this account: a new one is chosen at
    /// the next sign-in before anything else.
    pub must_change_password: bool,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
