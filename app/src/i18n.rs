//! Translation catalogue (Fluent files under `app/locales`), Japanese first
//! with English available, and the request's language. Every user-visible
//! string goes through here.
use std::borrow::Cow;
use std::collections::HashMap;

use fluent_templates::fluent_bundle::FluentValue;
use fluent_templates::{langid, LanguageIdentifier, Loader};
use rocket::request::{FromRequest, Outcome, Request};
use serde::Serialize;

fluent_templates::static_loader! {
    pub static LOCALES = {
        locales: "./locales",
        fallback_language: "ja",
        // Bidi isolation marks would end up inside HTML attributes and JSON.
        customise: |bundle| bundle.set_use_isolating(false),
    };
}

pub const LANG_COOKIE: &str = "lang";

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Lang {
    Ja,
    En,
}

impl Lang {
    pub fn code(self) -> &'static str {
        match self {
            Lang::Ja => "ja",
            Lang::En => "en",
        }
    }

    pub fn from_code(code: &str) -> Option<Self> {
        match code.trim().to_ascii_lowercase().as_str() {
            c if c == "ja" || c.starts_with("ja-") => Some(Lang::Ja),
            c if c == "en" || c.starts_with("en-") => Some(Lang::En),
            _ => None,
        }
    }

    fn id(self) -> LanguageIdentifier {
        match self {
            Lang::Ja => langid!("ja"),
            Lang::En => langid!("en"),
        }
    }

    /// The first supported language in an `Accept-Language` header.
    pub fn from_accept_language(header: &str) -> Option<Self> {
        let mut tags: Vec<(f32, &str)> = header
            .split(',')
            .filter_map(|part| {
                let mut it = part.split(';');
                let tag = it.next()?.trim();
                let q = it.find_map(|p| p.trim().strip_prefix("q=").and_then(|q| q.parse::<f32>().ok())).unwrap_or(1.0);
                Some((q, tag))
            })
            .collect();
        tags.sort_by(|a, b| b.0.partial_cmp(&a.0).unwrap_or(std::cmp::Ordering::Equal));
        tags.into_iter().find_map(|(_, tag)| Lang::from_code(tag))
    }

    /// The language of a request: the `lang` cookie, else Accept-Language, else Japanese.
    pub fn of_request(req: &Request<'_>) -> Self {
        req.cookies()
            .get(LANG_COOKIE)
            .and_then(|c| Lang::from_code(c.value()))
            .or_else(|| req.headers().get_one("Accept-Language").and_then(Lang::from_accept_language))
            .unwrap_or(Lang::Ja)
    }

    pub fn t(self, key: &str) -> String {
        LOCALES.lookup(&self.id(), key)
    }

    /// The message, if the catalogue has one.
    pub fn try_t(self, key: &str) -> Option<String> {
        LOCALES.try_lookup(&self.id(), key)
    }

    pub fn t_args(self, key: &str, args: &[(&'static str, FluentValue<'static>)]) -> String {
        let map: HashMap<Cow<'static, str>, FluentValue> =
            args.iter().map(|(k, v)| (Cow::Borrowed(*k), v.clone())).collect();
        LOCALES.lookup_with_args(&self.id(), key, &map)
    }
}

#[rocket::async_trait]
impl<'r> FromRequest<'r> for Lang {
    type Error = std::convert::Infallible;
    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, Self::Error> {
        Outcome::Success(Lang::of_request(req))
    }
}

/// The Tera function `t(key=…, lang=…)` used by every template.
pub fn tera_function() -> impl rocket_dyn_templates::tera::Function {
    fluent_templates::FluentLoader::new(&*LOCALES).with_default_lang(langid!("ja"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_language_picks_the_best_supported_tag() {
        assert_eq!(Lang::from_accept_language("en-US,en;q=0.9,ja;q=0.8"), Some(Lang::En));
        assert_eq!(Lang::from_accept_language("fr;q=1, ja;q=0.5"), Some(Lang::Ja));
        assert_eq!(Lang::from_accept_language("fr"), None);
    }

    #[test]
    fn every_key_exists_in_both_languages() {
        let ja = include_str!("../locales/ja/main.ftl");
        let en = include_str!("../locales/en/main.ftl");
        let keys = |s: &str| -> std::collections::BTreeSet<String> {
            s.lines()
                .filter(|l| !l.starts_with(' ') && !l.starts_with('#') && l.contains(" ="))
                .filter_map(|l| l.split(" =").next().map(|k| k.trim().to_string()))
                .collect()
        };
        let (kj, ke) = (keys(ja), keys(en));
        let only_ja: Vec<_> = kj.difference(&ke).collect();
        let only_en: Vec<_> = ke.difference(&kj).collect();
        assert!(only_ja.is_empty() && only_en.is_empty(), "ja only: {only_ja:?}; en only: {only_en:?}");
    }

    #[test]
    fn messages_are_translated() {
        assert_eq!(Lang::En.t("err-postal-code"), "Enter a 7-digit postal code, e.g. 123-4567.");
        assert!(Lang::Ja.t("err-postal-code").contains("郵便番号"));
    }
}
