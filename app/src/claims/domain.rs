//! Claim types and rules. Inputs arrive as raw strings (`*Input`) and are
//! parsed into domain values with every field error collected.
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::cases::Catalogue;
use crate::domain::{
    parse_choice, parse_date, parse_free_text, Address, BirthDate, Email, ErrorCode, FieldErrors, KanaName, PastDate,
    PersonName, Phone, PostalCode, Prefecture, RegistrationCode,
};

pub const MAX_PERSONS: usize = 12;
pub const MAX_HARMS: usize = 100;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClaimStatus {
    Draft,
    Submitted,
    NeedsInfo,
    Verified,
    Rejected,
    Withdrawn,
    /// The claimant erased their data: only non-personal facts remain.
    Erased,
}

impl ClaimStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ClaimStatus::Draft => "draft",
            ClaimStatus::Submitted => "submitted",
            ClaimStatus::NeedsInfo => "needs_info",
            ClaimStatus::Verified => "verified",
            ClaimStatus::Rejected => "rejected",
            ClaimStatus::Withdrawn => "withdrawn",
            ClaimStatus::Erased => "erased",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Draft, Self::Submitted, Self::NeedsInfo, Self::Verified, Self::Rejected, Self::Withdrawn, Self::Erased]
            .into_iter()
            .find(|x| x.as_str() == s)
    }
    /// The claimant may change the draft only before submission or when asked for more.
    pub fn is_editable(self) -> bool {
        matches!(self, ClaimStatus::Draft | ClaimStatus::NeedsInfo)
    }
    pub fn can_submit(self) -> bool {
        self.is_editable()
    }
    pub fn can_withdraw(self) -> bool {
        !matches!(self, ClaimStatus::Withdrawn | ClaimStatus::Erased)
    }
    /// Identity and contact details can be corrected while the claim is
    /// live; after submission a correction flags the claim for re-verification.
    pub fn is_correctable(self) -> bool {
        matches!(self, ClaimStatus::Draft | ClaimStatus::NeedsInfo | ClaimStatus::Submitted | ClaimStatus::Verified)
    }
}

/// Why a claim would not join a filing round now.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Exclusion {
    /// Not (yet) verified as an affected party.
    NotVerified,
    /// A document is unsigned, or signed only in a superseded version.
    NoCurrentConsent,
    Withdrawn,
    /// Flagged as a possible duplicate and not resolved by a lawyer.
    UnresolvedDuplicate,
    /// Changed after submission (its people, after verification): the
    /// lawyers have not decided on it as it is now.
    ChangedSinceReview,
}

