use portal::{spawn_app, Browser, Page, TestApp};
use reqwest::StatusCode;

async fn registered_browser(app: &TestApp, email: &str) -> Browser {
    let browser = app.browser();
    let page = browser.get("/register").await;
    assert_eq!(page.status, StatusCode::OK);
    let sent =
        browser.submit(&page, "/register", &[("email", email), ("password", "correct horse battery staple")]).await;
    assert_eq!(sent.status, StatusCode::OK, "{}", sent.html);
    assert!(sent.html.contains("メールを確認してください"), "registration asks to open the mail: {}", sent.html);
    app.confirm_address(email).await;
    let login = browser.get("/login").await;
    let home =
        browser.submit(&login, "/login", &[("email", email), ("password", "correct horse battery staple")]).await;
    assert!(home.url.ends_with('/'), "signed in and home: {}", home.url);
    browser
}

/// Join the shipped case and return the identity page.
async fn join(browser: &Browser) -> Page {
    let home = browser.get("/").await;
    let page = browser.submit(&home, "/claims", &[("case", "benesse-2014")]).await;
    assert!(page.url.ends_with("/identity"), "{}", page.url);
    page
}

fn claim_path(page: &Page) -> String {
    let path = page.url.split("/claims/").nth(1).unwrap();
    format!("/claims/{}", path.split('/').next().unwrap())
}

#[tokio::test]
async fn a_claimant_completes_the_whole_intake_through_the_pages() {
    let app = spawn_app().await;
    let browser = registered_browser(&app, "hanako@example.jp").await;
    let identity = join(&browser).await;
    let claim = claim_path(&identity);

    let contact = browser
        .submit(
            &identity,
            &format!("{claim}/identity"),
            &[
                ("family_name", "山田"),
                ("given_name", "花子"),
                ("family_name_kana", "ﾔﾏﾀﾞ"),
                ("given_name_kana", "はなこ"),
                ("birth_date", "1980-05-05"),
                ("gender", "female"),
            ],
        )
        .await;
    assert!(contact.url.ends_with("/contact"), "{}", contact.url);
    let household = browser
        .submit(
            &contact,
            &format!("{claim}/contact"),
            &[
                ("postal_code", "１００－０００１"),
                ("prefecture", "東京都"),
                ("city", "千代田区"),
                ("line1", "千代田1-1"),
                ("line2", ""),
                ("phone", "03-1234-5678"),
                ("email", ""),
            ],
        )
        .await;
    assert!(household.url.ends_with("/household"), "{}", household.url);
    let household = browser
        .submit(
            &household,
            &format!("{claim}/household"),
            &[
                ("relation", "child"),
                ("family_name", "山田"),
                ("given_name", "一郎"),
                ("family_name_kana", "やまだ"),
                ("given_name_kana", "いちろう"),
                ("birth_date", "2012-03-03"),
                ("gender", "male"),
            ],
        )
        .await;
    assert!(household.html.contains("一郎"), "the child is listed");
    let leak = browser.get(&format!("{claim}/leak")).await;
    let mut form: Vec<(String, String)> = vec![("csrf".into(), leak.csrf())];
    for (k, v) in [
        ("leaked_items", "name"),
        ("leaked_items", "address"),
        ("leaked_items", "expected_delivery_date"),
        ("services", "kodomo_challenge"),
        ("apology_letter_received", "yes"),
        ("registration_code", "ab12cd34"),
        ("apology_option", "donation_500"),
        ("learned_of_leak_on", "2014-07-15"),
    ] {
        form.push((k.into(), v.into()));
    }
    let harms = browser.post_form(&format!("{claim}/leak"), &form).await;
    assert!(harms.url.ends_with("/harms"), "{}", harms.url);
    let harms = browser
        .submit(
            &harms,
            &format!("{claim}/harms"),
            &[("kind", "call"), ("date", "2014-09-01"), ("sender", "不明な塾"), ("note", "子ども宛の勧誘電話")],
        )
        .await;
    assert!(harms.html.contains("不明な塾"));
    sign_everything(&browser, &claim, "山田 花子").await;
    let review = browser.get(&format!("{claim}/review")).await;
    assert!(review.html.contains("ヤマダ"), "review shows katakana furigana");
    assert!(review.html.contains("出産予定日"));
    let status = browser.submit(&review, &format!("{claim}/submit"), &[]).await;
    assert_eq!(status.status, StatusCode::OK);
    let number = status.texts(".claim-number");
    assert_eq!(number, vec!["BN-000001".to_string()]);
    assert!(status.html.contains("提出済み"));
    // Once submitted, the steps send the claimant back to the status page,
    // except correcting identity and contact details, and signing again.
    let step = browser.get(&format!("{claim}/leak")).await;
    assert!(step.url.ends_with(&claim), "{}", step.url);
    let step = browser.get(&format!("{claim}/identity")).await;
    assert!(step.url.ends_with("/identity"), "{}", step.url);
}

