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

/// The keyed hashes of a roster line (or of a claim's values), as roster
/// keys: the first 64 bits of the HMAC-SHA256 blind index. A key is as good
/// as the whole MAC for finding a value among tens of millions (the chance
/// that an unrelated value shares a key is about 1 in 10^12), and it makes
/// the roster a quarter of the size to load and index.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RosterKeys {
    pub code: Option<i64>,
    pub identity: Option<i64>,
    pub phone: Option<i64>,
    pub postal_kana: Option<i64>,
}

/// The roster key of a blind-index MAC.
pub fn key_of_mac(mac: &[u8; 32]) -> i64 {
    let mut first = [0u8; 8];
    first.copy_from_slice(&mac[..8]);
    i64::from_be_bytes(first)
}

/// The roster key of a stored blind index (hex), e.g. a claim's
/// registration-code index; `None` if it is not a hex digest.
pub fn key_of_index(hex_index: &str) -> Option<i64> {
    let first = hex_index.get(..16)?;
    u64::from_str_radix(first, 16).ok().map(|v| v as i64)
}

/// Registration code: the same index the claim keeps.
pub fn code_key(keys: &Keyring, code: &RegistrationCode) -> i64 {
    key_of_mac(&keys.blind_mac("registration-code", &[code.as_str()]))
}

/// Kana name + birth date: the same index as a person's duplicate key.
pub fn identity_key(keys: &Keyring, kana_index_form: &str, birth: NaiveDate) -> i64 {
    let mut date = [0u8; 10];
    let date = iso_date(birth, &mut date);
    key_of_mac(&keys.blind_mac("person-identity", &[kana_index_form, "|", date]))
}

pub fn phone_key(keys: &Keyring, phone: &Phone) -> i64 {
    key_of_mac(&keys.blind_mac("roster-phone", &[phone.digits()]))
}

pub fn postal_kana_key(keys: &Keyring, postal: &PostalCode, kana_index_form: &str) -> i64 {
    key_of_mac(&keys.blind_mac("roster-postal-kana", &[postal.digits(), "|", kana_index_form]))
}

/// `YYYY-MM-DD` as `NaiveDate`'s `Display` writes it for years 0–9999
/// (birth dates are parsed from four-digit years), without allocating.
fn iso_date(date: NaiveDate, buf: &mut [u8; 10]) -> &str {
    use chrono::Datelike;
    let (y, m, d) = (date.year().clamp(0, 9999) as u32, date.month(), date.day());
    let digits = [y / 1000, y / 100 % 10, y / 10 % 10, y % 10, 10, m / 10, m % 10, 10, d / 10, d % 10];
    for (out, digit) in buf.iter_mut().zip(digits) {
        *out = if digit == 10 { b'-' } else { b'0' + digit as u8 };
    }
    std::str::from_utf8(buf).unwrap_or_default()
}

/// The kinds of roster value, numbered as stored.
pub const KINDS: usize = 4;

impl RosterKeys {
    /// The keys by kind number (0 code, 1 identity, 2 phone, 3 postal code + kana).
    pub fn by_kind(&self) -> [Option<i64>; KINDS] {
        [self.code, self.identity, self.phone, self.postal_kana]
    }
}

/// How many top bits of a key name its bucket in an import whose most
/// common kind has `keys` keys: about 128 keys (1 KiB) a bucket, so that a
/// bucket is one small row, between 4 and 24 bits.
pub fn bucket_bits(keys: u64) -> u8 {
    let buckets = (keys / 128).max(1);
    let bits = 64 - (buckets - 1).leading_zeros();
    bits.clamp(4, 24) as u8
}

/// The bucket of a key: its top `bits` bits.
pub fn bucket_of(key: i64, bits: u8) -> i32 {
    ((key as u64) >> (64 - u32::from(bits))) as i32
}

/// A bucket's stored form: its keys sorted (as unsigned) and 8 bytes each,
/// big-endian.
pub fn encode_bucket(sorted: &[u64], out: &mut Vec<u8>) {
    out.reserve(sorted.len() * 8);
    for key in sorted {
        out.extend_from_slice(&key.to_be_bytes());
    }
}