/// The reasons a claim is kept out of round assignment (none: it is eligible).
pub fn round_exclusions(
    status: ClaimStatus,
    consent_current: bool,
    possible_duplicate: bool,
    changed_since_review: bool,
) -> Vec<Exclusion> {
    if matches!(status, ClaimStatus::Withdrawn | ClaimStatus::Erased) {
        return vec![Exclusion::Withdrawn];
    }
    let mut out = Vec::new();
    if status != ClaimStatus::Verified {
        out.push(if changed_since_review { Exclusion::ChangedSinceReview } else { Exclusion::NotVerified });
    }
    if !consent_current {
        out.push(Exclusion::NoCurrentConsent);
    }
    if possible_duplicate {
        out.push(Exclusion::UnresolvedDuplicate);
    }
    out
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Relation {
    #[serde(rename = "self")]
    Myself,
    Child,
    Spouse,
    Parent,
    Other,
}

impl Relation {
    pub const ALL: [Relation; 5] =
        [Relation::Myself, Relation::Child, Relation::Spouse, Relation::Parent, Relation::Other];
    pub fn as_str(self) -> &'static str {
        match self {
            Relation::Myself => "self",
            Relation::Child => "child",
            Relation::Spouse => "spouse",
            Relation::Parent => "parent",
            Relation::Other => "other",
        }
    }
    pub fn parse(raw: &str) -> Result<Self, ErrorCode> {
        crate::domain::parse_code(raw, &Self::ALL, Self::as_str)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Gender {
    Female,
    Male,
    Other,
    Unanswered,
}

impl Gender {
    pub const ALL: [Gender; 4] = [Gender::Female, Gender::Male, Gender::Other, Gender::Unanswered];
    pub fn as_str(self) -> &'static str {
        match self {
            Gender::Female => "female",
            Gender::Male => "male",
            Gender::Other => "other",
            Gender::Unanswered => "unanswered",
        }
    }
    pub fn parse(raw: &str) -> Result<Self, ErrorCode> {
        crate::domain::parse_code(raw, &Self::ALL, Self::as_str)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HarmKind {
    DirectMail,
    Call,
    Email,
    Fraud,
    Other,
}

impl HarmKind {
    pub const ALL: [HarmKind; 5] =
        [HarmKind::DirectMail, HarmKind::Call, HarmKind::Email, HarmKind::Fraud, HarmKind::Other];
    pub fn as_str(self) -> &'static str {
        match self {
            HarmKind::DirectMail => "direct_mail",
            HarmKind::Call => "call",
            HarmKind::Email => "email",
            HarmKind::Fraud => "fraud",
            HarmKind::Other => "other",
        }
    }
    pub fn parse(raw: &str) -> Result<Self, ErrorCode> {
        crate::domain::parse_code(raw, &Self::ALL, Self::as_str)
    }
}

/// A person covered by the claim; each is a potential plaintiff.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Person {
    pub relation: Relation,
    pub family_name: PersonName,
    pub given_name: PersonName,
    pub family_name_kana: KanaName,
    pub given_name_kana: KanaName,
    pub birth_date: BirthDate,
    pub gender: Gender,
}

impl Person {
    /// The name as written, family name first.
    pub fn display_name(&self) -> String {
        format!("{} {}", self.family_name.as_str(), self.given_name.as_str())
    }
    /// Normalised kana name and birth date: the duplicate-detection key.
    pub fn identity_key(&self) -> String {
        format!(
            "{}{}|{}",
            self.family_name_kana.index_form(),
            self.given_name_kana.index_form(),
            self.birth_date.date()
        )
    }
}

/// The personal part of a person row, sealed as one value.
#[derive(Serialize, Deserialize)]
pub struct PersonSealed {
    pub family_name: PersonName,
    pub given_name: PersonName,
    pub family_name_kana: KanaName,
    pub given_name_kana: KanaName,
    pub birth_date: BirthDate,
    pub gender: Gender,
}

/// One entry of the harm diary.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Harm {
    pub kind: HarmKind,
    pub date: Option<PastDate>,
    pub sender: String,
    pub note: String,
}

/// The sealed part of a harm row.
#[derive(Serialize, Deserialize)]
pub struct HarmSealed {
    pub sender: String,
    pub note: String,
}

/// The claim-level personal data, sealed in the claim row.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContactSealed {
    pub address: Option<Address>,
    pub phone: Option<Phone>,
    pub email: Option<Email>,
    pub registration_code: Option<RegistrationCode>,
}

/// Everything the claimant fills in.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Draft {
    pub persons: Vec<Person>,
    pub address: Option<Address>,
    pub phone: Option<Phone>,
    pub email: Option<Email>,
    pub leaked_items: Vec<String>,
    pub services: Vec<String>,
    pub apology_letter_received: Option<bool>,
    pub registration_code: Option<RegistrationCode>,
    pub apology_option: Option<String>,
    pub learned_of_leak_on: Option<PastDate>,
    pub harms: Vec<Harm>,
}

impl Draft {
    pub fn claimant(&self) -> Option<&Person> {
        self.persons.iter().find(|p| p.relation == Relation::Myself)
    }

    /// Fields still missing before the claim can be submitted (field paths).
    pub fn missing_for_submit(&self) -> Vec<String> {
        let mut missing = Vec::new();
        if self.claimant().is_none() {
            missing.push("persons".to_string());
        }
        if self.address.is_none() {
            missing.push("address".into());
        }
        if self.phone.is_none() {
            missing.push("phone".into());
        }
        if self.leaked_items.is_empty() {
            missing.push("leaked_items".into());
        }
        if self.apology_letter_received.is_none() {
            missing.push("apology_letter_received".into());
        }
        if self.apology_option.is_none() {
            missing.push("apology_option".into());
        }
        missing
    }
}

/// Raw fields of a person as typed.
#[derive(Clone, Debug, Default, Serialize, Deserialize, rocket::FromForm)]
#[serde(default)]
pub struct PersonInput {
    pub relation: String,
    pub family_name: String,
    pub given_name: String,
    pub family_name_kana: String,
    pub given_name_kana: String,
    pub birth_date: String,
    pub gender: String,
}

