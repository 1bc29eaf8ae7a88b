//! Journeys 2 and 3: a lawyer reviews a claim with a deficiency notice that
//! the claimant cures, and an administrator takes a verified claim through a
//! filing round to the bundle. What a journey needs that journey 1 already
//! shows in pages (a submitted claim) is set up through the API and the CLI.
use std::io::Read;
use std::path::Path;

use app::i18n::Lang;
use serde_json::json;

use crate::harness::{output_dir, Backends, Driver, Person, Portal, Screen};

const PASSWORD: &str = "correct horse battery staple";
const CLAIMANT: &str = "claimant@example.jp";
const LAWYER: &str = "bengoshi@example.jp";
/// The password the administrator chooses in place of the generated one.
const ADMIN_PASSWORD: &str = "a password the administrator chose";

/// A claimant's API client against the running portal.
async fn api_client(portal: &Portal, email: &str) -> portal::ApiClient {
    let anon = portal::ApiClient { base: portal.base.clone(), http: reqwest::Client::new(), token: None, lang: "ja" };
    let reply = anon.post("/auth/login", json!({"email": email, "password": PASSWORD})).await;
    assert!(reply.status.is_success(), "sign in {email}: {:?}", reply.body);
    let token = reply.body["token"].as_str().expect("token").to_string();
    portal::ApiClient { token: Some(token), ..anon }
}

/// A claim filled, signed and submitted through the API, with two photos.
async fn submitted_claim(portal: &Portal, photos: &[(&str, &Path)]) -> (portal::ApiClient, String) {
    let anon = portal::ApiClient { base: portal.base.clone(), http: reqwest::Client::new(), token: None, lang: "ja" };
    let reply = anon.post("/auth/register", json!({"email": CLAIMANT, "password": PASSWORD})).await;
    assert!(reply.status.is_success(), "register: {:?}", reply.body);
    // The link from the mail, opened as the claimant would.
    let link = portal.confirmation_link(CLAIMANT).await;
    let opened = reqwest::get(format!("{}{link}", portal.base)).await.expect("confirm");
    assert!(opened.status().is_success(), "confirm: {}", opened.status());
    let api = api_client(portal, CLAIMANT).await;
    let id = api.post("/claims", json!({"case": "benesse-2014"})).await.body["id"].as_str().expect("id").to_string();
    let r = api.put(&format!("/claims/{id}"), portal::complete_draft("やまだ", "1980-04-01")).await;
    assert!(r.status.is_success(), "draft: {:?}", r.body);
    for (kind, path) in photos {
        let bytes = std::fs::read(path).expect("photo");
        let r = api.upload(&format!("/claims/{id}/evidence"), kind, bytes, "photo.jpg", None).await;
        assert!(r.status.is_success(), "upload: {:?}", r.body);
    }
    api.sign_all(&id).await;
    let r = api.post(&format!("/claims/{id}/submit"), json!({})).await;
    assert!(r.status.is_success(), "submit: {:?}", r.body);
    (api, id)
}

async fn sign_in(who: &Person, email: &str, password: &str) {
    who.visit("/login").await;
    who.fill(&who.t("login-email"), email).await;
    who.fill(&who.t("login-password"), password).await;
    who.press(&who.t("login-submit")).await;
    assert_eq!(who.path().await, "/", "signed in");
}

/// Enrol an authenticator from the QR page: the test is the authenticator.
async fn enrol_second_factor(who: &Person) {
    who.visit("/staff/second-factor").await;
    who.press(&who.t("mfa-start")).await;
    assert_eq!(who.count(".qr svg").await, 1, "a QR code to scan");
    let secret = who.text_of("code.secret").await;
    who.fill(&who.t("mfa-code"), &portal::totp_code(&secret, 0)).await;
    who.press(&who.t("mfa-verify")).await;
    assert_eq!(who.path().await, "/review", "verified, the desk opens");
}

