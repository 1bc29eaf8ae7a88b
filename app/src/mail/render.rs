//! Mail text from Tera templates (`templates/mail/*.txt.tera`, compiled into
//! the binary), rendered when the mail is sent, in the recipient's
//! language. A template's first line is the subject; the rest is the body.
use std::sync::LazyLock;

use rocket_dyn_templates::tera::{Context, Tera};
use serde_json::Value;

use super::MailKind;
use crate::i18n::Lang;

macro_rules! templates {
    ($($name:literal),* $(,)?) => {
        [$(($name, include_str!(concat!("../../../templates/mail/", $name, ".txt.tera")))),*]
    };
}

static TERA: LazyLock<Result<Tera, String>> = LazyLock::new(|| {
    let mut tera = Tera::default();
    tera.autoescape_on(vec![]);
    let sources = templates![
        "base",
        "claim.info_requested",
        "claim.verified",
        "claim.rejected",
        "reminder.cure",
        "reminder.draft",
        "reminder.consent",
        "reminder.limitation",
        "staff.review_overdue",
        "staff.alerts_open",
        "account.confirm_address",
        "account.registration_attempt",
        "staff.alert_raised",
    ];
    tera.add_raw_templates(sources.iter().map(|(name, text)| (format!("mail/{name}.txt"), *text)))
        .map_err(|e| format!("mail templates: {e}"))?;
    Ok(tera)
});

/// A rendered mail.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rendered {
    pub subject: String,
    pub body: String,
}

/// Render `kind` in `lang` with its parameters and the sign-in address.
pub fn render(kind: MailKind, lang: Lang, params: &Value, public_url: &str) -> Result<Rendered, String> {
    let tera = TERA.as_ref().map_err(Clone::clone)?;
    let mut context = Context::from_value(with_dates(params, lang)).unwrap_or_default();
    context.insert("lang", lang.code());
    context.insert("sign_in", &format!("{public_url}/login"));
    context.insert("settings", &format!("{public_url}/me"));
    context.insert("optional", &kind.optional());
    let text =
        tera.render(&format!("mail/{}.txt", kind.as_str()), &context).map_err(|e| format!("mail template: {e}"))?;
    let text = text.trim_start();
    let (subject, body) = text.split_once('\n').unwrap_or((text, ""));
    Ok(Rendered { subject: subject.trim().to_string(), body: body.trim_start_matches('\n').to_string() })
}

/// Parameters that are dates (`YYYY-MM-DD`) written as the language writes them.
fn with_dates(params: &Value, lang: Lang) -> Value {
    let mut params = params.clone();
    if let Some(map) = params.as_object_mut() {
        for (_, value) in map.iter_mut() {
            let date = value.as_str().and_then(|s| chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").ok());
            if let Some(date) = date {
                let text = match lang {
                    Lang::Ja => date.format("%Y年%-m月%-d日").to_string(),
                    Lang::En => date.format("%-d %B %Y").to_string(),
                };
                *value = Value::String(text);
            }
        }
    }
    params
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_kind_renders_in_both_languages_with_a_subject_and_the_sign_in_address() {
        let params = json!({"number": "BEN-2014-000123", "deadline": "2026-12-16", "cut_off": "2027-01-31",
            "round": "第2次提訴", "last_day": "2027-02-01", "count": 3, "days": 14,
            "link": "https://portal.example.jp/confirm?token=t", "kind": "cap.claim_views"});
        for kind in MailKind::ALL {
            for lang in [Lang::Ja, Lang::En] {
                let mail = render(kind, lang, &params, "https://portal.example.jp").unwrap();
                assert!(!mail.subject.is_empty() && !mail.subject.contains('\n'), "{kind:?} {lang:?}");
                assert!(mail.body.contains("https://portal.example.jp/login"), "{kind:?} {lang:?}: {}", mail.body);
                let japanese = mail.subject.chars().any(|c| c > '\u{3000}');
                assert_eq!(japanese, lang == Lang::Ja, "{kind:?} {lang:?}: {}", mail.subject);
            }
        }
    }

    #[test]
    fn a_deficiency_notice_names_the_claim_and_deadline_and_nothing_else() {
        let params = json!({"number": "BEN-2014-000123", "deadline": "2026-12-16"});
        let mail = render(MailKind::InfoRequested, Lang::Ja, &params, "https://portal.example.jp").unwrap();
        assert!(mail.subject.contains("BEN-2014-000123"));
        assert!(mail.body.contains("2026年12月16日"), "{}", mail.body);
        let en = render(MailKind::InfoRequested, Lang::En, &params, "https://portal.example.jp").unwrap();
        assert!(en.body.contains("16 December 2026"), "{}", en.body);
    }
}