impl PersonInput {
    pub fn parse(&self, prefix: &str, today: NaiveDate, errors: &mut FieldErrors) -> Option<Person> {
        let f = |name: &str| {
            if prefix.is_empty() {
                name.to_string()
            } else {
                format!("{prefix}.{name}")
            }
        };
        let relation = errors.check(&f("relation"), Relation::parse(&self.relation));
        let family_name = errors.check(&f("family_name"), PersonName::parse(&self.family_name));
        let given_name = errors.check(&f("given_name"), PersonName::parse(&self.given_name));
        let family_name_kana = errors.check(&f("family_name_kana"), KanaName::parse(&self.family_name_kana));
        let given_name_kana = errors.check(&f("given_name_kana"), KanaName::parse(&self.given_name_kana));
        let birth_date = errors.check(&f("birth_date"), BirthDate::parse(&self.birth_date, today));
        let gender = errors.check(&f("gender"), Gender::parse(&self.gender));
        Some(Person {
            relation: relation?,
            family_name: family_name?,
            given_name: given_name?,
            family_name_kana: family_name_kana?,
            given_name_kana: given_name_kana?,
            birth_date: birth_date?,
            gender: gender?,
        })
    }

    pub fn from_person(p: &Person) -> Self {
        Self {
            relation: p.relation.as_str().into(),
            family_name: p.family_name.as_str().into(),
            given_name: p.given_name.as_str().into(),
            family_name_kana: p.family_name_kana.as_str().into(),
            given_name_kana: p.given_name_kana.as_str().into(),
            birth_date: p.birth_date.date().to_string(),
            gender: p.gender.as_str().into(),
        }
    }
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, rocket::FromForm)]
#[serde(default)]
pub struct AddressInput {
    pub postal_code: String,
    pub prefecture: String,
    pub city: String,
    pub line1: String,
    pub line2: String,
}

impl AddressInput {
    pub fn parse(&self, errors: &mut FieldErrors) -> Option<Address> {
        let postal_code = errors.check("address.postal_code", PostalCode::parse(&self.postal_code));
        let prefecture = errors.check("address.prefecture", Prefecture::parse(&self.prefecture));
        let city = errors.check("address.city", Address::parse_line(&self.city, true)).flatten();
        let line1 = errors.check("address.line1", Address::parse_line(&self.line1, true)).flatten();
        let line2 = errors.check("address.line2", Address::parse_line(&self.line2, false));
        Some(Address { postal_code: postal_code?, prefecture: prefecture?, city: city?, line1: line1?, line2: line2? })
    }

    pub fn from_address(a: &Address) -> Self {
        Self {
            postal_code: a.postal_code.display(),
            prefecture: a.prefecture.as_str().into(),
            city: a.city.clone(),
            line1: a.line1.clone(),
            line2: a.line2.clone().unwrap_or_default(),
        }
    }
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, rocket::FromForm)]
#[serde(default)]
pub struct HarmInput {
    pub kind: String,
    pub date: String,
    pub sender: String,
    pub note: String,
}

impl HarmInput {
    pub fn parse(&self, prefix: &str, earliest: NaiveDate, today: NaiveDate, errors: &mut FieldErrors) -> Option<Harm> {
        let f = |name: &str| {
            if prefix.is_empty() {
                name.to_string()
            } else {
                format!("{prefix}.{name}")
            }
        };
        let kind = errors.check(&f("kind"), HarmKind::parse(&self.kind));
        let date = errors
            .optional(&f("date"), Some(&self.date), |v| PastDate::parse(v, earliest, ErrorCode::DateBeforeLeak, today));
        let date_ok = self.date.trim().is_empty() || date.is_some();
        let sender = errors.check(&f("sender"), parse_free_text(&self.sender, 100));
        let note = errors.check(&f("note"), parse_free_text(&self.note, 1000));
        if !date_ok {
            return None;
        }
        Some(Harm { kind: kind?, date, sender: sender?, note: note? })
    }
}

/// The leak questions: what leaked, which services, the apology letter and option.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct LeakInput {
    pub leaked_items: Vec<String>,
    pub services: Vec<String>,
    pub apology_letter_received: Option<bool>,
    pub registration_code: Option<String>,
    pub apology_option: Option<String>,
    pub learned_of_leak_on: Option<String>,
}

/// Parsed answers to the leak questions.
pub struct LeakAnswers {
    pub leaked_items: Vec<String>,
    pub services: Vec<String>,
    pub apology_letter_received: Option<bool>,
    pub registration_code: Option<RegistrationCode>,
    pub apology_option: Option<String>,
    pub learned_of_leak_on: Option<PastDate>,
}