pub async fn lawyer_journey() {
    let out = output_dir("lawyer");
    let portal = Portal::start(&out, Backends::default()).await;
    let driver = Driver::start().await;
    let lawyer = Person::open(&driver, &portal, Screen::Desktop, Lang::Ja, &out, "lawyer").await;
    lawyer.visit("/").await;
    let files = tempfile::tempdir().unwrap();
    let letter = lawyer.make_photo(files.path(), "letter.jpg", "おわびの手紙").await;
    let dm = lawyer.make_photo(files.path(), "dm.jpg", "ダイレクトメール").await;
    let (_, claim_id) = submitted_claim(&portal, &[("apology_letter", &letter), ("direct_mail", &dm)]).await;
    portal.cli(&["user", "create", "--email", LAWYER, "--role", "lawyer", "--password-stdin"], PASSWORD);
    portal.cli(&["case", "add-member", "--case", "benesse-2014", "--email", LAWYER], "");

    sign_in(&lawyer, LAWYER, PASSWORD).await;
    enrol_second_factor(&lawyer).await;

    // The queue, filtered to submitted claims.
    lawyer.press(&lawyer.t("nav-review")).await;
    lawyer.select(&lawyer.t("claim-status"), &lawyer.t("status-submitted")).await;
    lawyer.press(&lawyer.t("desk-apply")).await;
    assert!(lawyer.path().await.starts_with("/review"), "the filter stays on the queue");
    let numbers = lawyer.texts("table.queue tbody th").await;
    assert_eq!(numbers.len(), 1, "one submitted claim: {numbers:?}");

    // The claim and its photos.
    lawyer.press(&numbers[0]).await;
    lawyer.sees("山田 花子").await;
    let shown = lawyer
        .client
        .execute(
            "return [...document.querySelectorAll('.evidence-previews img')].map(i => i.complete && i.naturalWidth > 0)",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(shown, json!([true, true]), "both photos are shown");

    // A deficiency notice with a cure deadline.
    lawyer.choose(&lawyer.t("decision-request-info")).await;
    lawyer
        .fill(
            &lawyer.t("desk-reason"),
            "おわびの手紙の写真が不鮮明です。ご登録用コードが読める写真を追加してください。",
        )
        .await;
    lawyer.fill(&lawyer.t("desk-cure-days"), "14").await;
    lawyer.press(&lawyer.t("desk-record-decision")).await;
    lawyer.sees(&lawyer.t("desk-done-decision")).await;
    let deadline = (app::today_of(chrono::Utc::now()) + chrono::Days::new(14)).to_string();
    lawyer.sees(&deadline).await;

    // The claimant sees the notice on her phone, adds a photo, resubmits.
    let claimant = Person::open(&driver, &portal, Screen::Phone, Lang::Ja, &out, "claimant").await;
    sign_in(&claimant, CLAIMANT, PASSWORD).await;
    claimant.press(&claimant.t("home-view")).await;
    claimant.sees(&claimant.t("notice-request-info-title")).await;
    claimant.sees("ご登録用コードが読める写真").await;
    claimant.sees(&deadline).await;
    claimant.press(&claimant.t("home-continue")).await;
    claimant.press(&format!("6. {}", claimant.t("step-evidence"))).await;
    let clearer = claimant.make_photo(files.path(), "clearer.jpg", "ご登録用コード AB12-CD34").await;
    claimant.select(&claimant.t("field-kind"), &claimant.t("evidence-kind-apology-letter")).await;
    claimant.attach(&claimant.t("evidence-file"), &clearer).await;
    claimant.start(&claimant.t("evidence-upload")).await;
    claimant.wait_for_count("ul.cards li.card", 3).await;
    claimant.check("uploaded").await;
    claimant.press(&format!("8. {}", claimant.t("step-review"))).await;
    claimant.press(&claimant.t("submit-claim")).await;
    claimant.sees(&claimant.t("status-submitted")).await;

    // The lawyer sees the answer and verifies.
    lawyer.visit(&format!("/review/claims/{claim_id}")).await;
    lawyer.sees(&lawyer.t("desk-answered")).await;
    assert_eq!(lawyer.count(".evidence-previews img").await, 3, "the new photo is there");
    lawyer.choose(&lawyer.t("decision-verify")).await;
    lawyer.press(&lawyer.t("desk-record-decision")).await;
    lawyer.sees(&lawyer.t("desk-done-decision")).await;
    lawyer.sees(&lawyer.t("status-verified")).await;

    claimant.visit(&format!("/claims/{claim_id}")).await;
    claimant.sees(&claimant.t("status-verified")).await;
    claimant.close().await;
    lawyer.close().await;
}

pub async fn administrator_journey() {
    let out = output_dir("admin");
    let portal = Portal::start(&out, Backends::default()).await;
    let driver = Driver::start().await;
    let admin = Person::open(&driver, &portal, Screen::Desktop, Lang::Ja, &out, "admin").await;
    let (admin_email, admin_password) = portal.bootstrap_admin();
    admin.visit("/").await;
    let files = tempfile::tempdir().unwrap();
    let letter = admin.make_photo(files.path(), "letter.jpg", "おわびの手紙").await;
    let (claimant_api, claim_id) = submitted_claim(&portal, &[("apology_letter", &letter)]).await;
    portal.cli(&["user", "create", "--email", LAWYER, "--role", "lawyer", "--password-stdin"], PASSWORD);

    sign_in(&admin, &admin_email, &admin_password).await;
    // The generated password is replaced before anything else: a staff page leads there.
    admin.visit("/staff/second-factor").await;
    assert_eq!(admin.path().await, "/account/password", "a new password first");
    admin.sees(&admin.t("password-forced")).await;
    admin.fill(&admin.t("password-current"), &admin_password).await;
    admin.fill(&admin.t("password-new"), "short").await;
    admin.press(&admin.t("password-submit")).await;
    admin.sees(&admin.t("errors-summary-title")).await;
    admin.fill(&admin.t("password-current"), &admin_password).await;
    admin.fill(&admin.t("password-new"), ADMIN_PASSWORD).await;
    admin.press(&admin.t("password-submit")).await;
    assert_eq!(admin.path().await, "/staff/second-factor", "then the second factor");
    assert!(!portal.bootstrap_file_exists(), "the spent password's file is gone");
    enrol_second_factor(&admin).await;

    // Add the lawyer to the case.
    admin.press(&admin.t("nav-admin")).await;
    admin.press(&admin.t("admin-members-title")).await;
    admin.fill(&admin.t("admin-member-email"), LAWYER).await;
    admin.press(&admin.t("admin-member-add")).await;
    admin.sees(LAWYER).await;

    // The lawyer verifies the claim (journey 2 shows this in pages).
    let lawyer = api_client(&portal, LAWYER).await;
    let setup = lawyer.post("/auth/totp/setup", json!({})).await;
    let secret = setup.body["secret"].as_str().expect("secret").to_string();
    let r = lawyer.post("/auth/totp/verify", json!({"code": portal::totp_code(&secret, 0)})).await;
    assert!(r.status.is_success(), "second factor: {:?}", r.body);
    let r = lawyer.post(&format!("/review/claims/{claim_id}/decision"), json!({"decision": "verify"})).await;
    assert!(r.status.is_success(), "verify: {:?}", r.body);

    // A new retainer version: the claimant is asked to sign again.
    admin.press(&admin.t("nav-admin")).await;
    admin.press(&admin.t("admin-documents-title")).await;
    admin.select(&admin.t("field-document-kind"), &admin.t("doc-kind-retainer")).await;
    admin.fill(&admin.t("field-document-title"), "訴訟委任状（第2版）").await;
    admin.fill(&admin.t("field-document-body"), "私は、弁護団に対し、ベネッセ個人情報漏えい事件に関する損害賠償請求訴訟の提起及び追行を委任します。（第2版：連絡方法を追記）").await;
    admin.press(&admin.t("admin-publish")).await;
    admin.sees(&admin.t("admin-published")).await;

    let claimant = Person::open(&driver, &portal, Screen::Phone, Lang::Ja, &out, "claimant").await;
    sign_in(&claimant, CLAIMANT, PASSWORD).await;
    claimant.press(&claimant.t("home-view")).await;
    claimant.sees(&claimant.t("consent-reconsent-needed")).await;
    claimant.press(&claimant.t("status-consent-needed")).await;
    // Titles are stored NFKC-normalised: full-width brackets read as ASCII ones.
    let retainer = claimant.section("訴訟委任状(第2版)").await;
    claimant.choose_in(Some(&retainer), &claimant.t("consent-agree")).await;
    claimant.fill_in(&retainer, &claimant.t("field-signer-name"), "山田 花子").await;
    claimant.press_in(&retainer, &claimant.t("consent-sign")).await;
    claimant.sees(&claimant.t("consent-signed")).await;
    claimant.close().await;
    drop(claimant_api);

    // A filing round.
    admin.press(&admin.t("nav-admin")).await;
    admin.press(&admin.t("rounds-title")).await;
    admin.fill(&admin.t("round-name"), "第1次提訴").await;
    admin.fill(&admin.t("round-court"), "東京地方裁判所").await;
    let today = app::today_of(chrono::Utc::now());
    admin.fill_date(&admin.t("round-cut-off"), &(today + chrono::Days::new(30)).to_string()).await;
    admin.fill_date(&admin.t("round-filing-date"), &(today + chrono::Days::new(60)).to_string()).await;
    admin.press(&admin.t("rounds-create")).await;
    admin.sees("第1次提訴").await;
    if admin.count("textarea#f-policy").await == 0 {
        admin.press("第1次提訴").await;
    }

    // The tier policy, with a mistake first: the error names the field and the text is kept.
    let policy_box = admin.control(&admin.t("round-policy")).await;
    let policy = policy_box.prop("value").await.unwrap().unwrap_or_default();
    assert!(policy.contains("55000"), "the default policy is shown: {policy}");
    let mistaken = policy.replacen("55000", "-55000", 1);
    admin.fill(&admin.t("round-policy"), &mistaken).await;
    admin.press(&admin.t("round-policy-save")).await;
    admin.sees(&admin.t("errors-summary-title")).await;
    admin.sees("tiers[1].amount_yen").await;
    let kept = admin.control(&admin.t("round-policy")).await.prop("value").await.unwrap().unwrap_or_default();
    assert_eq!(kept.replace("\r\n", "\n"), mistaken.replace("\r\n", "\n"), "the typed policy is kept");
    admin.fill(&admin.t("round-policy"), &policy.replacen("55000", "60000", 1)).await;
    admin.press(&admin.t("round-policy-save")).await;

    // Compute, freeze, build the bundle.
    admin.press(&admin.t("round-compute")).await;
    admin.sees(&admin.t("round-preview")).await;
    admin.sees("原告 2 名、対象外 0 名").await;
    admin.press(&admin.t("round-freeze")).await;
    admin.sees(&admin.t("round-state-frozen")).await;
    admin.press(&admin.t("bundle-start")).await;
    // While the job runs, the bar moves in place (no reload, no meta refresh);
    // the page is shown again once the bundle is done.
    let running = admin.count("[data-export-status] progress").await;
    let done = admin.t("bundle-status-done");
    admin.wait_until("the bundle to be made", |text| text.contains(&done)).await;
    admin.check("bundle done").await;
    eprintln!("bundle progress bars seen while running: {running}");

    // Download after re-entering the password; the party list holds both plaintiffs.
    admin.fill(&admin.t("bundle-password"), ADMIN_PASSWORD).await;
    admin.start(&admin.t("bundle-download")).await;
    let zip = admin.downloaded(".zip").await;
    let mut archive = zip::ZipArchive::new(std::fs::File::open(&zip).unwrap()).expect("a ZIP");
    let names: Vec<String> = archive.file_names().filter_map(|n| n.ok().map(|n| n.to_string())).collect();
    // 当事者目録: the party list.
    let csv = names.iter().find(|n| n.as_str() == "当事者目録.csv").cloned();
    let csv = csv.unwrap_or_else(|| panic!("a party list CSV in {names:?}"));
    let mut parties = String::new();
    archive.by_name(&csv).unwrap().read_to_string(&mut parties).unwrap();
    assert!(parties.contains("山田") && parties.contains("花子") && parties.contains("一郎"), "{parties}");
    assert!(names.iter().any(|n| n == "当事者目録.xlsx"), "the party list in Excel too: {names:?}");
    admin.close().await;
}
