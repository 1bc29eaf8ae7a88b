//! Labels, never codes, where a person reads: every claimant and staff page
//! is rendered in Japanese and no whole text node may be a catalogue code or
//! a list of them.
use app::auth::Role;
use portal::{complete_draft, spawn_app, Browser, Page};
use reqwest::StatusCode;

/// Every code a page could leak: the case's lists and the portal's own enums.
fn codes() -> Vec<String> {
    let catalogue = app::cases::seed::benesse_catalogue();
    let mut codes: Vec<String> = [&catalogue.leaked_items, &catalogue.services, &catalogue.apology_options]
        .into_iter()
        .flatten()
        .map(|o| o.code.clone())
        .collect();
    let fixed = [
        "draft",
        "submitted",
        "needs_info",
        "verified",
        "rejected",
        "withdrawn",
        "erased",
        "self",
        "child",
        "spouse",
        "parent",
        "female",
        "male",
        "unanswered",
        "direct_mail",
        "call",
        "fraud",
        "apology_letter",
        "call_log",
        "retainer",
        "fee_terms",
        "privacy_notice",
        "request_info",
        "verify",
        "reject",
        "open",
        "frozen",
        "filed",
        "queued",
        "running",
        "done",
        "failed",
        "account.created",
        "claim.created",
        "claim.viewed",
        "auth.login",
    ];
    codes.extend(fixed.iter().map(|c| c.to_string()));
    codes
}

/// Text nodes that are a code, or a list of codes, on this page.
fn codes_shown(page: &Page, codes: &[String]) -> Vec<String> {
    let doc = page.doc();
    let mut found = vec![];
    for node in doc.root_element().descendants() {
        let Some(text) = node.value().as_text() else { continue };
        // Program text and typed input are not labels.
        let inside = |tag: &str| node.ancestors().any(|a| a.value().as_element().is_some_and(|e| e.name() == tag));
        if ["code", "textarea", "script", "style", "title"].iter().any(|t| inside(t)) {
            continue;
        }
        let text = text.trim();
        if text.is_empty() {
            continue;
        }
        let parts: Vec<&str> = text.split([',', '、']).map(str::trim).filter(|p| !p.is_empty()).collect();
        if !parts.is_empty() && parts.iter().all(|p| codes.iter().any(|c| c == p)) {
            found.push(text.to_string());
        }
    }
    found
}

async fn visit(browser: &Browser, path: &str, codes: &[String], shown: &mut Vec<String>) -> Page {
    let page = browser.get(path).await;
    assert_eq!(page.status, StatusCode::OK, "{path}");
    for text in codes_shown(&page, codes) {
        shown.push(format!("{path}: {text:?}"));
    }
    page
}

#[tokio::test]
async fn no_page_shows_a_code_where_a_person_reads() {
    let app = spawn_app().await;
    let codes = codes();
    let mut shown = vec![];

    // A claimant with a submitted claim.
    let (_, claim) =
        app.submitted_claim("labels@example.jp", complete_draft("やまだ", "1980-04-01"), "山田 花子").await;
    let claimant = app.browser_signed_in("labels@example.jp", "correct horse battery staple").await;
    for step in app::intake::pages::STEPS {
        visit(&claimant, &format!("/claims/{claim}/{step}"), &codes, &mut shown).await;
    }
    for path in ["/".to_string(), format!("/claims/{claim}"), format!("/claims/{claim}/consent/receipt"), "/me".into()]
    {
        visit(&claimant, &path, &codes, &mut shown).await;
    }

    // A lawyer on the case, with the second factor, reads it (which also
    // puts a staff read into the claimant's access log).
    drop(app.staff("labels.lawyer@example.jp", Role::Lawyer).await);
    app.add_to_case("labels.lawyer@example.jp").await;
    let lawyer = app.browser_signed_in("labels.lawyer@example.jp", "staff password long enough").await;
    let page = lawyer.get("/review").await;
    let enrol = lawyer.submit(&page, "/staff/second-factor/setup", &[]).await;
    let secret = enrol.texts("code.secret").pop().expect("the key is shown");
    let code = portal::totp_code(&secret, 0);
    lawyer.submit(&enrol, "/staff/second-factor", &[("code", code.as_str())]).await;
    visit(&lawyer, "/review", &codes, &mut shown).await;
    visit(&lawyer, &format!("/review/claims/{claim}"), &codes, &mut shown).await;
    visit(&claimant, "/me", &codes, &mut shown).await;

    // An administrator's pages, with a round computed over the claim.
    let (admin_api, secret) = app.staff_verified("labels.admin@example.jp", Role::Admin).await;
    let today = app::today_of(chrono::Utc::now());
    let round = admin_api
        .post(
            "/admin/cases/benesse-2014/rounds",
            serde_json::json!({"name": "第1次提訴", "court": "東京地方裁判所",
                "cut_off": (today + chrono::Days::new(30)).to_string(),
                "filing_date": (today + chrono::Days::new(60)).to_string()}),
        )
        .await;
    assert_eq!(round.status, StatusCode::CREATED, "{:?}", round.body);
    let round_id = round.body["id"].as_str().expect("round id").to_string();
    let policy = serde_json::to_value(app::rounds::domain::benesse_default_policy()).unwrap();
    let r = admin_api.put(&format!("/admin/rounds/{round_id}/policy"), policy).await;
    assert!(r.status.is_success(), "{:?}", r.body);
    let r = admin_api.post(&format!("/admin/rounds/{round_id}/compute"), serde_json::json!({})).await;
    assert!(r.status.is_success(), "{:?}", r.body);
    let admin = app.staff_browser_enrolled("labels.admin@example.jp", &secret).await;
    visit(&admin, &format!("/admin/rounds/{round_id}"), &codes, &mut shown).await;
    for path in [
        "/admin",
        "/admin/cases/benesse-2014/documents",
        "/admin/cases/benesse-2014/members",
        "/admin/cases/benesse-2014/rounds",
        "/admin/alerts",
    ] {
        visit(&admin, path, &codes, &mut shown).await;
    }

    assert!(shown.is_empty(), "codes where a person reads: {shown:#?}");
}

#[test]
fn the_check_finds_a_code_and_a_list_of_codes() {
    let codes = codes();
    let page = |html: &str| Page { status: StatusCode::OK, url: String::new(), html: html.to_string() };
    let found = codes_shown(&page("<dl><dd>emoney_500</dd><dd>name, name_kana, gender</dd><dd>氏名</dd></dl>"), &codes);
    assert_eq!(found, vec!["emoney_500", "name, name_kana, gender"]);
    assert!(
        codes_shown(&page("<p>電子マネー（500円分）</p><code>name</code><textarea>name</textarea>"), &codes).is_empty()
    );
}