impl LeakInput {
    pub fn parse(&self, catalogue: &Catalogue, today: NaiveDate, errors: &mut FieldErrors) -> Option<LeakAnswers> {
        let before = errors.0.len();
        let items = catalogue.leaked_item_codes();
        let mut leaked_items = Vec::new();
        for raw in &self.leaked_items {
            if let Some(code) = errors.check("leaked_items", parse_choice(raw, &items)) {
                if !leaked_items.contains(&code) {
                    leaked_items.push(code);
                }
            }
        }
        let service_codes = catalogue.service_codes();
        let mut services = Vec::new();
        for raw in &self.services {
            if let Some(code) = errors.check("services", parse_choice(raw, &service_codes)) {
                if !services.contains(&code) {
                    services.push(code);
                }
            }
        }
        let registration_code =
            errors.optional("registration_code", self.registration_code.as_deref(), RegistrationCode::parse);
        let options = catalogue.apology_option_codes();
        let apology_option =
            errors.optional("apology_option", self.apology_option.as_deref(), |v| parse_choice(v, &options));
        let learned_of_leak_on = errors.optional("learned_of_leak_on", self.learned_of_leak_on.as_deref(), |v| {
            PastDate::parse(v, catalogue.learned_from(), ErrorCode::DateBeforeFirstHarms, today)
        });
        if errors.0.len() > before {
            return None;
        }
        Some(LeakAnswers {
            leaked_items,
            services,
            apology_letter_received: self.apology_letter_received,
            registration_code,
            apology_option,
            learned_of_leak_on,
        })
    }
}

/// The whole draft as the API sends it (`PUT /api/v1/claims/{id}`).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct DraftInput {
    pub persons: Vec<PersonInput>,
    pub address: Option<AddressInput>,
    pub phone: Option<String>,
    pub email: Option<String>,
    #[serde(flatten)]
    pub leak: LeakInput,
    pub harms: Vec<HarmInput>,
}

/// The parts of a claim that stay correctable after submission.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct IdentityInput {
    pub persons: Vec<PersonInput>,
    pub address: Option<AddressInput>,
    pub phone: Option<String>,
    pub email: Option<String>,
}

/// Parsed identity and contact details.
pub struct Identity {
    pub persons: Vec<Person>,
    pub address: Option<Address>,
    pub phone: Option<Phone>,
    pub email: Option<Email>,
}

impl IdentityInput {
    fn parse_into(&self, today: NaiveDate, errors: &mut FieldErrors) -> Identity {
        if self.persons.len() > MAX_PERSONS {
            errors.add("persons", ErrorCode::TooMany);
        }
        let persons: Vec<Person> = self
            .persons
            .iter()
            .enumerate()
            .filter_map(|(i, p)| p.parse(&format!("persons[{i}]"), today, errors))
            .collect();
        if persons.iter().filter(|p| p.relation == Relation::Myself).count() > 1 {
            errors.add("persons", ErrorCode::Duplicate);
        }
        let address = self.address.as_ref().and_then(|a| {
            let blank =
                [&a.postal_code, &a.prefecture, &a.city, &a.line1, &a.line2].iter().all(|s| s.trim().is_empty());
            if blank {
                None
            } else {
                a.parse(errors)
            }
        });
        let phone = errors.optional("phone", self.phone.as_deref(), Phone::parse);
        let email = errors.optional("email", self.email.as_deref(), Email::parse);
        Identity { persons, address, phone, email }
    }

    pub fn parse(&self, today: NaiveDate) -> Result<Identity, FieldErrors> {
        let mut errors = FieldErrors::new();
        let identity = self.parse_into(today, &mut errors);
        if identity.persons.iter().all(|p| p.relation != Relation::Myself) && errors.is_empty() {
            errors.add("persons", ErrorCode::Required);
        }
        errors.into_result(identity)
    }
}

