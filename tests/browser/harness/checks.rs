//! What every page a person reaches must pass (`Person::check`).
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use super::person::{Extension, Person};

/// axe-core rules turned off, each with its reason. None: every WCAG 2.0
/// and 2.1 A/AA rule runs.
const AXE_RULES_OFF: &[(&str, &str)] = &[];

impl Person {
    /// The checks every page a person reaches must pass, then a screenshot.
    pub async fn check(&self, step: &str) {
        self.settle().await;
        let path = self.path().await;
        self.browser_log_is_clean(&path).await;
        self.axe_finds_nothing_serious(&path).await;
        self.no_horizontal_scroll_at_320(&path).await;
        self.screenshot(step).await;
    }

    /// No JavaScript error and no CSP violation since the last check. The
    /// browser notes a 4xx answer to a form it posted; that is allowed for
    /// an address that showed the form again with its errors.
    pub(super) async fn browser_log_is_clean(&self, path: &str) {
        let shows_error = self
            .client
            .execute("return !!document.querySelector('.error-summary, .error')", vec![])
            .await
            .ok()
            .and_then(|v| v.as_bool())
            .unwrap_or(false);
        if shows_error {
            self.error_pages.borrow_mut().push(format!(
                "{}{path} - Failed to load resource: the server responded with a status of 4",
                self.base
            ));
        }
        let log = self
            .client
            .issue_cmd(Extension { path: "se/log", body: json!({"type": "browser"}) })
            .await
            .expect("browser log");
        let allowed = self.error_pages.borrow();
        let problems: Vec<String> = log
            .as_array()
            .into_iter()
            .flatten()
            .filter(|e| {
                e["level"] == "SEVERE" || e["message"].as_str().unwrap_or_default().contains("Content Security Policy")
            })
            .map(|e| e["message"].as_str().unwrap_or_default().to_string())
            .filter(|m| !allowed.iter().any(|a| m.starts_with(a.as_str())))
            .collect();
        assert!(problems.is_empty(), "{}: browser errors on {path}: {problems:#?} (allowed: {allowed:?})", self.name);
    }

    async fn axe_finds_nothing_serious(&self, path: &str) {
        self.client.execute(&self.axe, vec![]).await.expect("axe-core loads");
        let off: serde_json::Map<String, Value> =
            AXE_RULES_OFF.iter().map(|(rule, _why)| (rule.to_string(), json!({"enabled": false}))).collect();
        let script = r#"
            const done = arguments[arguments.length - 1];
            axe.run(document, {runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']}, rules: arguments[0]})
              .then(r => done(r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
                   nodes: v.nodes.slice(0, 5).map(n => n.target.join(' '))}))))
              .catch(e => done([{id: 'axe-error', impact: 'critical', help: String(e), nodes: []}]));
        "#;
        let found = self.client.execute_async(script, vec![Value::Object(off)]).await.expect("axe runs");
        let serious: Vec<&Value> = found
            .as_array()
            .into_iter()
            .flatten()
            .filter(|v| matches!(v["impact"].as_str(), Some("serious" | "critical")))
            .collect();
        assert!(serious.is_empty(), "{}: accessibility findings on {path}: {serious:#?}", self.name);
    }

    /// At 320 CSS px (the narrowest phones) nothing makes the page wider
    /// than the screen: a mobile browser would zoom out or scroll sideways.
    async fn no_horizontal_scroll_at_320(&self, path: &str) {
        self.cdp(
            "Emulation.setDeviceMetricsOverride",
            json!({"width": 320, "height": 640, "deviceScaleFactor": 2, "mobile": true}),
        )
        .await;
        let script = r#"
            const d = document.documentElement;
            const wide = [...document.querySelectorAll('body *')]
              .filter(e => e.getBoundingClientRect().right > d.clientWidth + 1)
              .slice(0, 5).map(e => e.tagName.toLowerCase() + (e.id ? '#' + e.id : '') + (e.className ? '.' + e.className : ''));
            return {screen: screen.width, inner: window.innerWidth, scroll: d.scrollWidth, client: d.clientWidth, wide};
        "#;
        let m = self.client.execute(script, vec![]).await.expect("sizes");
        self.cdp("Emulation.setDeviceMetricsOverride", self.screen.metrics()).await;
        assert_eq!(m["screen"], 320, "the 320 px screen took effect");
        let fits = m["inner"] == 320 && m["scroll"].as_f64() <= m["client"].as_f64();
        assert!(fits, "{}: {path} is wider than a 320 px screen: {m}", self.name);
    }

    /// Save a screenshot of the page under the journey's output directory,
    /// named after the page's path (ids left out) and the step.
    pub async fn screenshot(&self, step: &str) -> PathBuf {
        let n = self.shots.get() + 1;
        self.shots.set(n);
        let path = self.path().await;
        let words: Vec<String> = path
            .split('/')
            // A query (a link's token) names nothing a reader needs.
            .chain(step.split('?').next().unwrap_or_default().split(|c: char| !c.is_ascii_alphanumeric()))
            .filter(|w| !w.is_empty() && uuid::Uuid::parse_str(w).is_err() && w.is_ascii())
            .map(|w| w.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '-' }).collect())
            .collect();
        let mut slug = if words.is_empty() { "home".to_string() } else { words.join("-") };
        slug.truncate(80);
        let file = self.out.join(format!("{}-{n:02}-{slug}.png", self.name));
        let png = self.client.screenshot().await.expect("screenshot");
        std::fs::write(&file, png).expect("write screenshot");
        file
    }

    /// Keep the current screen for the README (`PORTAL_DOCS_SCREENSHOTS=dir`).
    pub async fn keep_for_docs(&self, name: &str) {
        if let Ok(dir) = std::env::var("PORTAL_DOCS_SCREENSHOTS") {
            std::fs::create_dir_all(&dir).expect("docs directory");
            // The top of the page, with nothing focused, as a person first sees it.
            self.client.execute("document.activeElement.blur(); window.scrollTo(0, 0)", vec![]).await.expect("script");
            let png = self.client.screenshot().await.expect("screenshot");
            std::fs::write(Path::new(&dir).join(name), png).expect("write screenshot");
        }
    }
}
