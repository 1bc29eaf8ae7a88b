//! Pure types and rules shared by every capability: parsers for Japanese
//! input (parse, don't validate) and the field-error vocabulary. No I/O.
mod contact;
mod dates;
mod names;
mod text;

pub use contact::{Address, Email, Phone, PostalCode, Prefecture, RegistrationCode, PREFECTURES};
pub use dates::{parse_date, BirthDate, PastDate};
pub use names::{KanaName, PersonName};
pub use text::{hiragana_to_katakana, normalise};

use std::collections::BTreeMap;

use serde::Serialize;

/// Why a field was refused. Each code is a key in the translation catalogue
/// (`err-<code>`), so the message is shown in the user's language.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ErrorCode {
    Required,
    TooLong,
    InvalidChars,
    Email,
    PostalCode,
    Phone,
    Kana,
    Date,
    DateInFuture,
    DateImplausible,
    /// Before the case's leak began (a harm).
    DateBeforeLeak,
    /// Before the case's first harms were seen (learning of the leak).
    DateBeforeFirstHarms,
    Choice,
    RegistrationCode,
    PasswordTooShort,
    PasswordTooLong,
    PasswordBreached,
    Duplicate,
    TooMany,
    Mismatch,
    Number,
    OutOfRange,
    SignatureMismatch,
    PasswordIncorrect,
    ConsentRequired,
    TotpCode,
    /// The e-mail names no lawyer's account.
    NotALawyer,
    /// The claimant has not opened the link sent to their address.
    AddressUnconfirmed,
}

impl ErrorCode {
    /// The catalogue key of this error's message.
    pub fn message_key(self) -> String {
        let json = serde_json::to_value(self).unwrap_or_default();
        format!("err-{}", json.as_str().unwrap_or("invalid"))
    }
}

/// Field path → error, e.g. `persons[1].birth_date` → `Date`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FieldErrors(pub BTreeMap<String, ErrorCode>);

impl FieldErrors {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn add(&mut self, field: impl Into<String>, code: ErrorCode) {
        self.0.entry(field.into()).or_insert(code);
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    pub fn get(&self, field: &str) -> Option<ErrorCode> {
        self.0.get(field).copied()
    }
    /// Run a parser and record its error under `field`.
    pub fn check<T>(&mut self, field: &str, result: Result<T, ErrorCode>) -> Option<T> {
        match result {
            Ok(v) => Some(v),
            Err(code) => {
                self.add(field, code);
                None
            }
        }
    }
    /// Parse an optional field: blank means `None`.
    pub fn optional<T>(
        &mut self,
        field: &str,
        raw: Option<&str>,
        parse: impl FnOnce(&str) -> Result<T, ErrorCode>,
    ) -> Option<T> {
        match raw.map(str::trim).filter(|s| !s.is_empty()) {
            None => None,
            Some(v) => self.check(field, parse(v)),
        }
    }
    pub fn into_result<T>(self, value: T) -> Result<T, FieldErrors> {
        if self.is_empty() {
            Ok(value)
        } else {
            Err(self)
        }
    }
}

/// A choice from a closed list of codes, such as a case's leaked items.
pub fn parse_choice(raw: &str, allowed: &[String]) -> Result<String, ErrorCode> {
    let v = normalise(raw);
    if v.is_empty() {
        return Err(ErrorCode::Required);
    }
    allowed.iter().find(|a| **a == v).cloned().ok_or(ErrorCode::Choice)
}

/// One of a fixed set of codes (an enum's `as_str` values), typed by a client.
pub fn parse_code<T: Copy>(raw: &str, all: &[T], code: impl Fn(T) -> &'static str) -> Result<T, ErrorCode> {
    let v = normalise(raw);
    if v.is_empty() {
        return Err(ErrorCode::Required);
    }
    all.iter().copied().find(|t| code(*t) == v).ok_or(ErrorCode::Choice)
}

/// Free text (a harm's sender or note): normalised, bounded, no control characters.
pub fn parse_free_text(raw: &str, max_chars: usize) -> Result<String, ErrorCode> {
    let v = normalise(raw);
    if v.chars().count() > max_chars {
        return Err(ErrorCode::TooLong);
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_codes_map_to_catalogue_keys() {
        assert_eq!(ErrorCode::PostalCode.message_key(), "err-postal-code");
        assert_eq!(ErrorCode::DateInFuture.message_key(), "err-date-in-future");
    }

    #[test]
    fn choices_outside_the_list_are_refused() {
        let allowed = vec!["name".to_string(), "phone".to_string()];
        assert_eq!(parse_choice(" phone ", &allowed), Ok("phone".into()));
        assert_eq!(parse_choice("card", &allowed), Err(ErrorCode::Choice));
        assert_eq!(parse_choice("", &allowed), Err(ErrorCode::Required));
    }
}
