//! Versioned consent: signing (for oneself and as 法定代理人), submission
//! gated on current consent, re-consent after a new version, publishing.
use portal::{complete_draft, spawn_app, ApiClient, TestApp};
use reqwest::StatusCode;
use serde_json::{json, Value};

async fn claimant_with_draft(app: &TestApp, email: &str) -> (ApiClient, String) {
    let api = app.claimant(email).await;
    let id = api.post("/claims", json!({"case": "benesse-2014"})).await.body["id"].as_str().unwrap().to_string();
    let r = api.put(&format!("/claims/{id}"), complete_draft("やまだ", "1980-05-05")).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    (api, id)
}

fn retainer_body() -> Value {
    json!({"kind": "retainer", "title": "訴訟委任状（第2版）", "body": "第1条 改訂した委任事項。\r\n第2条 復代理人の選任。"})
}

#[tokio::test]
async fn the_case_publishes_three_current_documents_with_structured_fee_terms() {
    let app = spawn_app().await;
    let docs = app.api().get("/cases/benesse-2014/documents").await;
    assert_eq!(docs.status, StatusCode::OK);
    let kinds: Vec<&str> = docs.body.as_array().unwrap().iter().map(|d| d["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["retainer", "fee_terms", "privacy_notice"]);
    for d in docs.body.as_array().unwrap() {
        assert_eq!(d["version"], 1);
        // The id of a version is the SHA-256 of its text.
        let digest = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(d["body"].as_str().unwrap().as_bytes()));
        assert_eq!(d["sha256"], digest);
    }
    let fees = &docs.body[1]["fee_terms"];
    assert_eq!(fees["upfront_fee_yen"], 0, "benesse-2014 charges nothing up front");
    assert_eq!(fees["deducted_from_award"], true);
    assert!(fees["contingency_percent"].as_u64().unwrap() > 0);
}

#[tokio::test]
async fn submission_is_refused_until_every_document_is_signed() {
    let app = spawn_app().await;
    let (mut api, id) = claimant_with_draft(&app, "hanako@example.jp").await;
    api.lang = "en";
    let r = api.post(&format!("/claims/{id}/submit"), json!({})).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.body["error"]["code"], "incomplete");
    let fields = r.body["error"]["fields"].as_object().unwrap();
    let named: Vec<&String> = fields.keys().collect();
    assert_eq!(named, ["consent.fee_terms", "consent.privacy_notice", "consent.retainer"], "names every document");
    assert_eq!(fields["consent.retainer"], "Read the text and tick the box to confirm.");

    // Signing one of three is not enough.
    let docs = api.get("/cases/benesse-2014/documents").await.body;
    let retainer = docs[0]["id"].as_str().unwrap();
    let signed =
        api.post(&format!("/claims/{id}/consents"), json!({"document_id": retainer, "signer_name": "山田 花子"})).await;
    assert_eq!(signed.status, StatusCode::CREATED, "{:?}", signed.body);
    let r = api.post(&format!("/claims/{id}/submit"), json!({})).await;
    let named: Vec<String> = r.body["error"]["fields"].as_object().unwrap().keys().cloned().collect();
    assert_eq!(named, ["consent.fee_terms", "consent.privacy_notice"]);

    api.sign_all(&id).await;
    assert_eq!(api.post(&format!("/claims/{id}/submit"), json!({})).await.status, StatusCode::OK);
}

