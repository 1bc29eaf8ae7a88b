//! A person at a browser: reads labels, types, ticks, chooses, attaches
//! files, presses buttons and keys, as the journeys need.
use std::path::{Path, PathBuf};
use std::time::Duration;

use app::i18n::Lang;
use fantoccini::elements::{Element, ElementRef};
use fantoccini::wd::WebDriverCompatibleCommand;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};

use super::servers::{Driver, Portal};

/// How WebDriver marks an element in a script's result.
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A ChromeDriver extension command (`/session/{id}/{path}`).
#[derive(Debug)]
pub(super) struct Extension {
    pub(super) path: &'static str,
    pub(super) body: Value,
}

impl WebDriverCompatibleCommand for Extension {
    fn endpoint(&self, base: &url::Url, session: Option<&str>) -> Result<url::Url, url::ParseError> {
        base.join(&format!("session/{}/{}", session.unwrap_or_default(), self.path))
    }
    fn method_and_body(&self, _: &url::Url) -> (http::Method, Option<String>) {
        (http::Method::POST, Some(self.body.to_string()))
    }
}

/// The screen a person holds.
#[derive(Clone, Copy)]
pub enum Screen {
    /// 390 × 844, a common phone.
    Phone,
    /// 1280 × 900.
    Desktop,
}

impl Screen {
    pub(super) fn metrics(self) -> Value {
        match self {
            Screen::Phone => json!({"width": 390, "height": 844, "deviceScaleFactor": 2, "mobile": true}),
            Screen::Desktop => json!({"width": 1280, "height": 900, "deviceScaleFactor": 1, "mobile": false}),
        }
    }
}

/// One person at one browser.
pub struct Person {
    pub client: Client,
    pub lang: Lang,
    pub base: String,
    pub(super) screen: Screen,
    pub(super) out: PathBuf,
    pub(super) name: String,
    pub(super) shots: std::cell::Cell<u32>,
    /// Addresses that answered a form with its errors (a 4xx the browser notes).
    pub(super) error_pages: std::cell::RefCell<Vec<String>>,
    pub downloads: tempfile::TempDir,
    pub(super) axe: String,
}