impl DraftInput {
    pub fn parse(&self, catalogue: &Catalogue, today: NaiveDate) -> Result<Draft, FieldErrors> {
        let mut errors = FieldErrors::new();
        let identity = IdentityInput {
            persons: self.persons.clone(),
            address: self.address.clone(),
            phone: self.phone.clone(),
            email: self.email.clone(),
        }
        .parse_into(today, &mut errors);
        let leak = self.leak.parse(catalogue, today, &mut errors);
        if self.harms.len() > MAX_HARMS {
            errors.add("harms", ErrorCode::TooMany);
        }
        let harms: Vec<Option<Harm>> = self
            .harms
            .iter()
            .enumerate()
            .map(|(i, h)| h.parse(&format!("harms[{i}]"), catalogue.harms_from(), today, &mut errors))
            .collect();
        if !errors.is_empty() {
            return Err(errors);
        }
        let leak = leak.ok_or_else(FieldErrors::new)?;
        Ok(Draft {
            persons: identity.persons,
            address: identity.address,
            phone: identity.phone,
            email: identity.email,
            leaked_items: leak.leaked_items,
            services: leak.services,
            apology_letter_received: leak.apology_letter_received,
            registration_code: leak.registration_code,
            apology_option: leak.apology_option,
            learned_of_leak_on: leak.learned_of_leak_on,
            harms: harms.into_iter().flatten().collect(),
        })
    }
}

/// Parse a date typed in a form (for callers outside the draft).
pub fn parse_form_date(raw: &str) -> Result<NaiveDate, ErrorCode> {
    parse_date(raw)
}

/// What a lawyer decides about a claim.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DecisionKind {
    Verify,
    Reject,
    /// A deficiency notice: the claimant must add or correct something by the cure deadline.
    RequestInfo,
    /// The case's policy verified the claim (code and identity both matched).
    AutoVerify,
}

impl DecisionKind {
    pub const CHOSEN_BY_LAWYERS: [DecisionKind; 3] =
        [DecisionKind::Verify, DecisionKind::Reject, DecisionKind::RequestInfo];