#[tokio::test]
async fn the_parent_signs_for_each_minor_as_legal_representative() {
    let app = spawn_app().await;
    let (api, id) = claimant_with_draft(&app, "hanako@example.jp").await;
    let before = api.get(&format!("/claims/{id}/consents")).await.body;
    assert_eq!(before["minors"], json!(["山田 一郎"]), "the 2009 child is a minor");
    let pending = &before["documents"][0]["pending"];
    assert_eq!(
        pending,
        &json!([{"capacity": "principal", "name": "山田 花子"}, {"capacity": "guardian", "name": "山田 一郎"}])
    );

    // Typed in kana with full-width spaces: the same person.
    let made = api.sign_as(&id, "やまだ　はなこ").await;
    assert_eq!(made.len(), 6, "three documents × (self + one child)");
    let guardian: Vec<&Value> = made.iter().filter(|s| s["capacity"] == "guardian").collect();
    assert_eq!(guardian.len(), 3);
    assert!(guardian.iter().all(|s| s["subject_name"] == "山田 一郎" && s["signer_name"] == "やまだ はなこ"));
    assert!(made.iter().all(|s| s["ip"] == "127.0.0.1" && s["document_sha256"].as_str().unwrap().len() == 64));

    // A second child added later must be signed for too.
    let mut draft = complete_draft("やまだ", "1980-05-05");
    draft["persons"]
        .as_array_mut()
        .unwrap()
        .push(json!({"relation": "child", "family_name": "山田", "given_name": "次郎",
        "family_name_kana": "やまだ", "given_name_kana": "じろう", "birth_date": "2012-03-03", "gender": "male"}));
    assert_eq!(api.put(&format!("/claims/{id}"), draft).await.status, StatusCode::OK);
    let after = api.get(&format!("/claims/{id}/consents")).await.body;
    assert_eq!(after["current"], false);
    assert_eq!(after["documents"][0]["pending"], json!([{"capacity": "guardian", "name": "山田 次郎"}]));
    assert_eq!(api.sign_all(&id).await.len(), 3, "only the missing signatures are added");
    assert_eq!(api.get(&format!("/claims/{id}/consents")).await.body["current"], true);
}

#[tokio::test]
async fn signing_one_document_many_times_at_once_records_each_signature_once() {
    let app = spawn_app().await;
    let (api, id) = claimant_with_draft(&app, "hanako@example.jp").await;
    let docs = api.get("/cases/benesse-2014/documents").await.body;
    let retainer = docs[0]["id"].as_str().unwrap().to_string();
    // A double tap and a retry, eight times over, all in flight together.
    let calls: Vec<_> = (0..8)
        .map(|_| {
            let (api, path) = (api.clone(), format!("/claims/{id}/consents"));
            let body = json!({"document_id": retainer, "signer_name": "山田 花子"});
            tokio::spawn(async move { api.post(&path, body).await })
        })
        .collect();
    let mut reported = Vec::new();
    for call in calls {
        let r = call.await.unwrap();
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
        reported.extend(r.body.as_array().unwrap().iter().map(|s| s["id"].as_str().unwrap().to_string()));
    }
    // Self and the one minor child: two signatures, each reported by exactly one call.
    reported.sort();
    let before_dedup = reported.len();
    reported.dedup();
    assert_eq!((before_dedup, reported.len()), (2, 2), "{reported:?}");
    let state = api.get(&format!("/claims/{id}/consents")).await.body;
    assert_eq!(state["documents"][0]["signed"], true);
    assert_eq!(state["documents"][0]["pending"], json!([]));
    use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
    let stored = entities::consent::Entity::find()
        .filter(entities::consent::Column::DocumentId.eq(uuid::Uuid::parse_str(&retainer).unwrap()))
        .count(&app.db().await)
        .await
        .unwrap();
    assert_eq!(stored, 2, "one row per signature");
}