/// Whether a stored bucket holds `key` (binary search; a malformed bucket
/// holds nothing).
pub fn bucket_contains(bucket: &[u8], key: i64) -> bool {
    if !bucket.len().is_multiple_of(8) {
        return false;
    }
    let at = |i: usize| {
        let mut b = [0u8; 8];
        b.copy_from_slice(&bucket[i * 8..i * 8 + 8]);
        u64::from_be_bytes(b)
    };
    let (mut lo, mut hi, want) = (0usize, bucket.len() / 8, key as u64);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        match at(mid).cmp(&want) {
            std::cmp::Ordering::Less => lo = mid + 1,
            std::cmp::Ordering::Greater => hi = mid,
            std::cmp::Ordering::Equal => return true,
        }
    }
    false
}

pub fn keys_of_row(keys: &Keyring, row: &RosterRow) -> RosterKeys {
    RosterKeys {
        code: row.code.as_ref().map(|c| code_key(keys, c)),
        identity: match (&row.kana, row.birth_date) {
            (Some(k), Some(b)) => Some(identity_key(keys, k, b)),
            _ => None,
        },
        phone: row.phone.as_ref().map(|p| phone_key(keys, p)),
        postal_kana: match (&row.postal, &row.kana) {
            (Some(p), Some(k)) => Some(postal_kana_key(keys, p, k)),
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

    #[test]
    fn roster_keys_are_the_claim_side_blind_indexes_cut_to_64_bits() {
        let keys = crate::crypto::tests::test_keyring();
        let code = RegistrationCode::parse("AB12-CD34").unwrap();
        let index = keys.blind_index("registration-code", code.as_str());
        assert_eq!(key_of_index(&index), Some(code_key(&keys, &code)));
        let birth = NaiveDate::from_ymd_opt(1980, 5, 5).unwrap();
        let identity = keys.blind_index("person-identity", &format!("ヤマダハナコ|{birth}"));
        assert_eq!(key_of_index(&identity), Some(identity_key(&keys, "ヤマダハナコ", birth)));
        assert_eq!(key_of_index("not hex at all, not hex at all"), None);
        assert_eq!(key_of_index("abc"), None);
        for date in [NaiveDate::from_ymd_opt(1, 1, 9).unwrap(), NaiveDate::from_ymd_opt(2024, 12, 31).unwrap()] {
            assert_eq!(iso_date(date, &mut [0; 10]), date.to_string());
        }
    }

    #[test]
    fn buckets_find_exactly_their_keys() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(9);
        let bits = bucket_bits(100_000);
        assert_eq!(bits, 10, "about 128 keys a bucket");
        assert_eq!((bucket_bits(0), bucket_bits(1 << 40)), (4, 24));
        let keys: Vec<i64> = (0..100_000).map(|_| rng.gen()).collect();
        let mut sorted: Vec<u64> = keys.iter().map(|k| *k as u64).collect();
        sorted.sort_unstable();
        // Group as the import does, and look every key up in its own bucket.
        let mut buckets = std::collections::HashMap::new();
        for chunk in sorted.chunk_by(|a, b| bucket_of(*a as i64, bits) == bucket_of(*b as i64, bits)) {
            let mut blob = Vec::new();
            encode_bucket(chunk, &mut blob);
            assert!(buckets.insert(bucket_of(chunk[0] as i64, bits), blob).is_none(), "sorted keys group once");
        }
        assert!(buckets.len() > 700 && buckets.keys().all(|b| *b >= 0 && *b < 1 << bits));
        for key in &keys {
            assert!(bucket_contains(&buckets[&bucket_of(*key, bits)], *key), "{key}");
        }
        let all: std::collections::HashSet<i64> = keys.iter().copied().collect();
        for _ in 0..10_000 {
            let absent: i64 = rng.gen();
            let found = buckets.get(&bucket_of(absent, bits)).is_some_and(|b| bucket_contains(b, absent));
            assert_eq!(found, all.contains(&absent));
        }
        assert!(!bucket_contains(&[1, 2, 3], 0), "a malformed bucket holds nothing");
        assert!(!bucket_contains(&[], 0));
    }
}
