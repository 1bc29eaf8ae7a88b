use serde::{Deserialize, Serialize};

use crate::i18n::Lang;

/// Text in Japanese and English.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Localized {
    pub ja: String,
    pub en: String,
}

impl Localized {
    pub fn get(&self, lang: Lang) -> &str {
        match lang {
            Lang::Ja => &self.ja,
            Lang::En => &self.en,
        }
    }
}

/// One entry of a closed list (a leaked item, a service, an apology option).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Option {
    pub code: String,
    pub label: Localized,
}

/// What a case is, as configuration stored with it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Catalogue {
    pub title: Localized,
    pub defendant: Localized,
    pub summary: Localized,
    /// When the leak became public; harms and "learned of" dates start here.
    pub leak_disclosed_on: chrono::NaiveDate,
    pub leaked_items: Vec<Option>,
    pub services: Vec<Option>,
    pub apology_options: Vec<Option>,
    pub apology_option_deadline: core::option::Option<chrono::NaiveDate>,
    /// The amount claimed per person, shown before signing (yen).
    #[serde(default)]
    pub claimed_per_person_yen: core::option::Option<u64>,
    /// What courts awarded per person in comparable cases (yen), shown
    /// beside the amount claimed so that no promise is implied.
    #[serde(default)]
    pub precedent_awards_yen: Vec<u64>,
}

impl Catalogue {
    pub fn leaked_item_codes(&self) -> Vec<String> {
        self.leaked_items.iter().map(|o| o.code.clone()).collect()
    }
    pub fn service_codes(&self) -> Vec<String> {
        self.services.iter().map(|o| o.code.clone()).collect()
    }
    pub fn apology_option_codes(&self) -> Vec<String> {
        self.apology_options.iter().map(|o| o.code.clone()).collect()
    }
}