#[tokio::test]
async fn a_signature_that_is_not_the_claimants_name_is_refused() {
    let app = spawn_app().await;
    let (mut api, id) = claimant_with_draft(&app, "hanako@example.jp").await;
    api.lang = "en";
    let doc = api.get("/cases/benesse-2014/documents").await.body[0]["id"].as_str().unwrap().to_string();
    for wrong in ["山田 太郎", "山田", "Hanako Yamada", ""] {
        let r = api.post(&format!("/claims/{id}/consents"), json!({"document_id": doc, "signer_name": wrong})).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{wrong}");
        assert!(r.body["error"]["fields"]["signer_name"].is_string(), "{wrong}: {:?}", r.body);
    }
    let r = api.post(&format!("/claims/{id}/consents"), json!({"document_id": doc, "signer_name": "山田 太郎"})).await;
    assert_eq!(
        r.body["error"]["fields"]["signer_name"],
        "Type your full name exactly as entered on the \"You\" page (in kanji or kana)."
    );
    let state = api.get(&format!("/claims/{id}/consents")).await.body;
    assert_eq!(state["signatures"], json!([]), "nothing was recorded");
    // A document of no case, or a stranger's claim: not found.
    let stranger = app.claimant("taro@example.jp").await;
    let r =
        stranger.post(&format!("/claims/{id}/consents"), json!({"document_id": doc, "signer_name": "山田 花子"})).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = api
        .post(
            &format!("/claims/{id}/consents"),
            json!({"document_id": uuid::Uuid::new_v4(), "signer_name": "山田 花子"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_new_version_asks_signers_to_consent_again_and_keeps_them_out_of_rounds_until_they_do() {
    let app = spawn_app().await;
    let (api, id) = claimant_with_draft(&app, "hanako@example.jp").await;
    api.sign_all(&id).await;
    assert_eq!(api.post(&format!("/claims/{id}/submit"), json!({})).await.status, StatusCode::OK);
    let claim = api.get(&format!("/claims/{id}")).await.body;
    assert_eq!(claim["consent"]["current"], true);
    assert_eq!(claim["round_exclusions"], json!(["not_verified"]), "consent is not what keeps it out");

    let (admin, _) = app.staff_verified("admin@example.jp", app::auth::Role::Admin).await;
    let old_retainer = api.get("/cases/benesse-2014/documents").await.body[0].clone();
    let published = admin.post("/admin/cases/benesse-2014/documents", retainer_body()).await;
    assert_eq!(published.status, StatusCode::CREATED, "{:?}", published.body);
    assert_eq!(published.body["version"], 2);
    assert_ne!(published.body["sha256"], old_retainer["sha256"]);

    let claim = api.get(&format!("/claims/{id}")).await.body;
    assert_eq!(claim["consent"]["current"], false);
    assert_eq!(claim["consent"]["reconsent_needed"], true);
    assert_eq!(claim["consent"]["documents"][0]["outdated"], true);
    assert_eq!(claim["round_exclusions"], json!(["not_verified", "no_current_consent"]));
    assert_eq!(claim["status"], "submitted", "the claim itself stays in");

    // The superseded version can no longer be signed.
    let r = api
        .post(&format!("/claims/{id}/consents"), json!({"document_id": old_retainer["id"], "signer_name": "山田 花子"}))
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert_eq!(r.body["error"]["code"], "document_superseded");

    assert_eq!(api.sign_all(&id).await.len(), 2, "the new retainer, for the parent and the child");
    let claim = api.get(&format!("/claims/{id}")).await.body;
    assert_eq!(claim["consent"]["current"], true);
    assert_eq!(claim["round_exclusions"], json!(["not_verified"]));
    // The history keeps both versions' signatures.
    let signatures = api.get(&format!("/claims/{id}/consents")).await.body["signatures"].clone();
    let retainer_versions: Vec<i64> = signatures
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["kind"] == "retainer" && s["capacity"] == "principal")
        .map(|s| s["version"].as_i64().unwrap())
        .collect();
    assert_eq!(retainer_versions, [1, 2]);
}

#[tokio::test]
async fn only_an_administrator_publishes_and_a_bad_document_gets_field_errors() {
    let app = spawn_app().await;
    let claimant = app.claimant("hanako@example.jp").await;
    let r = claimant.post("/admin/cases/benesse-2014/documents", retainer_body()).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let lawyer = app.staff("lawyer@example.jp", app::auth::Role::Lawyer).await;
    assert_eq!(lawyer.post("/admin/cases/benesse-2014/documents", retainer_body()).await.status, StatusCode::NOT_FOUND);

    let (mut admin, _) = app.staff_verified("admin@example.jp", app::auth::Role::Admin).await;
    admin.lang = "en";
    let r = admin
        .post(
            "/admin/cases/benesse-2014/documents",
            json!({"kind": "fee_terms", "title": "", "body": "報酬",
                   "fee_terms": {"upfront_fee_yen": "0", "contingency_percent": "90", "costs_borne": "印紙代",
                                 "estimated_costs_per_plaintiff_yen": "three hundred", "deducted_from_award": true}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let fields = &r.body["error"]["fields"];
    assert_eq!(fields["title"], "Please fill this in.");
    assert_eq!(fields["fee_terms.contingency_percent"], "This is outside the allowed range.");
    assert_eq!(fields["fee_terms.estimated_costs_per_plaintiff_yen"], "Enter a number.");
    // Publishing the current text again is refused: versions are for changes.
    let current = admin.get("/cases/benesse-2014/documents").await.body[2].clone();
    let same = json!({"kind": "privacy_notice", "title": current["title"], "body": current["body"]});
    assert_eq!(admin.post("/admin/cases/benesse-2014/documents", same).await.status, StatusCode::CONFLICT);
    // Nothing was published by the refused attempts.
    let history = admin.get("/admin/cases/benesse-2014/documents").await.body;
    assert_eq!(history.as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn the_consent_page_shows_the_net_amounts_and_a_wrong_name_beside_its_field() {
    let app = spawn_app().await;
    let (_, id) = claimant_with_draft(&app, "hanako@example.jp").await;
    // Sign in the browser as the same claimant.
    let browser = app.browser_signed_in("hanako@example.jp", "correct horse battery staple").await;
    let page = browser.get(&format!("/claims/{id}/consent")).await;
    assert_eq!(page.status, StatusCode::OK);
    // ¥55,000 claimed; a ¥3,300 award at 20% less ¥300 costs leaves ¥2,340.
    assert!(page.html.contains("55,000円"), "the amount claimed is shown");
    for cell in ["¥1,000", "¥2,000", "¥3,300", "¥2,340", "¥43,700"] {
        assert!(page.html.contains(cell), "{cell}");
    }
    assert!(page.html.contains("結果を約束するものではありません"));
    assert!(page.html.contains("山田 一郎"), "the child signed for is named");

    let sel = scraper::Selector::parse("form[action*=\"/consent/\"]").unwrap();
    let action = page.doc().select(&sel).next().unwrap().value().attr("action").unwrap().to_string();
    let refused = browser.submit(&page, &action, &[("agree", "true"), ("signer_name", "山田 太郎")]).await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(refused.html.contains("署名欄には"), "the error is in Japanese beside the field");
    assert!(refused.html.contains("value=\"山田 太郎\""), "what was typed is kept");
    assert!(refused.html.contains("aria-invalid=\"true\""));
    let unticked = browser.submit(&page, &action, &[("signer_name", "山田 花子")]).await;
    assert_eq!(unticked.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(unticked.html.contains("チェックを入れてください"));

    crate::intake_pages::sign_everything(&browser, &format!("/claims/{id}"), "山田 花子").await;
    let receipt = browser.get(&format!("/claims/{id}/consent/receipt")).await;
    assert_eq!(receipt.status, StatusCode::OK);
    assert_eq!(receipt.texts(".receipt-line").len(), 6);
    assert!(receipt.html.contains("法定代理人として"));
    let sha = api_sha(&app).await;
    assert!(receipt.html.contains(&sha), "the receipt names the document hash");
}

async fn api_sha(app: &TestApp) -> String {
    app.api().get("/cases/benesse-2014/documents").await.body[0]["sha256"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn an_administrator_publishes_a_version_from_the_admin_page() {
    let app = spawn_app().await;
    let browser = app.staff_browser("admin@example.jp", app::auth::Role::Admin).await;
    let page = browser.get("/admin/cases/benesse-2014/documents").await;
    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(
        page.input_value("fee_terms.contingency_percent").as_deref(),
        Some("20"),
        "starts from the current terms"
    );
    let bad = browser
        .submit(
            &page,
            "/admin/cases/benesse-2014/documents",
            &[("kind", "retainer"), ("title", "委任状"), ("body", "")],
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(bad.input_value("title").as_deref(), Some("委任状"), "what was typed is kept");
    let done = browser
        .submit(
            &page,
            "/admin/cases/benesse-2014/documents",
            &[("kind", "retainer"), ("title", "委任状 第2版"), ("body", "改訂本文")],
        )
        .await;
    assert_eq!(done.status, StatusCode::OK);
    assert!(done.url.contains("published=retainer-v2"), "{}", done.url);
    assert_eq!(app.api().get("/cases/benesse-2014/documents").await.body[0]["version"], 2);
}

#[tokio::test]
async fn the_status_page_asks_for_a_new_signature_after_a_revision() {
    let app = spawn_app().await;
    let (api, id) = claimant_with_draft(&app, "hanako@example.jp").await;
    api.sign_all(&id).await;
    assert_eq!(api.post(&format!("/claims/{id}/submit"), json!({})).await.status, StatusCode::OK);
    let browser = app.browser_signed_in("hanako@example.jp", "correct horse battery staple").await;
    let before = browser.get(&format!("/claims/{id}")).await;
    assert!(!before.html.contains("書面が改訂されました"));
    assert!(before.html.contains("弁護団の確認が終わると"), "not yet verified is the only reason");

    let (admin, _) = app.staff_verified("admin@example.jp", app::auth::Role::Admin).await;
    assert_eq!(admin.post("/admin/cases/benesse-2014/documents", retainer_body()).await.status, StatusCode::CREATED);
    let after = browser.get(&format!("/claims/{id}")).await;
    assert!(after.html.contains("書面が改訂されました"), "the claimant is asked to sign again");
    assert!(after.html.contains("提訴の対象になりません"));
    assert!(after.html.contains(&format!("href=\"/claims/{id}/consent\"")));
    // The consent page of a submitted claim stays open for the new signature.
    let page = browser.get(&format!("/claims/{id}/consent")).await;
    assert!(page.url.ends_with("/consent"), "{}", page.url);
    assert!(page.html.contains("以前の版に署名済みです"));
}

#[tokio::test]
async fn duplicate_signatures_from_before_the_unique_index_are_merged_into_the_earliest() {
    use entities::consent;
    use migration::MigratorTrait;
    use sea_orm::{EntityTrait, IntoActiveModel};
    let app = spawn_app().await;
    let (api, id) = claimant_with_draft(&app, "hanako@example.jp").await;
    api.sign_all(&id).await;
    let db = app.db().await;
    let mut originals = consent::Entity::find().all(&db).await.unwrap();
    assert_eq!(originals.len(), 6, "three documents × (self + one child)");

    // Before the index, a race could record the same signature twice.
    app.migrate_down_to_before(&db, "m20261122_000012_one_signature_each").await;
    let copy = |of: &consent::Model, later: i64| {
        let mut c = of.clone();
        c.id = uuid::Uuid::new_v4();
        c.signed_at = of.signed_at + chrono::Duration::seconds(later);
        c
    };
    let mut duplicates: Vec<consent::Model> = originals.iter().map(|o| copy(o, 1)).collect();
    // Recorded in the same instant: the smaller id is kept.
    let tie = copy(&originals[0], 0);
    duplicates.push(tie.clone());
    for d in duplicates {
        consent::Entity::insert(d.into_active_model()).exec(&db).await.unwrap();
    }
    assert_eq!(consent::Entity::find().all(&db).await.unwrap().len(), 13);

    migration::Migrator::up(&db, None).await.unwrap();
    if tie.id < originals[0].id {
        originals[0] = tie.clone();
    }
    let mut kept: Vec<uuid::Uuid> = consent::Entity::find().all(&db).await.unwrap().iter().map(|c| c.id).collect();
    let mut expected: Vec<uuid::Uuid> = originals.iter().map(|c| c.id).collect();
    kept.sort();
    expected.sort();
    assert_eq!(kept, expected, "the earliest of each signature is kept");
    // The index refuses another copy.
    let again = consent::Entity::insert(copy(&originals[1], 5).into_active_model()).exec(&db).await;
    assert!(again.is_err(), "a second row for the same signature must be refused");
}
