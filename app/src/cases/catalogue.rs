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
    /// When the leak became public.
    pub leak_disclosed_on: chrono::NaiveDate,
    /// When the data began to be taken: harm dates may not be earlier. Public
    /// sources rarely say; the firm sets it, well before the first harms.
    #[serde(default)]
    pub leak_began_on: core::option::Option<chrono::NaiveDate>,
    /// When the first harms (direct mail, calls) were seen: nobody learned of
    /// the leak before this.
    #[serde(default)]
    pub first_harms_on: core::option::Option<chrono::NaiveDate>,
    /// When the defendant's apology letters went out, where known.
    #[serde(default)]
    pub apology_letters_sent_on: core::option::Option<chrono::NaiveDate>,
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
    /// When claimants are reminded (the case's reminder schedule).
    #[serde(default)]
    pub reminders: ReminderSchedule,
}

/// A case's reminder schedule, in days before each deadline. Each reminder
/// goes once per claim and deadline; a claimant can turn reminders off.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReminderSchedule {
    /// Before a deficiency notice's cure deadline.
    #[serde(default = "default_cure_days")]
    pub cure_days_before: Vec<u32>,
    /// Before the cut-off of the next open filing round, for unsubmitted drafts.
    #[serde(default = "default_draft_days")]
    pub draft_days_before_cut_off: Vec<u32>,
    /// Before the limitation period ends, for claims not yet in a frozen round.
    #[serde(default = "default_limitation_days")]
    pub limitation_days_before: u32,
}

fn default_cure_days() -> Vec<u32> {
    vec![7, 2]
}
fn default_draft_days() -> Vec<u32> {
    vec![14, 3]
}
fn default_limitation_days() -> u32 {
    90
}

impl Default for ReminderSchedule {
    fn default() -> Self {
        Self {
            cure_days_before: default_cure_days(),
            draft_days_before_cut_off: default_draft_days(),
            limitation_days_before: default_limitation_days(),
        }
    }
}

impl ReminderSchedule {
    /// The reminder due on `today` for a deadline: the step (days before)
    /// whose day has come and is nearest the deadline. `None` before the
    /// first step or after the deadline.
    pub fn due_step(steps: &[u32], deadline: chrono::NaiveDate, today: chrono::NaiveDate) -> core::option::Option<u32> {
        let left = (deadline - today).num_days();
        if left < 0 {
            return None;
        }
        steps.iter().copied().filter(|d| i64::from(*d) >= left).min()
    }
}

/// The closed lists of a case whose codes people read as labels.
#[derive(Clone, Copy, Debug)]
pub enum List {
    LeakedItems,
    Services,
    ApologyOptions,
}

/// Keys of the case timeline in the stored catalogue (see `Catalogue`).
pub const TIMELINE_KEYS: [&str; 3] = ["leak_began_on", "first_harms_on", "apology_letters_sent_on"];

impl Catalogue {
    /// What a person reads for a code of one of the case's lists, in their
    /// language. A code the catalogue no longer has is shown as stored.
    pub fn label(&self, list: List, code: &str, lang: Lang) -> String {
        let options = match list {
            List::LeakedItems => &self.leaked_items,
            List::Services => &self.services,
            List::ApologyOptions => &self.apology_options,
        };
        options
            .iter()
            .find(|o| o.code == code)
            .map(|o| o.label.get(lang).to_string())
            .unwrap_or_else(|| code.to_string())
    }

    /// The earliest date a harm may have: when the leak began (the
    /// disclosure, for a case that does not say).
    pub fn harms_from(&self) -> chrono::NaiveDate {
        self.leak_began_on.unwrap_or(self.leak_disclosed_on)
    }
    /// The earliest date anyone learned of the leak: the first harms, else
    /// the disclosure.
    pub fn learned_from(&self) -> chrono::NaiveDate {
        self.first_harms_on.unwrap_or(self.leak_disclosed_on)
    }

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