    pub fn as_str(self) -> &'static str {
        match self {
            DecisionKind::Verify => "verify",
            DecisionKind::Reject => "reject",
            DecisionKind::RequestInfo => "request_info",
            DecisionKind::AutoVerify => "auto_verify",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Verify, Self::Reject, Self::RequestInfo, Self::AutoVerify].into_iter().find(|d| d.as_str() == s)
    }
    /// The claim's status after this decision.
    pub fn outcome(self) -> ClaimStatus {
        match self {
            DecisionKind::Verify | DecisionKind::AutoVerify => ClaimStatus::Verified,
            DecisionKind::Reject => ClaimStatus::Rejected,
            DecisionKind::RequestInfo => ClaimStatus::NeedsInfo,
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_a_verified_consented_unique_claim_is_eligible_for_a_round() {
        use super::{round_exclusions, ClaimStatus as S, Exclusion as E};
        assert!(round_exclusions(S::Verified, true, false, false).is_empty());
        assert!(round_exclusions(S::Verified, true, false, true).is_empty(), "a new address keeps the verification");
        assert_eq!(round_exclusions(S::Verified, false, false, false), vec![E::NoCurrentConsent]);
        assert_eq!(round_exclusions(S::Submitted, true, true, false), vec![E::NotVerified, E::UnresolvedDuplicate]);
        assert_eq!(round_exclusions(S::Submitted, true, false, true), vec![E::ChangedSinceReview]);
        assert_eq!(round_exclusions(S::Withdrawn, true, false, false), vec![E::Withdrawn]);
        assert_eq!(round_exclusions(S::Erased, false, false, false), vec![E::Withdrawn]);
    }

    use super::*;
    use crate::cases::seed::benesse_catalogue;

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, 21).unwrap()
    }

    fn person(relation: &str) -> PersonInput {
        PersonInput {
            relation: relation.into(),
            family_name: "山田".into(),
            given_name: "花子".into(),
            family_name_kana: "やまだ".into(),
            given_name_kana: "はなこ".into(),
            birth_date: "1980-05-05".into(),
            gender: "female".into(),
        }
    }

    #[test]
    fn a_complete_input_parses_and_needs_nothing_more() {
        let input = DraftInput {
            persons: vec![person("self"), PersonInput { birth_date: "2010-04-01".into(), ..person("child") }],
            address: Some(AddressInput {
                postal_code: "１００－０００１".into(),
                prefecture: "東京".into(),
                city: "千代田区".into(),
                line1: "千代田1-1".into(),
                line2: "".into(),
            }),
            phone: Some("090-1234-5678".into()),
            email: None,
            leak: LeakInput {
                leaked_items: vec!["name".into(), "address".into(), "name".into()],
                services: vec!["shinkenzemi".into()],
                apology_letter_received: Some(true),
                registration_code: Some("ab12-cd34".into()),
                apology_option: Some("book_card_500".into()),
                learned_of_leak_on: Some("2014-07-10".into()),
            },
            harms: vec![HarmInput {
                kind: "direct_mail".into(),
                date: "2014-08-01".into(),
                sender: "某社".into(),
                note: "".into(),
            }],
        };
        let draft = input.parse(&benesse_catalogue(), today()).unwrap();
        assert_eq!(draft.leaked_items, vec!["name", "address"]);
        assert_eq!(draft.persons[0].family_name_kana.as_str(), "ヤマダ");
        assert_eq!(draft.address.as_ref().unwrap().prefecture.as_str(), "東京都");
        assert!(draft.missing_for_submit().is_empty());
    }

    #[test]
    fn every_bad_field_is_reported_with_its_path() {
        let input = DraftInput {
            persons: vec![PersonInput {
                family_name_kana: "山田".into(),
                birth_date: "2099-01-01".into(),
                ..person("self")
            }],
            phone: Some("123".into()),
            leak: LeakInput {
                leaked_items: vec!["credit_card".into()],
                apology_option: Some("cash".into()),
                learned_of_leak_on: Some("2010-01-01".into()),
                ..Default::default()
            },
            harms: vec![HarmInput { kind: "spam".into(), date: "tomorrow".into(), ..Default::default() }],
            ..Default::default()
        };
        let errors = input.parse(&benesse_catalogue(), today()).unwrap_err();
        let want = [
            ("persons[0].family_name_kana", ErrorCode::Kana),
            ("persons[0].birth_date", ErrorCode::DateInFuture),
            ("phone", ErrorCode::Phone),
            ("leaked_items", ErrorCode::Choice),
            ("apology_option", ErrorCode::Choice),
            ("learned_of_leak_on", ErrorCode::DateBeforeFirstHarms),
            ("harms[0].kind", ErrorCode::Choice),
            ("harms[0].date", ErrorCode::Date),
        ];
        for (field, code) in want {
            assert_eq!(errors.get(field), Some(code), "{field}: {errors:?}");
        }
    }

    #[test]
    fn dates_take_their_bounds_from_the_case_timeline() {
        let catalogue = benesse_catalogue();
        let harm = |date: &str| HarmInput { kind: "direct_mail".into(), date: date.into(), ..Default::default() };
        let parse_harm = |date: &str| {
            let mut errors = FieldErrors::new();
            let parsed = harm(date).parse("", catalogue.harms_from(), today(), &mut errors);
            (parsed.and_then(|h| h.date.map(|d| d.as_input())), errors.get("date"))
        };
        // The first direct mail, before the public announcement of 2014-07-09.
        assert_eq!(parse_harm("2014-06-26"), (Some("2014-06-26".into()), None));
        assert_eq!(parse_harm("2013-01-01"), (Some("2013-01-01".into()), None), "the leak began on this setting");
        assert_eq!(parse_harm("2012-12-31"), (None, Some(ErrorCode::DateBeforeLeak)));
        let learned = |date: &str| {
            let leak = LeakInput {
                leaked_items: vec!["name".into()],
                learned_of_leak_on: Some(date.into()),
                ..Default::default()
            };
            let mut errors = FieldErrors::new();
            leak.parse(&catalogue, today(), &mut errors);
            errors.get("learned_of_leak_on")
        };
        assert_eq!(learned("2014-06-26"), None, "learning of it from the first direct mail");
        assert_eq!(learned("2014-06-25"), Some(ErrorCode::DateBeforeFirstHarms));
    }

    #[test]
    fn two_claimant_persons_are_refused() {
        let input = DraftInput { persons: vec![person("self"), person("self")], ..Default::default() };
        let errors = input.parse(&benesse_catalogue(), today()).unwrap_err();
        assert_eq!(errors.get("persons"), Some(ErrorCode::Duplicate));
    }

    #[test]
    fn an_empty_draft_lists_what_is_missing() {
        let missing = Draft::default().missing_for_submit();
        assert_eq!(
            missing,
            vec!["persons", "address", "phone", "leaked_items", "apology_letter_received", "apology_option"]
        );
    }

    #[test]
    fn status_rules() {
        assert!(ClaimStatus::Draft.is_editable());
        assert!(ClaimStatus::NeedsInfo.can_submit());
        assert!(!ClaimStatus::Submitted.is_editable());
        assert!(ClaimStatus::Verified.can_withdraw());
        assert!(!ClaimStatus::Withdrawn.can_withdraw());
    }
}
