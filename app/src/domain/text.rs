use unicode_normalization::{IsNormalized, UnicodeNormalization};

/// NFKC, trimmed, inner runs of white space folded to one ASCII space, and
/// control characters removed. Full-width digits and letters become ASCII;
/// half-width katakana become full-width.
pub fn normalise(raw: &str) -> String {
    // NFKC leaves ASCII and text already in NFKC unchanged: skip it then
    // (the quick check answers "yes" only when it is sure).
    let nfkc: std::borrow::Cow<'_, str> =
        if raw.is_ascii() || unicode_normalization::is_nfkc_quick(raw.chars()) == IsNormalized::Yes {
            std::borrow::Cow::Borrowed(raw)
        } else {
            let mut out = String::with_capacity(raw.len());
            out.extend(raw.nfkc());
            std::borrow::Cow::Owned(out)
        };
    let mut out = String::with_capacity(nfkc.len());
    let mut pending_space = false;
    for c in nfkc.chars() {
        if c.is_whitespace() {
            pending_space = !out.is_empty();
        } else if c.is_control() {
            continue;
        } else {
            if pending_space {
                out.push(' ');
                pending_space = false;
            }
            out.push(c);
        }
    }
    out
}

/// Hiragana → katakana (ぁ..ゖ and ゝゞ shift by 0x60); other characters unchanged.
pub fn hiragana_to_katakana(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    out.extend(s.chars().map(|c| match c {
        '\u{3041}'..='\u{3096}' | '\u{309D}'..='\u{309E}' => char::from_u32(c as u32 + 0x60).unwrap_or(c),
        _ => c,
    }));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn full_width_digits_and_spaces_normalise() {
        assert_eq!(normalise("　１２３　 ４５ "), "123 45");
        assert_eq!(normalise("ﾔﾏﾀﾞ"), "ヤマダ");
        assert_eq!(hiragana_to_katakana("やまだ たろう"), "ヤマダ タロウ");
    }

    proptest! {
        #[test]
        fn normalising_is_idempotent(s in "\\PC*") {
            let once = normalise(&s);
            prop_assert_eq!(normalise(&once), once.clone());
        }

        #[test]
        fn normalised_text_has_no_edge_or_double_spaces(s in "[ 　a-zあ-ん\\t]{0,30}") {
            let n = normalise(&s);
            prop_assert!(!n.starts_with(' ') && !n.ends_with(' ') && !n.contains("  "));
        }

        #[test]
        fn katakana_conversion_is_idempotent(s in "[ぁ-ゖァ-ヶー ]{0,20}") {
            let once = hiragana_to_katakana(&s);
            prop_assert_eq!(hiragana_to_katakana(&once), once);
        }
    }
}
