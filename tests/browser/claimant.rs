//! Journey 1: a parent joins benesse-2014 from her phone, for herself and
//! her child, and later corrects, exports and withdraws.
use std::io::Read;

use app::i18n::Lang;

use crate::harness::{output_dir, Backends, Driver, Person, Portal, Screen};

/// The parent's answers, as she would type them.
pub const PARENT_EMAIL: &str = "hanako.yamada@example.jp";
pub const PASSWORD: &str = "kodomo to issho ni sanka suru";

/// How she moves through the pages.
#[derive(Clone, Copy, PartialEq)]
pub enum Hands {
    /// Taps and types.
    Touch,
    /// Keyboard alone: Tab to each control, type, Space to tick, Enter to press.
    KeyboardOnly,
}

/// A person at a phone who may use the keyboard alone.
struct Claimant {
    p: Person,
    hands: Hands,
}

impl Claimant {
    fn t(&self, key: &str) -> String {
        self.p.t(key)
    }

    async fn fill(&self, label_key: &str, text: &str) {
        let label = self.t(label_key);
        match self.hands {
            Hands::Touch => self.p.fill(&label, text).await,
            Hands::KeyboardOnly => {
                self.p.tab_to(&label).await;
                // Select what is there, then type over it.
                self.p.keys(&format!("\u{E009}a\u{E000}\u{E003}{text}")).await;
            }
        }
    }

    async fn date(&self, label_key: &str, iso: &str) {
        let label = self.t(label_key);
        if self.hands == Hands::KeyboardOnly {
            self.p.tab_to(&label).await;
        }
        self.p.fill_date(&label, iso).await;
    }

    async fn choose(&self, label: &str) {
        match self.hands {
            Hands::Touch => self.p.choose(label).await,
            Hands::KeyboardOnly => self.p.choose_by_keyboard(label).await,
        }
    }

    async fn select(&self, label_key: &str, option: &str) {
        let label = self.t(label_key);
        if self.hands == Hands::KeyboardOnly {
            self.p.tab_to(&label).await;
            self.p.select_by_keyboard(&label, option).await;
        } else {
            self.p.select(&label, option).await;
        }
    }

    async fn press(&self, text: &str) {
        match self.hands {
            Hands::Touch => self.p.press(text).await,
            Hands::KeyboardOnly => {
                self.p.tab_to_button(text).await;
                self.p.mark_page().await;
                self.p.keys("\u{E007}").await;
                self.p.wait_for_new_page(text).await;
                self.p.check(text).await;
            }
        }
    }

    /// Press a button whose work goes on in the page (an upload).
    async fn start(&self, text: &str) {
        match self.hands {
            Hands::Touch => self.p.start(text).await,
            Hands::KeyboardOnly => {
                self.p.tab_to_button(text).await;
                self.p.keys("\u{E007}").await;
            }
        }
    }

    async fn press_key(&self, key: &str) {
        self.press(&self.t(key)).await
    }
}