/// Sign every document on the consent page, as a person would.
pub async fn sign_everything(browser: &Browser, claim: &str, name: &str) {
    let page = browser.get(&format!("{claim}/consent")).await;
    assert_eq!(page.status, StatusCode::OK);
    let sel = scraper::Selector::parse("form[action*=\"/consent/\"]").unwrap();
    let actions: Vec<String> = page.doc().select(&sel).map(|f| f.value().attr("action").unwrap().to_string()).collect();
    assert_eq!(actions.len(), 3, "three documents to sign");
    for action in actions {
        let after = browser.submit(&page, &action, &[("agree", "true"), ("signer_name", name)]).await;
        assert_eq!(after.status, StatusCode::OK, "{}", after.html);
    }
    let page = browser.get(&format!("{claim}/consent")).await;
    assert_eq!(page.doc().select(&sel).count(), 0, "nothing left to sign");
}

#[tokio::test]
async fn a_bad_field_shows_its_error_beside_it_and_keeps_what_was_typed() {
    let app = spawn_app().await;
    let browser = registered_browser(&app, "hanako@example.jp").await;
    let identity = join(&browser).await;
    let claim = claim_path(&identity);
    let contact = browser.get(&format!("{claim}/contact")).await;
    // A first, valid save.
    let fields = [
        ("postal_code", "100-0001"),
        ("prefecture", "東京都"),
        ("city", "千代田区"),
        ("line1", "千代田1-1"),
        ("line2", ""),
        ("phone", "03-1234-5678"),
        ("email", ""),
    ];
    browser.submit(&contact, &format!("{claim}/contact"), &fields).await;
    // Then a bad postal code and a bad phone.
    let contact = browser.get(&format!("{claim}/contact")).await;
    let again = browser
        .submit(
            &contact,
            &format!("{claim}/contact"),
            &[
                ("postal_code", "12-34"),
                ("prefecture", "東京都"),
                ("city", "港区"),
                ("line1", "芝公園4-2-8"),
                ("line2", ""),
                ("phone", "abc"),
                ("email", ""),
            ],
        )
        .await;
    assert_eq!(again.status, StatusCode::UNPROCESSABLE_ENTITY);
    let errors = again.texts("#f-postal_code-error");
    assert!(errors[0].contains("郵便番号は7桁"), "{errors:?}");
    assert!(again.texts("#f-phone-error")[0].contains("電話番号"));
    assert_eq!(again.input_value("postal_code").as_deref(), Some("12-34"), "typed value kept");
    assert_eq!(again.input_value("city").as_deref(), Some("港区"), "typed value kept");
    let summary = again.texts(".error-summary li");
    assert_eq!(summary.len(), 2, "{summary:?}");
    // The saved draft is untouched.
    let saved = browser.get(&format!("{claim}/contact")).await;
    assert_eq!(saved.input_value("city").as_deref(), Some("千代田区"));
    assert_eq!(saved.input_value("phone").as_deref(), Some("0312345678"));
}