impl Person {
    /// A browser session for someone who reads `lang`.
    pub async fn open(driver: &Driver, portal: &Portal, screen: Screen, lang: Lang, out: &Path, name: &str) -> Person {
        // A phone or PC in Japan: the portal opens in Japanese, and a reader
        // of English switches with the header's button.
        let accept = "ja-JP,ja";
        let caps = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into()),
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                         "--window-size=1280,900", format!("--lang={accept}")],
                "prefs": {"intl.accept_languages": accept}
            },
            "goog:loggingPrefs": {"browser": "ALL"}
        });
        let Value::Object(caps) = caps else { unreachable!("an object") };
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let client =
            ClientBuilder::new(connector).capabilities(caps).connect(&driver.url).await.expect("a browser session");
        let axe_path = std::env::var("AXE_CORE_JS").expect("AXE_CORE_JS names axe.min.js (see .ci/browser)");
        let axe = std::fs::read_to_string(&axe_path).unwrap_or_else(|e| panic!("{axe_path}: {e}"));
        let downloads = tempfile::tempdir().expect("downloads");
        let person = Person {
            client,
            lang,
            base: portal.base.clone(),
            screen,
            out: out.to_path_buf(),
            name: name.to_string(),
            shots: std::cell::Cell::new(0),
            error_pages: Default::default(),
            downloads,
            axe,
        };
        person.cdp("Emulation.setDeviceMetricsOverride", screen.metrics()).await;
        let path = person.downloads.path().display().to_string();
        person.cdp("Browser.setDownloadBehavior", json!({"behavior": "allow", "downloadPath": path})).await;
        person
    }

    /// A DevTools command through ChromeDriver.
    pub(super) async fn cdp(&self, cmd: &str, params: Value) -> Value {
        self.client
            .issue_cmd(Extension { path: "goog/cdp/execute", body: json!({"cmd": cmd, "params": params}) })
            .await
            .unwrap_or_else(|e| panic!("{cmd}: {e}"))
    }

    /// The catalogue text for `key` in this person's language.
    pub fn t(&self, key: &str) -> String {
        self.lang.t(key)
    }

    pub async fn close(self) {
        let _ = self.client.close().await;
    }

    // ---- what a person does ----

    /// Type an address into the address bar.
    pub async fn visit(&self, path: &str) {
        self.client.goto(&format!("{}{path}", self.base)).await.expect("navigate");
        self.check(path).await;
    }

    /// The path of the page shown.
    pub async fn path(&self) -> String {
        self.client.current_url().await.expect("url").path().to_string()
    }

    /// Everything the page says.
    pub async fn text(&self) -> String {
        let text = self.client.find(Locator::Css("body")).await.expect("body").text().await.expect("text");
        // Fluent isolates each placeable with U+2068/U+2069; a reader does not see them.
        text.replace(['\u{2068}', '\u{2069}'], "")
    }

    /// The page says `what` (panics with the page's text if not).
    pub async fn sees(&self, what: &str) {
        let text = self.text().await;
        assert!(text.contains(what), "{}: expected to see {what:?} on {}:\n{text}", self.name, self.path().await);
    }

    /// The control a label names: its whole text, or its text before an "(optional)" mark.
    pub async fn control(&self, label: &str) -> Element {
        self.control_in(None, label).await
    }

    async fn control_in(&self, scope: Option<&Element>, label: &str) -> Element {
        let script = r#"
            const [root, want] = [arguments[0] || document, arguments[1]];
            const norm = s => s.replace(/\s+/g, ' ').trim();
            const labels = [...root.querySelectorAll('label')];
            const l = labels.find(l => norm(l.textContent) === want)
                || labels.find(l => /^\s*[（(]/.test(norm(l.textContent).slice(want.length)) && norm(l.textContent).startsWith(want));
            return l ? (l.control || null) : null;
        "#;
        let root = scope.map(|e| serde_json::to_value(e).expect("element")).unwrap_or(Value::Null);
        let found = self.client.execute(script, vec![root, json!(label)]).await.expect("script");
        match self.element(found) {
            Some(control) => control,
            None => panic!("{}: no control labelled {label:?} on {}", self.name, self.path().await),
        }
    }

    fn element(&self, v: Value) -> Option<Element> {
        let id = v.get(ELEMENT_KEY)?.as_str()?.to_string();
        Some(Element::from_element_id(self.client.clone(), ElementRef::from(id)))
    }

    /// Clear the field a label names and type `text` into it.
    pub async fn fill(&self, label: &str, text: &str) {
        let field = self.control(label).await;
        field.clear().await.expect("clear");
        field.send_keys(text).await.expect("type");
    }

    pub async fn fill_in(&self, scope: &Element, label: &str, text: &str) {
        let field = self.control_in(Some(scope), label).await;
        field.clear().await.expect("clear");
        field.send_keys(text).await.expect("type");
    }

    /// Type a date into a date field. Headless Chromium's date fields take
    /// month, day and year in that order whatever the page's language; the
    /// value read back must be the ISO date.
    pub async fn fill_date(&self, label: &str, iso: &str) {
        let field = self.control(label).await;
        let (y, rest) = iso.split_once('-').expect("YYYY-MM-DD");
        let (m, d) = rest.split_once('-').expect("YYYY-MM-DD");
        field.clear().await.expect("clear");
        field.send_keys(&format!("{m}{d}{y}")).await.expect("type");
        assert_eq!(field.prop("value").await.expect("value").as_deref(), Some(iso), "the date field took {iso}");
    }

    /// Pick an option of the list a label names.
    pub async fn select(&self, label: &str, option: &str) {
        self.control(label).await.select_by_label(option).await.unwrap_or_else(|e| panic!("{label}: {option}: {e}"));
    }

    /// Tick a checkbox or a radio button by clicking its label.
    pub async fn choose(&self, label: &str) {
        self.choose_in(None, label).await
    }

    pub async fn choose_in(&self, scope: Option<&Element>, label: &str) {
        let script = r#"
            const [root, want] = [arguments[0] || document, arguments[1]];
            const norm = s => s.replace(/\s+/g, ' ').trim();
            return [...root.querySelectorAll('label')].find(l => norm(l.textContent) === want && l.control) || null;
        "#;
        let root = scope.map(|e| serde_json::to_value(e).expect("element")).unwrap_or(Value::Null);
        let found = self.client.execute(script, vec![root, json!(label)]).await.expect("script");
        let label_el = self.element(found).unwrap_or_else(|| panic!("{}: no choice labelled {label:?}", self.name));
        label_el.click().await.expect("click");
    }

    /// A button or link with exactly this text (or accessible name), inside `scope` if given.
    async fn clickable(&self, scope: Option<&Element>, text: &str) -> Element {
        let script = r#"
            const [root, want] = [arguments[0] || document, arguments[1]];
            const norm = s => (s || '').replace(/\s+/g, ' ').trim();
            // The page's own content before the header, buttons before links.
            const named = e => e.offsetParent !== null && (norm(e.textContent) === want || norm(e.value) === want
                || norm(e.getAttribute('aria-label')) === want);
            const main = root === document ? (document.querySelector('main') || document) : root;
            for (const scope of [main, root]) {
                for (const sel of ['button, input[type=submit]', 'a']) {
                    const found = [...scope.querySelectorAll(sel)].find(named);
                    if (found) return found;
                }
            }
            return null;
        "#;
        let root = scope.map(|e| serde_json::to_value(e).expect("element")).unwrap_or(Value::Null);
        let found = self.client.execute(script, vec![root, json!(text)]).await.expect("script");
        let here = self.path().await;
        self.element(found).unwrap_or_else(|| panic!("{}: no button or link {text:?} on {here}", self.name))
    }

    /// Press a button whose work goes on in the page (an upload): no check
    /// now, since the page is about to change under it.
    pub async fn start(&self, text: &str) {
        self.clickable(None, text).await.click().await.unwrap_or_else(|e| panic!("press {text:?}: {e}"));
    }

    /// Wait (up to 15 s) until `n` elements match a CSS selector.
    pub async fn wait_for_count(&self, css: &str, n: usize) {
        for _ in 0..150 {
            if self.count(css).await == n {
                self.settle().await;
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // Say why, if the browser knows (a blocked request, a script error).
        let path = self.path().await;
        self.browser_log_is_clean(&path).await;
        panic!("{}: waited in vain for {n} × {css} on {path}", self.name);
    }

    /// Press a button or follow a link, then check the page it leads to.
    pub async fn press(&self, text: &str) {
        let target = self.clickable(None, text).await;
        self.mark_page().await;
        target.click().await.unwrap_or_else(|e| panic!("press {text:?}: {e}"));
        self.wait_for_new_page(text).await;
        self.check(text).await;
    }

    pub async fn press_in(&self, scope: &Element, text: &str) {
        let target = self.clickable(Some(scope), text).await;
        self.mark_page().await;
        target.click().await.unwrap_or_else(|e| panic!("press {text:?}: {e}"));
        self.wait_for_new_page(text).await;
        self.check(text).await;
    }

    /// Mark the page shown, so that `wait_for_new_page` can tell when the
    /// browser has replaced it (a click returns before the next page loads).
    pub async fn mark_page(&self) {
        self.client.execute("window.__shownBefore = true", vec![]).await.expect("script");
    }

    /// Wait (up to 30 s) until the marked page is replaced and the new one has loaded.
    pub async fn wait_for_new_page(&self, after: &str) {
        for _ in 0..600 {
            let old = self.client.execute("return window.__shownBefore === true", vec![]).await;
            if let Ok(Value::Bool(false)) = old {
                self.settle().await;
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("{}: no new page after {after:?}", self.name);
    }

    /// The section (or card, or form) whose heading reads `heading`.
    pub async fn section(&self, heading: &str) -> Element {
        let script = r#"
            const want = arguments[0];
            const norm = s => s.replace(/\s+/g, ' ').trim();
            const h = [...document.querySelectorAll('h1, h2, h3')].find(h => norm(h.textContent) === want);
            return h ? h.closest('section, .card, form, li') : null;
        "#;
        let found = self.client.execute(script, vec![json!(heading)]).await.expect("script");
        match self.element(found) {
            Some(section) => section,
            None => {
                panic!("{}: no section headed {heading:?}; headings: {:?}", self.name, self.texts("h1, h2, h3").await)
            }
        }
    }

    /// Attach a file through the file picker of the field a label names.
    pub async fn attach(&self, label: &str, file: &Path) {
        self.control(label).await.send_keys(&file.display().to_string()).await.expect("attach");
    }

    /// Wait until the page has loaded.
    pub async fn settle(&self) {
        for _ in 0..200 {
            let state = self.client.execute("return document.readyState", vec![]).await;
            if state.ok().and_then(|v| v.as_str().map(str::to_string)).as_deref() == Some("complete") {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("{}: the page did not finish loading", self.name);
    }

    /// Wait (up to 30 s) until `ready` holds for the page's text.
    pub async fn wait_until(&self, what: &str, ready: impl Fn(&str) -> bool) {
        for _ in 0..300 {
            self.settle().await;
            let text = self.client.find(Locator::Css("body")).await;
            let text = match text {
                Ok(body) => body.text().await.unwrap_or_default(),
                Err(_) => String::new(), // between two pages
            };
            if ready(&text.replace(['\u{2068}', '\u{2069}'], "")) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("{}: waited in vain for {what} on {}:\n{}", self.name, self.path().await, self.text().await);
    }

    /// A file the browser downloaded, once it is complete.
    pub async fn downloaded(&self, ends_with: &str) -> PathBuf {
        // Chromium may create the file under its final name before the
        // bytes arrive (beside a `.crdownload`): wait until no download is
        // in progress and the file's size holds still between two looks.
        let mut last: Option<(PathBuf, u64)> = None;
        for _ in 0..200 {
            if let Ok(entries) = std::fs::read_dir(self.downloads.path()) {
                let entries: Vec<_> = entries.flatten().collect();
                let in_progress = entries.iter().any(|e| e.file_name().to_string_lossy().ends_with(".crdownload"));
                let done = entries.iter().find(|e| e.file_name().to_string_lossy().ends_with(ends_with));
                if let (false, Some(e)) = (in_progress, done) {
                    let size = e.metadata().map(|m| m.len()).unwrap_or(0);
                    if size > 0 && last.as_ref() == Some(&(e.path(), size)) {
                        return e.path();
                    }
                    last = Some((e.path(), size));
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("{}: no download ending in {ends_with}", self.name);
    }

    /// Press keys on the keyboard, as a person does, whatever has the focus
    /// (WebDriver key codes: Tab `\u{E004}`, Enter `\u{E007}`; Control
    /// `\u{E009}` is held until `\u{E000}` or the end).
    pub async fn keys(&self, keys: &str) {
        use fantoccini::actions::{InputSource, KeyAction, KeyActions};
        const CONTROL: char = '\u{E009}';
        const RELEASE: char = '\u{E000}';
        let mut actions = KeyActions::new("keyboard".into());
        let mut held = false;
        for c in keys.chars() {
            actions = match c {
                CONTROL => {
                    held = true;
                    actions.then(KeyAction::Down { value: CONTROL })
                }
                RELEASE if held => {
                    held = false;
                    actions.then(KeyAction::Up { value: CONTROL })
                }
                _ => actions.then(KeyAction::Down { value: c }).then(KeyAction::Up { value: c }),
            };
        }
        if held {
            actions = actions.then(KeyAction::Up { value: CONTROL });
        }
        self.client.perform_actions(actions).await.expect("keys");
    }

    /// Press Tab until the control a label names has the focus (at most 80 times).
    pub async fn tab_to(&self, label: &str) {
        let target = self.control(label).await;
        self.tab_to_element(&target, label).await;
    }

    pub async fn tab_to_in(&self, scope: &Element, label: &str) {
        let target = self.control_in(Some(scope), label).await;
        self.tab_to_element(&target, label).await;
    }

    /// Press Tab until the button or link with this text has the focus.
    pub async fn tab_to_button(&self, text: &str) {
        let target = self.clickable(None, text).await;
        self.tab_to_element(&target, text).await;
    }

    pub async fn tab_to_button_in(&self, scope: &Element, text: &str) {
        let target = self.clickable(Some(scope), text).await;
        self.tab_to_element(&target, text).await;
    }

    async fn focused(&self) -> Option<Element> {
        let focused = self.client.execute("return document.activeElement", vec![]).await.expect("script");
        self.element(focused)
    }

    async fn tab_to_element(&self, target: &Element, what: &str) {
        for _ in 0..80 {
            if self.focused().await.is_some_and(|el| el.element_id() == target.element_id()) {
                return;
            }
            self.keys("\u{E004}").await;
        }
        panic!("{}: Tab never reached {what:?}", self.name);
    }

    /// Tick a checkbox or pick a radio button with the keyboard: Tab to it
    /// (a radio group takes one Tab stop), then Space or the arrow keys.
    pub async fn choose_by_keyboard(&self, label: &str) {
        self.choose_by_keyboard_scoped(None, label).await
    }

    pub async fn choose_by_keyboard_in(&self, scope: &Element, label: &str) {
        self.choose_by_keyboard_scoped(Some(scope), label).await
    }

    async fn choose_by_keyboard_scoped(&self, scope: Option<&Element>, label: &str) {
        let script = r#"
            const [root, want] = [arguments[0] || document, arguments[1]];
            const norm = s => s.replace(/\s+/g, ' ').trim();
            const l = [...root.querySelectorAll('label')].find(l => norm(l.textContent) === want && l.control);
            return l ? l.control : null;
        "#;
        let root = scope.map(|e| serde_json::to_value(e).expect("element")).unwrap_or(Value::Null);
        let found = self.client.execute(script, vec![root, json!(label)]).await.expect("script");
        let Some(target) = self.element(found) else { panic!("{}: no choice labelled {label:?}", self.name) };
        let kind = target.attr("type").await.expect("type").unwrap_or_default();
        let group = target.attr("name").await.expect("name").unwrap_or_default();
        if kind == "radio" {
            for _ in 0..80 {
                let Some(el) = self.focused().await else { break };
                if el.attr("type").await.ok().flatten().as_deref() == Some("radio")
                    && el.attr("name").await.ok().flatten().as_deref() == Some(group.as_str())
                {
                    break;
                }
                self.keys("\u{E004}").await;
            }
            for _ in 0..20 {
                if self.focused().await.is_some_and(|el| el.element_id() == target.element_id()) {
                    break;
                }
                self.keys("\u{E015}").await; // ArrowDown moves to the next radio and picks it
            }
        } else {
            self.tab_to_element(&target, label).await;
        }
        if !target.is_selected().await.expect("selected") {
            self.keys("\u{E00D}").await; // Space
        }
        assert!(target.is_selected().await.expect("selected"), "{}: {label:?} is chosen by keyboard", self.name);
    }

    /// Clear a ticked checkbox: with the keyboard (Tab to it, Space) or by
    /// clicking its label.
    pub async fn untick(&self, label: &str, keyboard: bool) {
        let script = r#"
            const norm = s => s.replace(/\s+/g, ' ').trim();
            const l = [...document.querySelectorAll('label')].find(l => norm(l.textContent) === arguments[0] && l.control);
            return l ? l.control : null;
        "#;
        let found = self.client.execute(script, vec![json!(label)]).await.expect("script");
        let Some(target) = self.element(found) else { panic!("{}: no checkbox labelled {label:?}", self.name) };
        if target.is_selected().await.expect("selected") {
            if keyboard {
                self.tab_to_element(&target, label).await;
                self.keys("\u{E00D}").await; // Space
            } else {
                self.choose(label).await;
            }
        }
        assert!(!target.is_selected().await.expect("selected"), "{}: {label:?} is cleared", self.name);
    }

    /// With a list focused, press ArrowDown until `option` is selected.
    pub async fn select_by_keyboard(&self, label: &str, option: &str) {
        let list = self.control(label).await;
        for _ in 0..60 {
            let chosen = self
                .client
                .execute(
                    "const s = arguments[0]; return s.options[s.selectedIndex] ? s.options[s.selectedIndex].text.trim() : ''",
                    vec![serde_json::to_value(&list).expect("element")],
                )
                .await
                .expect("script");
            if chosen.as_str() == Some(option) {
                return;
            }
            self.keys("\u{E015}").await;
        }
        panic!("{}: {option:?} never came up in {label:?}", self.name);
    }

    /// Record whether the progress bar with this id shows, and its last value,
    /// across the navigation that ends an upload.
    pub async fn watch_progress(&self, id: &str) {
        let script = r#"
            const bar = document.getElementById(arguments[0]);
            sessionStorage.removeItem('progress-seen');
            new MutationObserver(() => { if (!bar.hidden) sessionStorage.setItem('progress-seen', String(bar.value)); })
              .observe(bar, {attributes: true});
        "#;
        self.client.execute(script, vec![json!(id)]).await.expect("script");
    }

    pub async fn progress_seen(&self) -> Option<String> {
        let v = self.client.execute("return sessionStorage.getItem('progress-seen')", vec![]).await.expect("script");
        v.as_str().map(str::to_string)
    }

    /// How many elements match a CSS selector.
    pub async fn count(&self, css: &str) -> usize {
        self.client.find_all(Locator::Css(css)).await.expect("find").len()
    }

    /// The text of the first element matching a CSS selector.
    pub async fn text_of(&self, css: &str) -> String {
        let el = self.client.find(Locator::Css(css)).await.unwrap_or_else(|e| panic!("{css}: {e}"));
        el.text().await.expect("text").trim().to_string()
    }

    /// The texts of every element matching a CSS selector.
    pub async fn texts(&self, css: &str) -> Vec<String> {
        let mut out = vec![];
        for el in self.client.find_all(Locator::Css(css)).await.expect("find") {
            out.push(el.text().await.expect("text").trim().to_string());
        }
        out
    }

    /// Print the page to PDF, as "Save as PDF" does; kept in the output directory.
    pub async fn save_as_pdf(&self, name: &str) -> Vec<u8> {
        let pdf = self.client.print(Default::default()).await.expect("print");
        std::fs::write(self.out.join(name), &pdf).expect("write PDF");
        pdf
    }
}

/// A rendered photo: the browser draws `caption` on a noisy canvas and
/// encodes it as JPEG (decodable, so previews really show), saved as `name`.
impl Person {
    pub async fn make_photo(&self, dir: &Path, name: &str, caption: &str) -> PathBuf {
        let script = r#"
            const [w, h, caption] = arguments;
            const c = document.createElement('canvas');
            c.width = w; c.height = h;
            const g = c.getContext('2d');
            const img = g.createImageData(w, h);
            for (let i = 0; i < img.data.length; i += 4) {
              const v = 200 + Math.floor(Math.random() * 55);
              img.data[i] = v; img.data[i + 1] = v; img.data[i + 2] = v - 20; img.data[i + 3] = 255;
            }
            g.putImageData(img, 0, 0);
            g.fillStyle = '#222'; g.font = '64px sans-serif';
            g.fillText(caption, 60, 160);
            return c.toDataURL('image/jpeg', 0.92).split(',')[1];
        "#;
        let b64 = self.client.execute(script, vec![json!(900), json!(1200), json!(caption)]).await.expect("canvas");
        use base64::Engine;
        let bytes = base64::engine::general_purpose::STANDARD.decode(b64.as_str().expect("base64")).expect("a JPEG");
        let path = dir.join(name);
        std::fs::write(&path, bytes).expect("photo");
        path
    }
}