pub async fn journey(lang: Lang, hands: Hands, backends: Backends, name: &str) {
    let out = output_dir(name);
    let portal = Portal::start(&out, backends).await;
    let driver = Driver::start().await;
    let person = Person::open(&driver, &portal, Screen::Phone, lang, &out, "parent").await;
    let me = Claimant { p: person, hands };
    let catalogue = app::cases::seed::benesse_catalogue();
    let label = |l: &app::cases::Localized| l.get(lang).to_string();

    // The portal opens in Japanese; an English reader switches first.
    me.p.visit("/").await;
    me.p.sees(&catalogue.title.ja).await;
    if lang == Lang::En {
        me.press("English").await;
        me.p.sees(&catalogue.title.en).await;
    }

    // Register, with a mistake first: the error is shown and the address kept.
    me.press_key("nav-register").await;
    me.fill("register-email", PARENT_EMAIL).await;
    me.fill("register-password", "short").await;
    me.press_key("register-submit").await;
    me.p.sees(&me.t("errors-summary-title")).await;
    assert_eq!(
        me.p.control(&me.t("register-email")).await.prop("value").await.unwrap().as_deref(),
        Some(PARENT_EMAIL),
        "what she typed is kept"
    );
    me.fill("register-password", PASSWORD).await;
    me.press_key("register-submit").await;

    // The same answer whoever registers: "check your mail". She opens the
    // link from the mail on her phone, then signs in.
    me.p.sees(&me.t("check-mail-title")).await;
    let link = portal.confirmation_link(PARENT_EMAIL).await;
    me.p.visit(&link).await;
    me.p.sees(&me.t("confirm-done")).await;
    me.press_key("check-mail-sign-in").await;
    me.fill("login-email", PARENT_EMAIL).await;
    me.fill("login-password", PASSWORD).await;
    me.press_key("login-submit").await;

    // Join the case: the form that every browser was refused before.
    me.press_key("home-join").await;
    assert!(me.p.path().await.ends_with("/identity"), "joining opens the first step: {}", me.p.path().await);

    // 1. Herself.
    me.fill("field-family-name", "山田").await;
    me.fill("field-given-name", "花子").await;
    me.fill("field-family-name-kana", "ヤマダ").await;
    me.fill("field-given-name-kana", "ハナコ").await;
    me.date("field-birth-date", "1980-04-01").await;
    me.choose(&me.t("gender-female")).await;
    me.press_key("save-continue").await;

    // 2. Contact, with the postal code typed in full-width digits.
    me.fill("field-postal-code", "１６０－００２３").await;
    me.select("field-prefecture", "東京都").await;
    me.fill("field-city", "新宿区").await;
    me.fill("field-line1", "西新宿1-1-1").await;
    me.fill("field-phone", "090-1234-5678").await;
    me.fill("field-email", PARENT_EMAIL).await;
    me.press_key("save-continue").await;

    // 3. Her child, for whom she signs as legal representative (法定代理人).
    me.select("field-relation", &me.t("relation-child")).await;
    me.fill("field-family-name", "山田").await;
    me.fill("field-given-name", "太郎").await;
    me.fill("field-family-name-kana", "ヤマダ").await;
    me.fill("field-given-name-kana", "タロウ").await;
    me.date("field-birth-date", "2012-05-05").await;
    me.choose(&me.t("gender-male")).await;
    me.press_key("add-person").await;
    me.p.sees("山田 太郎").await;
    me.press_key("save-continue").await;

    // 4. The leak.
    for code in ["name", "birth_date", "address", "phone"] {
        let item = catalogue.leaked_items.iter().find(|i| i.code == code).expect("catalogue item");
        me.choose(&label(&item.label)).await;
    }
    me.choose(&label(&catalogue.services[0].label)).await;
    me.choose(&me.t("answer-yes")).await;
    me.fill("field-registration-code", "AB12-CD34").await;
    me.choose(&label(&catalogue.apology_options[1].label)).await;
    // She remembers only the month: 「2014年7月ごろ」 is an answer.
    me.fill("field-learned-of-leak-on", "2014年7月ごろ").await;
    if lang == Lang::Ja {
        me.p.keep_for_docs("phone-leak-step.png").await;
    }
    me.press_key("save-continue").await;

    // 5. A harm: direct mail from a company she never dealt with.
    me.select("field-kind", &me.t("harm-direct-mail")).await;
    // The first direct mail came before the announcement of 2014-07-09.
    me.fill("field-date", "2014-06-26").await;
    me.fill("field-sender", "サンプル教育社").await;
    me.press_key("add-harm").await;
    me.p.sees("サンプル教育社").await;
    me.press_key("save-continue").await;

    // 6. Two photos through the file picker, each with the progress bar.
    let files = tempfile::tempdir().unwrap();
    let photos = [("evidence-kind-apology-letter", "letter.jpg"), ("evidence-kind-direct-mail", "dm.jpg")];
    for (n, (kind, file)) in photos.into_iter().enumerate() {
        let photo = me.p.make_photo(files.path(), file, &me.t(kind)).await;
        me.select("field-kind", &me.t(kind)).await;
        me.p.attach(&me.t("evidence-file"), &photo).await;
        me.p.watch_progress("upload-progress").await;
        me.start(&me.t("evidence-upload")).await;
        me.p.wait_for_count("ul.cards li.card", n + 1).await;
        me.p.check("uploaded").await;
        assert_eq!(me.p.progress_seen().await.as_deref(), Some("100"), "the progress bar reached 100 %");
    }
    assert_eq!(me.p.count("ul.cards li.card").await, 2, "both photos are listed");
    me.press_key("save-continue").await;

    // 7. The three documents, signed with her name (for her child too).
    sign_every_document(&me, "山田 花子").await;
    if lang == Lang::Ja {
        me.p.keep_for_docs("phone-consent-step.png").await;
    }
    me.press_key("save-continue").await;

    // 8. Review and submit.
    me.p.sees("〒160-0023").await;
    me.p.sees(match lang {
        Lang::Ja => "2014年7月ごろ",
        Lang::En => "around July 2014",
    })
    .await;
    me.p.sees("090-1234-5678").await;
    me.press_key("submit-claim").await;
    let number = me.p.text_of(".claim-number").await;
    assert!(number.starts_with("BN-"), "a reference number: {number:?}");
    me.p.sees(&me.t("status-submitted")).await;
    if lang == Lang::Ja {
        me.p.keep_for_docs("phone-status.png").await;
    }

    // The receipt of her signatures, saved as PDF from the browser.
    me.press_key("consent-receipt").await;
    me.p.sees(&number).await;
    let pdf = me.p.save_as_pdf("receipt.pdf").await;
    assert!(pdf.starts_with(b"%PDF"), "the receipt prints to PDF");
    me.p.client.back().await.unwrap();
    me.p.settle().await;

    // Correct the address after submission.
    me.press_key("status-correct").await;
    me.press(&format!("2. {}", me.t("step-contact"))).await;
    me.fill("field-line1", "西新宿2-2-2").await;
    me.press_key("save-continue").await;
    me.press(&format!("2. {}", me.t("step-contact"))).await;
    assert_eq!(
        me.p.control(&me.t("field-line1")).await.prop("value").await.unwrap().as_deref(),
        Some("西新宿2-2-2"),
        "the correction is saved"
    );

    // 「私のデータ」: everything the portal holds about her, as a ZIP.
    me.press_key("nav-my-data").await;
    me.start(&me.t("me-export-download")).await;
    let zip = me.p.downloaded(".zip").await;
    let mut archive = zip::ZipArchive::new(std::fs::File::open(&zip).unwrap()).expect("a ZIP");
    let mut everything = String::new();
    for i in 0..archive.len() {
        let mut entry = archive.by_index(i).unwrap();
        if entry.name().unwrap_or_default().ends_with(".json") {
            entry.read_to_string(&mut everything).unwrap();
        }
    }
    assert!(everything.contains("西新宿2-2-2") && everything.contains("太郎"), "the export holds her data");
    let jpegs = (0..archive.len())
        .filter(|i| archive.by_index(*i).unwrap().name().unwrap_or_default().ends_with(".jpg"))
        .count();
    assert_eq!(jpegs, 2, "and both photos");

    // Mail in English, and no reminders.
    me.choose("English").await;
    me.p.untick(&me.t("me-mail-reminders"), me.hands == Hands::KeyboardOnly).await;
    me.press_key("me-mail-save").await;
    me.p.sees(&me.t("me-mail-saved")).await;
    let english = me.p.control("English").await.prop("checked").await.unwrap();
    let reminders = me.p.control(&me.t("me-mail-reminders")).await.prop("checked").await.unwrap();
    assert_eq!((english.as_deref(), reminders.as_deref()), (Some("true"), Some("false")), "the settings are saved");

    // Withdraw.
    me.p.visit("/").await;
    me.press_key("home-view").await;
    me.choose(&me.t("withdraw-confirm")).await;
    me.press_key("withdraw-claim").await;
    me.p.sees(&me.t("status-withdrawn")).await;

    me.p.close().await;
}

async fn sign_every_document(me: &Claimant, signer: &str) {
    let titles = me.p.texts("section.card h2").await;
    assert_eq!(titles.len(), 3, "retainer, fee terms and privacy notice: {titles:?}");
    for title in titles {
        let doc = me.p.section(&title).await;
        if me.hands == Hands::KeyboardOnly {
            me.p.choose_by_keyboard_in(&doc, &me.t("consent-agree")).await;
            me.p.tab_to_in(&doc, &me.t("field-signer-name")).await;
            me.p.keys(signer).await;
            me.p.tab_to_button_in(&doc, &me.t("consent-sign")).await;
            me.p.mark_page().await;
            me.p.keys("\u{E007}").await;
            me.p.wait_for_new_page("signed").await;
            me.p.check("signed").await;
        } else {
            me.p.choose_in(Some(&doc), &me.t("consent-agree")).await;
            me.p.fill_in(&doc, &me.t("field-signer-name"), signer).await;
            me.p.press_in(&doc, &me.t("consent-sign")).await;
        }
        let doc = me.p.section(&title).await;
        let said = doc.text().await.unwrap();
        assert!(said.contains(&me.t("consent-signed")), "{title} is signed: {said}");
    }
}
