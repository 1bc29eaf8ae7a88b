use serde::{Deserialize, Serialize};

use super::{hiragana_to_katakana, normalise, ErrorCode};

const MAX_NAME_CHARS: usize = 40;

/// A family or given name as written (kanji, kana or Latin letters).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PersonName(String);

impl PersonName {
    pub fn parse(raw: &str) -> Result<Self, ErrorCode> {
        let v = normalise(raw);
        if v.is_empty() {
            return Err(ErrorCode::Required);
        }
        if v.chars().count() > MAX_NAME_CHARS {
            return Err(ErrorCode::TooLong);
        }
        if v.chars().any(|c| c.is_ascii_digit() || "<>\"`{}[]\\;=@#$%^*_|~".contains(c)) {
            return Err(ErrorCode::InvalidChars);
        }
        Ok(Self(v))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A furigana reading, accepted in hiragana or katakana (full- or
/// half-width) and stored as full-width katakana.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct KanaName(String);

impl KanaName {
    pub fn parse(raw: &str) -> Result<Self, ErrorCode> {
        let v = hiragana_to_katakana(&normalise(raw));
        if v.is_empty() {
            return Err(ErrorCode::Required);
        }
        if v.chars().count() > MAX_NAME_CHARS {
            return Err(ErrorCode::TooLong);
        }
        let ok = v.chars().all(|c| matches!(c, '\u{30A1}'..='\u{30F6}' | 'ー' | '・' | 'ヽ' | 'ヾ' | ' '));
        if !ok {
            return Err(ErrorCode::Kana);
        }
        Ok(Self(v))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
    /// The form used in blind indexes: no spaces or middle dots.
    pub fn index_form(&self) -> String {
        let mut out = String::with_capacity(self.0.len());
        out.extend(self.0.chars().filter(|c| *c != ' ' && *c != '・'));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn kana_is_stored_as_katakana() {
        assert_eq!(KanaName::parse("やまだ").unwrap().as_str(), "ヤマダ");
        assert_eq!(KanaName::parse("ﾔﾏﾀﾞ").unwrap().as_str(), "ヤマダ");
        assert_eq!(KanaName::parse(" ヤマダ ").unwrap().as_str(), "ヤマダ");
        assert_eq!(KanaName::parse("すずき　いちろう").unwrap().index_form(), "スズキイチロウ");
    }

    #[test]
    fn kanji_or_latin_in_a_kana_field_is_refused() {
        assert_eq!(KanaName::parse("山田"), Err(ErrorCode::Kana));
        assert_eq!(KanaName::parse("yamada"), Err(ErrorCode::Kana));
        assert_eq!(KanaName::parse("   "), Err(ErrorCode::Required));
    }

    #[test]
    fn names_refuse_digits_markup_and_excess_length() {
        assert_eq!(PersonName::parse("山田").unwrap().as_str(), "山田");
        assert_eq!(PersonName::parse("Ｙａｍａｄａ").unwrap().as_str(), "Yamada");
        assert_eq!(PersonName::parse("<b>"), Err(ErrorCode::InvalidChars));
        assert_eq!(PersonName::parse("山田1"), Err(ErrorCode::InvalidChars));
        assert_eq!(PersonName::parse(&"あ".repeat(41)), Err(ErrorCode::TooLong));
        assert_eq!(PersonName::parse(""), Err(ErrorCode::Required));
    }

    proptest! {
        #[test]
        fn hiragana_and_katakana_spellings_parse_alike(s in "[ぁ-ゖ]{1,20}") {
            let kata = super::hiragana_to_katakana(&s);
            prop_assert_eq!(KanaName::parse(&s).unwrap(), KanaName::parse(&kata).unwrap());
        }

        #[test]
        fn parsed_kana_reparses_to_itself(s in "[ぁ-ゖァ-ヶー]{1,20}") {
            let k = KanaName::parse(&s).unwrap();
            prop_assert_eq!(KanaName::parse(k.as_str()).unwrap(), k);
        }
    }
}
