//! Roster rows: parsing a CSV line, and the keyed hashes a roster line and a
//! claim share. Both sides normalise the same way, so equal people give
//! equal hashes and nothing in clear is stored. No I/O.
use chrono::NaiveDate;

use crate::crypto::Keyring;
use crate::domain::{parse_date, ErrorCode, KanaName, Phone, PostalCode, RegistrationCode};

/// The columns of a roster file, in order.
pub const COLUMNS: [&str; 5] = ["registration_code", "kana_name", "birth_date", "postal_code", "phone"];

/// One parsed roster line; any value may be missing.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RosterRow {
    pub code: Option<RegistrationCode>,
    /// The full name in kana, in its index form (katakana, no spaces).
    pub kana: Option<String>,
    pub birth_date: Option<NaiveDate>,
    pub postal: Option<PostalCode>,
    pub phone: Option<Phone>,
}

/// Why a line was skipped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RowError {
    pub column: &'static str,
    pub code: ErrorCode,
}

impl std::fmt::Display for RowError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let why = match self.code {
            ErrorCode::TooMany => "wrong number of columns",
            ErrorCode::Required => "no value that can be matched",
            ErrorCode::Kana => "not a kana name",
            ErrorCode::Date => "not a date (YYYY-MM-DD)",
            ErrorCode::PostalCode => "not a 7-digit postal code",
            ErrorCode::Phone => "not a Japanese phone number",
            ErrorCode::RegistrationCode => "not a registration code",
            _ => "invalid",
        };
        write!(f, "{}: {why}", self.column)
    }
}

fn optional<T>(
    raw: &str,
    column: &'static str,
    parse: impl Fn(&str) -> Result<T, ErrorCode>,
) -> Result<Option<T>, RowError> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(None);
    }
    parse(raw).map(Some).map_err(|code| RowError { column, code })
}

/// Parse the fields of one line (in `COLUMNS` order).
pub fn parse_row(fields: &[&str]) -> Result<RosterRow, RowError> {
    if fields.len() != COLUMNS.len() {
        return Err(RowError { column: "line", code: ErrorCode::TooMany });
    }
    let row = RosterRow {
        code: optional(fields[0], COLUMNS[0], RegistrationCode::parse)?,
        kana: optional(fields[1], COLUMNS[1], |s| KanaName::parse(s).map(|k| k.index_form()))?,
        birth_date: optional(fields[2], COLUMNS[2], parse_date)?,
        postal: optional(fields[3], COLUMNS[3], PostalCode::parse)?,
        phone: optional(fields[4], COLUMNS[4], Phone::parse)?,
    };
    let matchable = row.code.is_some()
        || (row.kana.is_some() && row.birth_date.is_some())
        || row.phone.is_some()
        || (row.kana.is_some() && row.postal.is_some());
    if !matchable {
        return Err(RowError { column: "line", code: ErrorCode::Required });
    }
    Ok(row)
}

/// The keyed hashes of a roster line (or of a claim's values).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RosterHashes {
    pub code: Option<String>,
    pub identity: Option<String>,
    pub phone: Option<String>,
    pub postal_kana: Option<String>,
}

/// Registration code: the same index the claim keeps.
pub fn code_hash(keys: &Keyring, code: &RegistrationCode) -> String {
    keys.blind_index("registration-code", code.as_str())
}

/// Kana name + birth date: the same index as a person's duplicate key.
pub fn identity_hash(keys: &Keyring, kana_index_form: &str, birth: NaiveDate) -> String {
    keys.blind_index("person-identity", &format!("{kana_index_form}|{birth}"))
}

pub fn phone_hash(keys: &Keyring, phone: &Phone) -> String {
    keys.blind_index("roster-phone", phone.digits())
}

pub fn postal_kana_hash(keys: &Keyring, postal: &PostalCode, kana_index_form: &str) -> String {
    keys.blind_index("roster-postal-kana", &format!("{}|{kana_index_form}", postal.digits()))
}

pub fn hash_row(keys: &Keyring, row: &RosterRow) -> RosterHashes {
    RosterHashes {
        code: row.code.as_ref().map(|c| code_hash(keys, c)),
        identity: match (&row.kana, row.birth_date) {
            (Some(k), Some(b)) => Some(identity_hash(keys, k, b)),
            _ => None,
        },
        phone: row.phone.as_ref().map(|p| phone_hash(keys, p)),
        postal_kana: match (&row.postal, &row.kana) {
            (Some(p), Some(k)) => Some(postal_kana_hash(keys, p, k)),
            _ => None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_parses_with_any_value_missing_but_needs_something_to_match() {
        let row = parse_row(&["ab12-cd34", "やまだ はなこ", "1980-05-05", "100-0001", "090-1234-5678"]).unwrap();
        assert_eq!(row.code.unwrap().as_str(), "AB12CD34");
        assert_eq!(row.kana.as_deref(), Some("ヤマダハナコ"));
        assert_eq!(row.postal.unwrap().digits(), "1000001");
        assert_eq!(row.phone.unwrap().digits(), "09012345678");
        assert!(parse_row(&["", "", "", "", "03-1234-5678"]).is_ok(), "a phone alone can match");
        assert_eq!(parse_row(&["", "ヤマダ", "", "", ""]).unwrap_err().code, ErrorCode::Required);
        assert_eq!(parse_row(&["", "", "", ""]).unwrap_err().code, ErrorCode::TooMany);
        let bad = parse_row(&["", "山田", "1980-05-05", "", ""]).unwrap_err();
        assert_eq!((bad.column, bad.code), ("kana_name", ErrorCode::Kana));
        assert_eq!(parse_row(&["", "ヤマダ", "1980-13-01", "", ""]).unwrap_err().column, "birth_date");
    }
}