#[tokio::test]
async fn pages_switch_to_english_and_stay_english() {
    let app = spawn_app().await;
    let browser = registered_browser(&app, "hanako@example.jp").await;
    let home = browser.get("/").await;
    assert!(home.html.contains("lang=\"ja\""));
    let english = browser.submit(&home, "/lang", &[("lang", "en"), ("next", "/")]).await;
    assert!(english.html.contains("<html lang=\"en\">"));
    assert!(english.html.contains("Join the class action"));
    let identity = join(&browser).await;
    let claim = claim_path(&identity);
    let refused = browser
        .submit(
            &identity,
            &format!("{claim}/identity"),
            &[
                ("family_name", "山田"),
                ("given_name", "花子"),
                ("family_name_kana", "Yamada"),
                ("given_name_kana", "はなこ"),
                ("birth_date", "1980-05-05"),
                ("gender", "female"),
            ],
        )
        .await;
    assert_eq!(refused.texts("#f-family_name_kana-error")[0], "Error: Enter the reading in hiragana or katakana.");
}

#[tokio::test]
async fn a_form_without_its_csrf_token_is_refused_and_changes_nothing() {
    let app = spawn_app().await;
    let browser = registered_browser(&app, "hanako@example.jp").await;
    let home = browser.get("/").await;
    let forged =
        browser.post_form("/claims", &[("csrf".into(), "forged".into()), ("case".into(), "benesse-2014".into())]).await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    let missing = browser.post_form("/claims", &[("case".into(), "benesse-2014".into())]).await;
    assert!(missing.status.is_client_error(), "{}", missing.status);
    let home_again = browser.get("/").await;
    assert_eq!(home.html.contains("BN-"), home_again.html.contains("BN-"));
    assert!(!home_again.html.contains("BN-000001"));
}

#[tokio::test]
async fn signed_out_visitors_are_sent_to_the_login_page() {
    let app = spawn_app().await;
    let page = app.browser().get(&format!("/claims/{}", uuid::Uuid::new_v4())).await;
    assert!(page.url.ends_with("/login"), "{}", page.url);
    assert!(page.html.contains("name=\"password\""));
}

#[tokio::test]
async fn a_claimant_uploads_evidence_from_the_page_and_downloads_it() {
    let app = spawn_app().await;
    let browser = registered_browser(&app, "hanako@example.jp").await;
    let identity = join(&browser).await;
    let claim = claim_path(&identity);
    let page = browser.get(&format!("{claim}/evidence")).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.html.contains("type=\"file\""), "the page offers a file input");
    let photo = app::evidence::jpeg::fixtures::plain_jpeg(5000);
    let form = reqwest::multipart::Form::new()
        .text("csrf", page.csrf())
        .text("upload.kind", "apology_letter")
        .part("upload.file", reqwest::multipart::Part::bytes(photo.clone()).file_name("IMG_0001.JPG"));
    let res = browser.http.post(format!("{}{claim}/evidence", browser.base)).multipart(form).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.url().path().ends_with("/evidence"));
    let listed = res.text().await.unwrap();
    assert!(listed.contains("おわびの手紙"), "the file is listed");
    let link = listed.split("href=\"").find(|s| s.starts_with(&format!("{claim}/evidence/"))).unwrap();
    let link = &link[..link.find('"').unwrap()];
    let file = browser.http.get(format!("{}{link}", browser.base)).send().await.unwrap();
    assert!(file.headers()["content-disposition"].to_str().unwrap().starts_with("attachment"));
    assert_eq!(file.bytes().await.unwrap().to_vec(), photo);

    // A PDF-looking HTML file is refused on the page, with the reason beside the field.
    let page = browser.get(&format!("{claim}/evidence")).await;
    let form = reqwest::multipart::Form::new()
        .text("csrf", page.csrf())
        .text("upload.kind", "direct_mail")
        .part("upload.file", reqwest::multipart::Part::bytes(b"<html>not a pdf</html>".to_vec()).file_name("dm.pdf"));
    let res = browser.http.post(format!("{}{claim}/evidence", browser.base)).multipart(form).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let html = res.text().await.unwrap();
    assert!(html.contains("id=\"f-file-error\""), "{html}");
}
