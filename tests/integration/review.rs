//! The review desk and staff protection: case membership, the second factor
//! before any claim is read, audited reads the claimant can see, hourly caps
//! with alerts, decisions and the deficiency notice round trip, bulk and
//! policy verification.
use app::auth::Role;
use portal::{complete_draft, spawn_app, spawn_app_with, ApiClient, TestApp};
use reqwest::StatusCode;
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use serde_json::{json, Value};

async fn lawyer_on_case(app: &TestApp, email: &str) -> ApiClient {
    let (mut lawyer, _) = app.staff_verified(email, Role::Lawyer).await;
    app.add_to_case(email).await;
    lawyer.lang = "en";
    lawyer
}

async fn hanako(app: &TestApp) -> (ApiClient, String) {
    app.submitted_claim("hanako@example.jp", complete_draft("やまだ", "1980-05-05"), "山田 花子").await
}

#[tokio::test]
async fn a_lawyer_outside_the_case_gets_404_everywhere() {
    let app = spawn_app().await;
    let (claimant, claim) = hanako(&app).await;
    let (outsider, _) = app.staff_verified("outsider@example.jp", Role::Lawyer).await;

    assert_eq!(outsider.get(&format!("/review/claims/{claim}")).await.status, StatusCode::NOT_FOUND);
    assert_eq!(outsider.get("/review/claims?case=benesse-2014").await.status, StatusCode::NOT_FOUND);
    let queue = outsider.get("/review/claims").await;
    assert_eq!(queue.status, StatusCode::OK);
    assert_eq!(queue.body["total"], 0, "no case, no claims: {:?}", queue.body);
    let decision = json!({"decision": "verify"});
    assert_eq!(
        outsider.post(&format!("/review/claims/{claim}/decision"), decision.clone()).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(outsider.get(&format!("/claims/{claim}/evidence")).await.status, StatusCode::NOT_FOUND);
    assert_eq!(
        outsider.post("/review/bulk-verify", json!({"case": "benesse-2014"})).await.status,
        StatusCode::NOT_FOUND
    );

    // Once a member, the same lawyer reads it; a claimant never can.
    app.add_to_case("outsider@example.jp").await;
    let r = outsider.get(&format!("/review/claims/{claim}")).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["claim"]["persons"][0]["family_name"], "山田");
    assert_eq!(claimant.get(&format!("/review/claims/{claim}")).await.status, StatusCode::NOT_FOUND);
    assert_eq!(claimant.get("/review/claims").await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn staff_without_the_second_factor_cannot_read_a_claim() {
    let app = spawn_app().await;
    let (_, claim) = hanako(&app).await;
    let mut lawyer = app.staff("lawyer@example.jp", Role::Lawyer).await;
    lawyer.lang = "en";
    app.add_to_case("lawyer@example.jp").await;
    let admin = app.staff("admin2@example.jp", Role::Admin).await;
    for client in [&lawyer, &admin] {
        let r = client.get(&format!("/review/claims/{claim}")).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{:?}", r.body);
        assert_eq!(r.body["error"]["code"], "second_factor_required");
        assert_eq!(client.get("/review/claims").await.status, StatusCode::FORBIDDEN);
    }
    assert_eq!(
        lawyer.get(&format!("/review/claims/{claim}")).await.body["error"]["message"],
        "Enter the code from your authenticator app to go on."
    );
    // Nothing was read, so nothing is in the claimant's access log.
    let db = app.db().await;
    let reads = entities::audit_event::Entity::find()
        .filter(entities::audit_event::Column::Action.eq("claim.viewed"))
        .all(&db)
        .await
        .unwrap();
    assert!(reads.is_empty());

    // A page sends the lawyer to the second-factor page instead.
    let browser = app.browser_signed_in("lawyer@example.jp", "staff password long enough").await;
    let page = browser.get(&format!("/review/claims/{claim}")).await;
    assert!(page.url.ends_with("/staff/second-factor"), "{}", page.url);
    assert_eq!(page.status, StatusCode::OK);
}

#[tokio::test]
async fn every_staff_read_appears_in_the_claimants_access_log() {
    let app = spawn_app().await;
    let claimant = app.claimant("hanako@example.jp").await;
    let id = claimant.post("/claims", json!({"case": "benesse-2014"})).await.body["id"].as_str().unwrap().to_string();
    claimant.put(&format!("/claims/{id}"), complete_draft("やまだ", "1980-05-05")).await;
    let jpeg = app::evidence::jpeg::fixtures::plain_jpeg(2_000);
    let up = claimant.upload(&format!("/claims/{id}/evidence"), "apology_letter", jpeg, "letter.jpg", None).await;
    assert_eq!(up.status, StatusCode::CREATED);
    let evidence = up.body["id"].as_str().unwrap().to_string();
    claimant.sign_all(&id).await;
    assert_eq!(claimant.post(&format!("/claims/{id}/submit"), json!({})).await.status, StatusCode::OK);
    // The claimant's own reads are not "someone else accessed my data".
    claimant.download(&evidence).await;
    let before = claimant.get("/me/access-log").await.body;
    assert!(before.as_array().unwrap().iter().all(|e| e["action"] == "account.created"), "{before:?}");

    let lawyer = lawyer_on_case(&app, "lawyer@example.jp").await;
    let (admin, _) = app.staff_verified("admin2@example.jp", Role::Admin).await;
    assert_eq!(lawyer.get(&format!("/review/claims/{id}")).await.status, StatusCode::OK);
    assert_eq!(lawyer.get(&format!("/review/claims/{id}")).await.status, StatusCode::OK);
    assert_eq!(admin.get(&format!("/review/claims/{id}")).await.status, StatusCode::OK);
    let bytes = lawyer.download(&evidence).await;
    assert_eq!(bytes.len(), app::evidence::jpeg::fixtures::plain_jpeg(2_000).len());

    let log = claimant.get("/me/access-log").await.body;
    let entries = log.as_array().unwrap();
    let views: Vec<&Value> = entries.iter().filter(|e| e["action"] == "claim.viewed").collect();
    assert_eq!(views.len(), 3, "{log:?}");
    assert_eq!(views.iter().filter(|e| e["actor_role"] == "lawyer").count(), 2);
    assert_eq!(views.iter().filter(|e| e["actor_role"] == "admin").count(), 1);
    assert!(views.iter().all(|e| e["subject_id"] == id.as_str() && e["detail"]["purpose"] == "review"));
    let files: Vec<&Value> = entries.iter().filter(|e| e["action"] == "evidence.viewed").collect();
    assert_eq!(files.len(), 1);
    assert_eq!(files[0]["subject_id"], evidence.as_str());

    // The page says it in words.
    let browser = app.browser_signed_in("hanako@example.jp", "correct horse battery staple").await;
    let page = browser.get("/me").await;
    let cells = page.texts("table td");
    assert_eq!(cells.iter().filter(|t| t.as_str() == "申込み内容の閲覧（審査）").count(), 3, "{cells:?}");
    assert!(cells.iter().any(|t| t == "証拠ファイルの閲覧（審査）"));
}

#[tokio::test]
async fn past_the_hourly_cap_reads_are_refused_with_429_and_admins_see_an_alert() {
    let app = spawn_app_with(|f| f.merge(("claim_views_per_hour", 2)).merge(("evidence_downloads_per_hour", 1))).await;
    let claimant = app.claimant("hanako@example.jp").await;
    let id = claimant.post("/claims", json!({"case": "benesse-2014"})).await.body["id"].as_str().unwrap().to_string();
    claimant.put(&format!("/claims/{id}"), complete_draft("やまだ", "1980-05-05")).await;
    let jpeg = app::evidence::jpeg::fixtures::plain_jpeg(2_000);
    let evidence = claimant.upload(&format!("/claims/{id}/evidence"), "direct_mail", jpeg, "dm.jpg", None).await.body
        ["id"]
        .as_str()
        .unwrap()
        .to_string();
    claimant.sign_all(&id).await;
    claimant.post(&format!("/claims/{id}/submit"), json!({})).await;

    let lawyer = lawyer_on_case(&app, "lawyer@example.jp").await;
    assert_eq!(lawyer.get(&format!("/review/claims/{id}")).await.status, StatusCode::OK);
    assert_eq!(lawyer.get(&format!("/review/claims/{id}")).await.status, StatusCode::OK);
    let third = lawyer.get(&format!("/review/claims/{id}")).await;
    assert_eq!(third.status, StatusCode::TOO_MANY_REQUESTS, "{:?}", third.body);
    assert_eq!(third.body["error"]["code"], "too_many_requests");
    assert_eq!(lawyer.get(&format!("/review/claims/{id}")).await.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(lawyer.fetch(&format!("/evidence/{evidence}/content")).await.status(), StatusCode::OK);
    assert_eq!(lawyer.fetch(&format!("/evidence/{evidence}/content")).await.status(), StatusCode::TOO_MANY_REQUESTS);

    // One alert per kind (not one per refused read), visible to admins only.
    let (admin, _) = app.staff_verified("admin2@example.jp", Role::Admin).await;
    let alerts = admin.get("/admin/alerts").await;
    assert_eq!(alerts.status, StatusCode::OK);
    let list = alerts.body.as_array().unwrap();
    let kinds: Vec<&str> = list.iter().map(|a| a["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds.iter().filter(|k| **k == "cap.claim_views").count(), 1, "{kinds:?}");
    assert_eq!(kinds.iter().filter(|k| **k == "cap.evidence_downloads").count(), 1, "{kinds:?}");
    assert!(list.iter().all(|a| a["user_email"] == "lawyer@example.jp"));
    assert_eq!(lawyer.get("/admin/alerts").await.status, StatusCode::NOT_FOUND);
    // Refused reads are not reads: the claimant sees two views and one file.
    let log = claimant.get("/me/access-log").await.body;
    let count = |action: &str| log.as_array().unwrap().iter().filter(|e| e["action"] == action).count();
    assert_eq!((count("claim.viewed"), count("evidence.viewed")), (2, 1));
    // Acknowledging is audited and shows.
    let alert_id = list[0]["id"].as_str().unwrap();
    assert_eq!(
        admin.post(&format!("/admin/alerts/{alert_id}/acknowledge"), json!({})).await.status,
        StatusCode::NO_CONTENT
    );
    let again = admin.get("/admin/alerts").await.body;
    assert!(again.as_array().unwrap().iter().any(|a| a["id"] == alert_id && a["acknowledged_at"].is_string()));
    assert_eq!(
        admin.post(&format!("/admin/alerts/{alert_id}/acknowledge"), json!({})).await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn a_deficiency_notice_round_trips_through_the_claimant_and_back() {
    let app = spawn_app().await;
    let (mut claimant, claim) = hanako(&app).await;
    claimant.lang = "en";
    let lawyer = lawyer_on_case(&app, "lawyer@example.jp").await;
    let path = format!("/review/claims/{claim}/decision");

    // Bad decisions are refused beside the field, and nothing changes.
    let bad = lawyer.post(&path, json!({"decision": "request_info", "reason": " ", "cure_days": 500})).await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(bad.body["error"]["fields"]["reason"], "Please fill this in.");
    assert!(bad.body["error"]["fields"]["cure_days"].is_string());
    assert_eq!(lawyer.post(&path, json!({"decision": "approve"})).await.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(claimant.get(&format!("/claims/{claim}")).await.body["status"], "submitted");

    let reason = "おわびの手紙の写真が読み取れません。もう一度撮影して追加してください。";
    let r = lawyer.post(&path, json!({"decision": "request_info", "reason": reason, "cure_days": 7})).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["status"], "needs_info");
    let deadline = (app::today_of(chrono::Utc::now()) + chrono::Duration::days(7)).to_string();
    assert_eq!(r.body["decision"]["cure_deadline"], deadline.as_str());

    // The claimant sees the notice, with its reason and deadline.
    let seen = claimant.get(&format!("/claims/{claim}")).await.body;
    assert_eq!(seen["status"], "needs_info");
    assert_eq!(seen["notice"]["decision"], "request_info");
    assert_eq!(seen["notice"]["reason"], reason);
    assert_eq!(seen["notice"]["cure_deadline"], deadline.as_str());
    // An e-mail waits in the outbox: the claim number, never the reason.
    let db = app.db().await;
    let mails = entities::outbox::Entity::find()
        .filter(entities::outbox::Column::Kind.ne("account.confirm_address"))
        .all(&db)
        .await
        .unwrap();
    assert_eq!(mails.len(), 1, "one mail besides the address confirmation");
    assert_eq!(mails[0].kind, "claim.info_requested");
    let params = mails[0].params.clone().unwrap_or_default();
    assert!(params.contains(seen["number"].as_str().unwrap()) && params.contains(&deadline), "{params}");
    assert!(!params.contains("おわびの手紙の写真"), "{params}");
    // The reason is sealed at rest.
    assert!(portal::find_in(&app.bytes_at_rest(), &["読み取れません"]).is_empty(), "the reason is at rest in clear");
    // The status page shows the notice too.
    let browser = app.browser_signed_in("hanako@example.jp", "correct horse battery staple").await;
    let page = browser.get(&format!("/claims/{claim}")).await;
    assert_eq!(page.texts(".notice-reason"), vec![reason.to_string()]);
    assert_eq!(page.texts(".cure-deadline"), vec![deadline.clone()]);

    // The claimant adds a file and corrects the draft, then resubmits.
    let jpeg = app::evidence::jpeg::fixtures::plain_jpeg(3_000);
    let up = claimant.upload(&format!("/claims/{claim}/evidence"), "apology_letter", jpeg, "letter2.jpg", None).await;
    assert_eq!(up.status, StatusCode::CREATED, "{:?}", up.body);
    let mut draft = complete_draft("やまだ", "1980-05-05");
    draft["registration_code"] = json!("ZX98-YW76");
    assert_eq!(claimant.put(&format!("/claims/{claim}"), draft).await.status, StatusCode::OK);
    let again = claimant.post(&format!("/claims/{claim}/submit"), json!({})).await;
    assert_eq!(again.status, StatusCode::OK, "{:?}", again.body);
    assert_eq!(again.body["status"], "submitted");

    // Back on the desk: the notice is answered, the new file is there, the lawyers were told.
    let detail = lawyer.get(&format!("/review/claims/{claim}")).await.body;
    assert_eq!(detail["claim"]["status"], "submitted");
    assert!(detail["decisions"][0]["answered_at"].is_string(), "{:?}", detail["decisions"]);
    assert_eq!(detail["evidence"].as_array().unwrap().len(), 1);
    assert_eq!(detail["claim"]["registration_code"], "ZX98YW76");
    assert!(detail["cure_deadline"].is_null());
    let told = entities::notification::Entity::find()
        .filter(entities::notification::Column::Kind.eq("claim.resubmitted"))
        .all(&db)
        .await
        .unwrap();
    assert_eq!(told.len(), 1);
    assert!(claimant.get(&format!("/claims/{claim}")).await.body["notice"].is_null());

    // Verified now; a decided claim cannot be decided again.
    let ok = lawyer.post(&path, json!({"decision": "verify"})).await;
    assert_eq!(ok.body["status"], "verified");
    let late = lawyer.post(&path, json!({"decision": "reject", "reason": "x"})).await;
    assert_eq!(late.status, StatusCode::CONFLICT);
    assert_eq!(late.body["error"]["code"], "claim_not_reviewable");
    let audit = entities::audit_event::Entity::find().all(&db).await.unwrap();
    for action in ["claim.info_requested", "claim.verified"] {
        assert!(audit.iter().any(|e| e.action == action && e.subject_id.map(|s| s.to_string()) == Some(claim.clone())));
    }
}

#[tokio::test]
async fn a_passed_cure_deadline_is_flagged_in_the_queue() {
    let app = spawn_app().await;
    let (_, late) = hanako(&app).await;
    let (_, on_time) =
        app.submitted_claim("taro@example.jp", complete_draft("すずき", "1975-03-03"), "山田 花子").await;
    let lawyer = lawyer_on_case(&app, "lawyer@example.jp").await;
    for id in [&late, &on_time] {
        let r = lawyer
            .post(
                &format!("/review/claims/{id}/decision"),
                json!({"decision": "request_info", "reason": "写真を追加してください"}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK);
    }
    // Time passes for one of them.
    let db = app.db().await;
    let uuid = uuid::Uuid::parse_str(&late).unwrap();
    entities::claim::Entity::update_many()
        .col_expr(
            entities::claim::Column::CureDeadline,
            sea_orm::sea_query::Expr::value(app::today_of(chrono::Utc::now()) - chrono::Duration::days(1)),
        )
        .filter(entities::claim::Column::Id.eq(uuid))
        .exec(&db)
        .await
        .unwrap();
    let queue = lawyer.get("/review/claims?status=needs_info").await.body;
    let items = queue["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    let flag = |id: &str| items.iter().find(|i| i["id"] == id).unwrap()["overdue"].clone();
    assert_eq!((flag(&late), flag(&on_time)), (json!(true), json!(false)));
    let overdue = lawyer.get("/review/claims?overdue=true").await.body;
    let ids: Vec<&str> = overdue["items"].as_array().unwrap().iter().map(|i| i["id"].as_str().unwrap()).collect();
    assert_eq!(ids, vec![late.as_str()]);
    // A bad filter is a field error, not an empty list.
    let bad = lawyer.get("/review/claims?status=lost&signal=psychic").await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bad.body["error"]["fields"]["status"].is_string() && bad.body["error"]["fields"]["signal"].is_string());
}

#[tokio::test]
async fn notes_and_assignment_stay_with_the_claim() {
    let app = spawn_app().await;
    let (_, claim) = hanako(&app).await;
    let lawyer = lawyer_on_case(&app, "lawyer@example.jp").await;
    let colleague = lawyer_on_case(&app, "colleague@example.jp").await;
    let me = colleague.get("/me").await.body["id"].as_str().unwrap().to_string();
    let empty = lawyer.post(&format!("/review/claims/{claim}/notes"), json!({"body": "  "})).await;
    assert_eq!(empty.status, StatusCode::UNPROCESSABLE_ENTITY);
    let note = lawyer.post(&format!("/review/claims/{claim}/notes"), json!({"body": "電話で本人確認済み"})).await;
    assert_eq!(note.status, StatusCode::CREATED);
    let assign = lawyer.put(&format!("/review/claims/{claim}/assignee"), json!({"assignee_id": me})).await;
    assert_eq!(assign.status, StatusCode::NO_CONTENT);
    let stranger = uuid::Uuid::new_v4();
    let bad = lawyer.put(&format!("/review/claims/{claim}/assignee"), json!({"assignee_id": stranger})).await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bad.body["error"]["fields"]["assignee_id"].is_string());

    let mine = colleague.get("/review/claims?assignee=me").await.body;
    assert_eq!(mine["total"], 1);
    assert_eq!(lawyer.get("/review/claims?assignee=me").await.body["total"], 0);
    assert_eq!(lawyer.get("/review/claims?assignee=none").await.body["total"], 0);
    let detail = colleague.get(&format!("/review/claims/{claim}")).await.body;
    assert_eq!(detail["notes"][0]["body"], "電話で本人確認済み");
    assert_eq!(detail["assignee_id"], me.as_str());
    assert!(portal::find_in(&app.bytes_at_rest(), &["本人確認済み"]).is_empty(), "notes are sealed at rest");
}

#[tokio::test]
async fn bulk_verification_verifies_only_claims_whose_code_and_identity_match() {
    let app = spawn_app().await;
    crate::roster::import(&app, crate::roster::roster_csv(&[crate::roster::CANARY_LINE], 20)).await.unwrap();
    let (matching_api, matching) =
        app.submitted_claim("canary@example.jp", crate::roster::canary_claim(), "炉須太 金糸雀").await;
    let (_, other) = hanako(&app).await;
    let lawyer = lawyer_on_case(&app, "lawyer@example.jp").await;

    let queue = lawyer.get("/review/claims?signal=registration_code_match").await.body;
    let ids: Vec<&str> = queue["items"].as_array().unwrap().iter().map(|i| i["id"].as_str().unwrap()).collect();
    assert_eq!(ids, vec![matching.as_str()], "{queue:?}");
    assert_eq!(queue["items"][0]["code_and_identity_match"], true);
    assert!(queue["items"][0]["signals"].as_array().unwrap().iter().all(|s| s["reason"].as_str().unwrap().len() > 10));

    let report = lawyer.post("/review/bulk-verify", json!({"case": "benesse-2014"})).await;
    assert_eq!(report.status, StatusCode::OK, "{:?}", report.body);
    let number = matching_api.get(&format!("/claims/{matching}")).await.body["number"].clone();
    assert_eq!(report.body["verified"], json!([number]));
    assert_eq!(report.body["left_for_review"], 1);
    assert_eq!(matching_api.get(&format!("/claims/{matching}")).await.body["status"], "verified");
    let left = lawyer.get(&format!("/review/claims/{other}")).await.body;
    assert_eq!(left["claim"]["status"], "submitted", "nothing is rejected or verified without a match");
}

#[tokio::test]
async fn the_case_policy_may_verify_a_matching_claim_at_submission_and_never_rejects() {
    let app = spawn_app().await;
    crate::roster::import(&app, crate::roster::roster_csv(&[crate::roster::CANARY_LINE], 20)).await.unwrap();
    let (admin, _) = app.staff_verified("admin2@example.jp", Role::Admin).await;
    let r = admin.put("/admin/cases/benesse-2014/policy", json!({"auto_verify": true})).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let (api, matching) =
        app.submitted_claim("canary@example.jp", crate::roster::canary_claim(), "炉須太 金糸雀").await;
    let (hanako_api, other) = hanako(&app).await;
    assert_eq!(api.get(&format!("/claims/{matching}")).await.body["status"], "verified");
    assert_eq!(hanako_api.get(&format!("/claims/{other}")).await.body["status"], "submitted");
    let db = app.db().await;
    let auto = entities::audit_event::Entity::find()
        .filter(entities::audit_event::Column::Action.eq("claim.auto_verified"))
        .all(&db)
        .await
        .unwrap();
    assert_eq!(auto.len(), 1);
    assert!(auto[0].actor_id.is_none(), "the system decided, not a person");
    // The claimant sees it as any other decision: in their access log.
    let log = api.get("/me/access-log").await.body;
    assert!(log.as_array().unwrap().iter().any(|e| e["action"] == "claim.auto_verified"));
}

#[tokio::test]
async fn the_review_desk_works_as_pages() {
    let app = spawn_app().await;
    let (_, claim) = hanako(&app).await;
    let lawyer = app.staff("lawyer@example.jp", Role::Lawyer).await;
    drop(lawyer);
    app.add_to_case("lawyer@example.jp").await;
    let browser = app.browser_signed_in("lawyer@example.jp", "staff password long enough").await;

    // Enrolment through the pages: start, scan (the key is shown once), enter a code.
    let page = browser.get("/review").await;
    assert!(page.url.ends_with("/staff/second-factor"), "{}", page.url);
    let enrol = browser.submit(&page, "/staff/second-factor/setup", &[]).await;
    assert_eq!(enrol.status, StatusCode::OK, "{}", portal::captured_logs().text());
    assert!(enrol.html.contains("<svg"), "a QR code is shown");
    let secret = enrol.texts("code.secret").pop().expect("the key is shown");
    let wrong = browser.submit(&enrol, "/staff/second-factor", &[("code", "000000")]).await;
    assert_eq!(wrong.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(wrong.texts("#f-code-error").len(), 1);
    let code = portal::totp_code(&secret, 0);
    let queue = browser.submit(&wrong, "/staff/second-factor", &[("code", code.as_str())]).await;
    assert_eq!(queue.status, StatusCode::OK, "{}", portal::captured_logs().text());
    assert!(queue.url.ends_with("/review"), "{}", queue.url);
    let numbers = queue.texts("table.queue th[scope=row] a");
    assert_eq!(numbers.len(), 1, "{}", queue.html);

    // The claim's file, then a deficiency notice with a refused first attempt.
    let file = browser.get(&format!("/review/claims/{claim}")).await;
    assert_eq!(file.status, StatusCode::OK, "{}", portal::captured_logs().text());
    assert!(file.html.contains("山田 花子") && file.html.contains("千代田1-1"));
    let refused = browser
        .submit(
            &file,
            &format!("/review/claims/{claim}/decision"),
            &[("decision", "request_info"), ("reason", ""), ("cure_days", "10")],
        )
        .await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(refused.texts("#f-reason-error").len(), 1);
    assert_eq!(refused.input_value("cure_days").as_deref(), Some("10"), "what was typed is kept");
    let done = browser
        .submit(
            &refused,
            &format!("/review/claims/{claim}/decision"),
            &[("decision", "request_info"), ("reason", "住所の確認資料を追加してください"), ("cure_days", "10")],
        )
        .await;
    assert_eq!(done.status, StatusCode::OK);
    assert!(done.url.contains("done=decision"), "{}", done.url);
    assert!(done.html.contains("住所の確認資料を追加してください"));

    // The claimant's status page shows it.
    let claimant = app.browser_signed_in("hanako@example.jp", "correct horse battery staple").await;
    let status = claimant.get(&format!("/claims/{claim}")).await;
    assert_eq!(status.texts(".notice-reason"), vec!["住所の確認資料を追加してください".to_string()]);
}

#[tokio::test]
async fn an_administrator_cannot_acknowledge_an_alert_about_themselves() {
    use sea_orm::ActiveModelTrait;
    let app = spawn_app().await;
    let (mut admin, _) = app.staff_verified("admin2@example.jp", Role::Admin).await;
    admin.lang = "en";
    let (other, _) = app.staff_verified("admin3@example.jp", Role::Admin).await;
    let db = app.db().await;
    let me: uuid::Uuid = admin.get("/me").await.body["id"].as_str().expect("my id").parse().unwrap();
    let alert = entities::alert::Model {
        id: uuid::Uuid::new_v4(),
        kind: "cap.exports".into(),
        user_id: Some(me),
        detail: "{}".into(),
        created_at: chrono::Utc::now(),
        acknowledged_at: None,
        acknowledged_by: None,
    };
    entities::alert::ActiveModel::from(alert.clone()).insert(&db).await.unwrap();
    let mine = admin.post(&format!("/admin/alerts/{}/acknowledge", alert.id), json!({})).await;
    assert_eq!(mine.status, StatusCode::CONFLICT, "{:?}", mine.body);
    assert_eq!(mine.body["error"]["message"], "An alert about you is for another administrator to acknowledge.");
    let theirs = other.post(&format!("/admin/alerts/{}/acknowledge", alert.id), json!({})).await;
    assert_eq!(theirs.status, StatusCode::NO_CONTENT);
}

/// A lawyer verifies `claim`; the round is then computed as `admin`: where the claim ended up.
async fn verify_and_compute(lawyer: &ApiClient, admin: &ApiClient, round: &str, claim: &str) -> serde_json::Value {
    let r = lawyer.post(&format!("/review/claims/{claim}/decision"), json!({"decision": "verify"})).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    admin.post(&format!("/admin/rounds/{round}/compute"), json!({})).await.body
}

fn excluded_reasons(preview: &serde_json::Value, claim: &str) -> Vec<String> {
    preview["excluded"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["claim_id"] == claim)
        .flat_map(|e| e["reasons"].as_array().unwrap().iter().map(|r| r.as_str().unwrap().to_string()))
        .collect()
}

#[tokio::test]
async fn a_child_added_after_verification_sends_the_claim_back_to_the_lawyers_and_out_of_the_round() {
    let app = spawn_app().await;
    let (claimant, claim) = hanako(&app).await;
    let lawyer = lawyer_on_case(&app, "lawyer@example.jp").await;
    let (admin, _) = app.staff_verified("admin2@example.jp", Role::Admin).await;
    let round = app.open_round(&admin).await;
    let preview = verify_and_compute(&lawyer, &admin, &round, &claim).await;
    assert!(preview["members"].as_array().unwrap().iter().any(|m| m["claim_id"] == claim.as_str()), "{preview:?}");

    // A second child, added after verification.
    let mut identity = complete_draft("やまだ", "1980-05-05");
    identity["persons"].as_array_mut().unwrap().push(json!({"relation": "child", "family_name": "山田",
        "given_name": "二郎", "family_name_kana": "やまだ", "given_name_kana": "じろう",
        "birth_date": "2012-06-06", "gender": "male"}));
    let r = claimant.put(&format!("/claims/{claim}/identity"), identity).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["status"], "submitted", "back on the lawyers' desk");
    assert_eq!(r.body["needs_reverification"], true);
    assert!(r.body["round_exclusions"].as_array().unwrap().contains(&json!("changed_since_review")), "{:?}", r.body);

    // The round leaves it out, saying why; the lawyers see it and decide again.
    let preview = admin.post(&format!("/admin/rounds/{round}/compute"), json!({})).await.body;
    assert!(preview["members"].as_array().unwrap().iter().all(|m| m["claim_id"] != claim.as_str()), "{preview:?}");
    assert!(excluded_reasons(&preview, &claim).contains(&"changed_since_review".to_string()), "{preview:?}");
    let browser = app.staff_browser("admin3@example.jp", Role::Admin).await;
    let page = browser.get(&format!("/admin/rounds/{round}")).await;
    let computed = browser.submit(&page, &format!("/admin/rounds/{round}/compute"), &[]).await;
    assert!(computed.html.contains("確認し直すまで提訴の対象になりません"), "the reason is in words");
    let detail = lawyer.get(&format!("/review/claims/{claim}")).await.body;
    assert_eq!(detail["claim"]["status"], "submitted");
    assert_eq!(detail["claim"]["needs_reverification"], true);
    assert_eq!(detail["claim"]["persons"].as_array().unwrap().len(), 3);
    let again = lawyer.post(&format!("/review/claims/{claim}/decision"), json!({"decision": "verify"})).await;
    assert_eq!(again.status, StatusCode::OK, "{:?}", again.body);
    assert_eq!(lawyer.get(&format!("/review/claims/{claim}")).await.body["claim"]["needs_reverification"], false);

    let db = app.db().await;
    let corrected = entities::audit_event::Entity::find()
        .filter(entities::audit_event::Column::Action.eq("claim.corrected"))
        .one(&db)
        .await
        .unwrap()
        .expect("the correction is audited");
    assert!(corrected.detail.contains(r#""returned_to_review":true"#), "{}", corrected.detail);
    let told = entities::notification::Entity::find()
        .filter(entities::notification::Column::Kind.eq("claim.changed_after_verification"))
        .count(&db)
        .await
        .unwrap();
    assert_eq!(told, 1);
}

#[tokio::test]
async fn a_changed_birth_date_is_checked_again_and_a_new_phone_keeps_the_verification() {
    let app = spawn_app().await;
    let (claimant, claim) = hanako(&app).await;
    let lawyer = lawyer_on_case(&app, "lawyer@example.jp").await;
    let (admin, _) = app.staff_verified("admin2@example.jp", Role::Admin).await;
    let round = app.open_round(&admin).await;
    verify_and_compute(&lawyer, &admin, &round, &claim).await;

    // A new phone number: still verified (it does not change who is a plaintiff), flagged for the desk.
    let mut identity = complete_draft("やまだ", "1980-05-05");
    identity["phone"] = json!("0312345678");
    let r = claimant.put(&format!("/claims/{claim}/identity"), identity.clone()).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["status"], "verified");
    assert_eq!(r.body["needs_reverification"], true);
    // The lawyers may look again and confirm, which clears the flag.
    claimant.sign_all(&claim).await;
    let preview = verify_and_compute(&lawyer, &admin, &round, &claim).await;
    assert!(excluded_reasons(&preview, &claim).is_empty(), "{preview:?}");

    // A birth date: back to the lawyers, out of the round.
    identity["persons"][1]["birth_date"] = json!("2010-04-02");
    let r = claimant.put(&format!("/claims/{claim}/identity"), identity).await;
    assert_eq!(r.body["status"], "submitted", "{:?}", r.body);
    let preview = admin.post(&format!("/admin/rounds/{round}/compute"), json!({})).await.body;
    assert!(excluded_reasons(&preview, &claim).contains(&"changed_since_review".to_string()), "{preview:?}");
    // Signed again for the changed person and verified again, it is back in.
    claimant.sign_all(&claim).await;
    let preview = verify_and_compute(&lawyer, &admin, &round, &claim).await;
    assert!(preview["members"].as_array().unwrap().iter().any(|m| m["claim_id"] == claim.as_str()), "{preview:?}");
}

/// Staying just under the hourly cap all day is stopped by the day's cap;
/// a day far above the reader's own usual raises an alert without refusing;
/// every alert reaches the other administrators by mail.
#[tokio::test]
async fn a_day_of_reads_under_the_hourly_cap_is_stopped_and_an_unusual_day_is_reported() {
    let app = spawn_app_with(|f| {
        f.merge(("claim_views_per_hour", 1_000))
            .merge(("claim_views_per_day", 60))
            .merge(("session_hours", 48))
            .merge(("idle_minutes_staff", 2_880))
    })
    .await;
    app.clock.set(chrono::Utc::now());
    let (_, claim) = hanako(&app).await;
    let lawyer = lawyer_on_case(&app, "lawyer@example.jp").await;
    let (admin, _) = app.staff_verified("admin2@example.jp", Role::Admin).await;
    let path = format!("/review/claims/{claim}");
    let read = || lawyer.get(&path);
    // Ten reads an hour over five hours: never near the hourly cap.
    for _ in 0..5 {
        for _ in 0..10 {
            assert_eq!(read().await.status, StatusCode::OK);
        }
        app.clock.advance(chrono::Duration::minutes(61));
    }
    // The 50th read of the day, with nothing the weeks before, is unusual: reported, not refused.
    let alerts = admin.get("/admin/alerts").await.body;
    let kinds: Vec<&str> = alerts.as_array().unwrap().iter().map(|a| a["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["baseline.claim_views"], "{alerts:?}");
    for _ in 0..10 {
        assert_eq!(read().await.status, StatusCode::OK);
    }
    let refused = read().await;
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS, "the 61st read in 24 hours");
    let alerts = admin.get("/admin/alerts").await.body;
    let capped = alerts.as_array().unwrap().iter().find(|a| a["kind"] == "cap.claim_views").expect("a cap alert");
    assert!(capped["detail"].to_string().contains("day"), "{capped:?}");
    // The day after, reads go on.
    app.clock.advance(chrono::Duration::hours(24));
    assert_eq!(read().await.status, StatusCode::OK);

    // Each alert is a mail to every administrator: here the bootstrap one and admin2, not the lawyer.
    let db = app.db().await;
    let mails = entities::outbox::Entity::find()
        .filter(entities::outbox::Column::Kind.eq("staff.alert_raised"))
        .all(&db)
        .await
        .unwrap();
    let admins =
        entities::user::Entity::find().filter(entities::user::Column::Role.eq("admin")).count(&db).await.unwrap();
    assert_eq!(mails.len() as u64, 2 * admins, "two alerts, each to every administrator");
    let lawyer_id = lawyer.get("/me").await.body["id"].as_str().unwrap().parse::<uuid::Uuid>().unwrap();
    assert!(mails.iter().all(|m| m.recipient_id != lawyer_id));
}
