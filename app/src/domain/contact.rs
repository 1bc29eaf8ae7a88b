use serde::{Deserialize, Serialize};

use super::{normalise, ErrorCode};

/// An e-mail address: normalised (NFKC, trimmed) and lower-cased.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Email(String);

impl Email {
    pub fn parse(raw: &str) -> Result<Self, ErrorCode> {
        let v = normalise(raw).to_lowercase();
        if v.is_empty() {
            return Err(ErrorCode::Required);
        }
        if v.len() > 254 {
            return Err(ErrorCode::TooLong);
        }
        let (local, domain) = v.rsplit_once('@').ok_or(ErrorCode::Email)?;
        let local_ok = !local.is_empty()
            && local.len() <= 64
            && local.chars().all(|c| c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~.".contains(c))
            && !local.starts_with('.')
            && !local.ends_with('.')
            && !local.contains("..");
        let labels: Vec<&str> = domain.split('.').collect();
        let domain_ok = labels.len() >= 2
            && labels.iter().all(|l| {
                !l.is_empty()
                    && l.len() <= 63
                    && !l.starts_with('-')
                    && !l.ends_with('-')
                    && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            });
        if !(local_ok && domain_ok) {
            return Err(ErrorCode::Email);
        }
        Ok(Self(v))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A Japanese postal code: seven digits, typed with or without the hyphen,
/// in full- or half-width, with or without 〒.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PostalCode(String);

impl PostalCode {
    pub fn parse(raw: &str) -> Result<Self, ErrorCode> {
        let v = normalise(raw);
        if v.is_empty() {
            return Err(ErrorCode::Required);
        }
        let v = v.trim_start_matches('〒').trim();
        let mut digits = String::with_capacity(v.len());
        digits.extend(v.chars().filter(|c| !is_dash(*c) && *c != ' '));
        let dashes = v.chars().filter(|c| is_dash(*c)).count();
        let dash_ok = dashes == 0 || (dashes == 1 && v.chars().nth(3).is_some_and(is_dash));
        if digits.len() != 7 || !digits.chars().all(|c| c.is_ascii_digit()) || !dash_ok {
            return Err(ErrorCode::PostalCode);
        }
        Ok(Self(digits))
    }
    /// `1234567`
    pub fn digits(&self) -> &str {
        &self.0
    }
    /// `123-4567`
    pub fn display(&self) -> String {
        format!("{}-{}", &self.0[..3], &self.0[3..])
    }
}

/// Hyphen-like characters people type between digits.
fn is_dash(c: char) -> bool {
    matches!(c, '-' | '‐' | '‑' | '‒' | '–' | '—' | '―' | '−' | 'ー' | 'ｰ')
}

/// A Japanese phone number: 10 or 11 digits starting with 0 (a leading +81
/// is converted), separators ignored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Phone(String);

impl Phone {
    pub fn parse(raw: &str) -> Result<Self, ErrorCode> {
        let v = normalise(raw);
        if v.is_empty() {
            return Err(ErrorCode::Required);
        }
        let mut digits = String::with_capacity(v.len());
        digits.extend(v.chars().filter(|c| !is_dash(*c) && !matches!(c, ' ' | '(' | ')' | '.')));
        if let Some(rest) = digits.strip_prefix("+81") {
            digits = format!("0{}", rest.trim_start_matches('0'));
        }
        let ok =
            digits.starts_with('0') && (10..=11).contains(&digits.len()) && digits.chars().all(|c| c.is_ascii_digit());
        if !ok {
            return Err(ErrorCode::Phone);
        }
        Ok(Self(digits))
    }
    pub fn digits(&self) -> &str {
        &self.0
    }
    /// As people write it. Mobile and IP numbers (11 digits from
    /// 070/080/090/050) and toll-free 0120 numbers have fixed groups;
    /// landline area codes vary in length, so those stay as digits.
    pub fn display(&self) -> String {
        let d = &self.0;
        if d.len() == 11 && ["070", "080", "090", "050"].iter().any(|p| d.starts_with(p)) {
            format!("{}-{}-{}", &d[..3], &d[3..7], &d[7..])
        } else if d.len() == 10 && d.starts_with("0120") {
            format!("{}-{}-{}", &d[..4], &d[4..7], &d[7..])
        } else {
            d.clone()
        }
    }
}

/// One of the 47 prefectures, stored by its Japanese name.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Prefecture(String);

pub const PREFECTURES: [&str; 47] = [
    "北海道",
    "青森県",
    "岩手県",
    "宮城県",
    "秋田県",
    "山形県",
    "福島県",
    "茨城県",
    "栃木県",
    "群馬県",
    "埼玉県",
    "千葉県",
    "東京都",
    "神奈川県",
    "新潟県",
    "富山県",
    "石川県",
    "福井県",
    "山梨県",
    "長野県",
    "岐阜県",
    "静岡県",
    "愛知県",
    "三重県",
    "滋賀県",
    "京都府",
    "大阪府",
    "兵庫県",
    "奈良県",
    "和歌山県",
    "鳥取県",
    "島根県",
    "岡山県",
    "広島県",
    "山口県",
    "徳島県",
    "香川県",
    "愛媛県",
    "高知県",
    "福岡県",
    "佐賀県",
    "長崎県",
    "熊本県",
    "大分県",
    "宮崎県",
    "鹿児島県",
    "沖縄県",
];

impl Prefecture {
    pub fn parse(raw: &str) -> Result<Self, ErrorCode> {
        let v = normalise(raw);
        if v.is_empty() {
            return Err(ErrorCode::Required);
        }
        // Accept "東京" for "東京都", "大阪" for "大阪府" and so on.
        PREFECTURES
            .iter()
            .find(|p| **p == v || (v != "京都" && p.strip_suffix(['都', '道', '府', '県']) == Some(v.as_str())))
            .or_else(|| (v == "京都").then_some(&"京都府"))
            .map(|p| Self((*p).to_string()))
            .ok_or(ErrorCode::Choice)
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A postal address in Japan.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Address {
    pub postal_code: PostalCode,
    pub prefecture: Prefecture,
    pub city: String,
    pub line1: String,
    pub line2: Option<String>,
}

impl Address {
    pub fn parse_line(raw: &str, required: bool) -> Result<Option<String>, ErrorCode> {
        let v = normalise(raw);
        if v.is_empty() {
            return if required { Err(ErrorCode::Required) } else { Ok(None) };
        }
        if v.chars().count() > 100 {
            return Err(ErrorCode::TooLong);
        }
        if v.chars().any(|c| "<>`{}\\".contains(c)) {
            return Err(ErrorCode::InvalidChars);
        }
        Ok(Some(v))
    }
}

/// The registration code (ご登録用コード) printed on the apology letter:
/// letters and digits, separators ignored, upper-cased.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RegistrationCode(String);

impl RegistrationCode {
    pub fn parse(raw: &str) -> Result<Self, ErrorCode> {
        let v = normalise(raw);
        let mut code = String::with_capacity(v.len());
        code.extend(v.chars().filter(|c| !is_dash(*c) && *c != ' ').flat_map(char::to_uppercase));
        let v = code;
        if v.is_empty() {
            return Err(ErrorCode::Required);
        }
        if !(4..=32).contains(&v.len()) || !v.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(ErrorCode::RegistrationCode);
        }
        Ok(Self(v))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn postal_codes_accept_the_usual_spellings() {
        for raw in ["1234567", "123-4567", "１２３－４５６７", "〒123-4567", "１２３ー４５６７", " 123-4567 "]
        {
            assert_eq!(PostalCode::parse(raw).unwrap().digits(), "1234567", "{raw}");
        }
        assert_eq!(PostalCode::parse("1234567").unwrap().display(), "123-4567");
    }

    #[test]
    fn malformed_postal_codes_are_refused() {
        for raw in ["123456", "12345678", "12-34567", "abc-defg", "123--4567"] {
            assert_eq!(PostalCode::parse(raw), Err(ErrorCode::PostalCode), "{raw}");
        }
        assert_eq!(PostalCode::parse(""), Err(ErrorCode::Required));
    }

    #[test]
    fn phones_are_shown_as_people_write_them() {
        let phone = |raw: &str| Phone::parse(raw).unwrap().display();
        assert_eq!(phone("09012345678"), "090-1234-5678");
        assert_eq!(phone("050-1234-5678"), "050-1234-5678");
        assert_eq!(phone("0120123456"), "0120-123-456");
        assert_eq!(phone("03-1234-5678"), "0312345678", "landline area codes vary in length");
    }

    #[test]
    fn phones_accept_separators_full_width_and_country_code() {
        assert_eq!(Phone::parse("03-1234-5678").unwrap().digits(), "0312345678");
        assert_eq!(Phone::parse("０９０（１２３４）５６７８").unwrap().digits(), "09012345678");
        assert_eq!(Phone::parse("+81 90-1234-5678").unwrap().digits(), "09012345678");
        assert_eq!(Phone::parse("12345"), Err(ErrorCode::Phone));
        assert_eq!(Phone::parse("090-1234-56789"), Err(ErrorCode::Phone));
        assert_eq!(Phone::parse("tel"), Err(ErrorCode::Phone));
    }

    #[test]
    fn emails_are_lower_cased_and_checked() {
        assert_eq!(Email::parse(" Hanako@Example.JP ").unwrap().as_str(), "hanako@example.jp");
        assert_eq!(Email::parse("ｈａｎａｋｏ＠example.jp").unwrap().as_str(), "hanako@example.jp");
        for bad in ["hanako", "a@b", "a@@b.jp", "a b@c.jp", ".a@b.jp", "a@-b.jp"] {
            assert_eq!(Email::parse(bad), Err(ErrorCode::Email), "{bad}");
        }
    }

    #[test]
    fn prefectures_accept_short_names() {
        assert_eq!(Prefecture::parse("東京").unwrap().as_str(), "東京都");
        assert_eq!(Prefecture::parse("京都").unwrap().as_str(), "京都府");
        assert_eq!(Prefecture::parse("岡山県").unwrap().as_str(), "岡山県");
        assert_eq!(Prefecture::parse("Tokyo"), Err(ErrorCode::Choice));
    }

    #[test]
    fn registration_codes_ignore_separators_and_case() {
        assert_eq!(RegistrationCode::parse("ab12-cd34").unwrap().as_str(), "AB12CD34");
        assert_eq!(RegistrationCode::parse("ＡＢ１２ＣＤ３４").unwrap().as_str(), "AB12CD34");
        assert_eq!(RegistrationCode::parse("ab!"), Err(ErrorCode::RegistrationCode));
    }

    proptest! {
        #[test]
        fn postal_code_with_and_without_hyphen_parse_alike(d in "[0-9]{7}") {
            let hyphen = format!("{}-{}", &d[..3], &d[3..]);
            let wide: String = hyphen.chars().map(|c| if c.is_ascii_digit() {
                char::from_u32(c as u32 - '0' as u32 + '０' as u32).unwrap() } else { '－' }).collect();
            let a = PostalCode::parse(&d).unwrap();
            prop_assert_eq!(&a, &PostalCode::parse(&hyphen).unwrap());
            prop_assert_eq!(&a, &PostalCode::parse(&wide).unwrap());
            prop_assert_eq!(PostalCode::parse(&a.display()).unwrap(), a);
        }

        #[test]
        fn parsed_phones_reparse_to_themselves(d in "0[0-9]{9,10}") {
            let p = Phone::parse(&d).unwrap();
            prop_assert_eq!(Phone::parse(p.digits()).unwrap(), p);
        }
    }
}
