//! Filing rounds: who is in, with what tier and amount and why; who is not,
//! and why; the same inputs give the same bytes; freezing numbers the
//! plaintiffs and later rounds do not take them again.
use app::auth::Role;
use portal::{complete_draft, spawn_app, ApiClient, TestApp};
use reqwest::StatusCode;
use serde_json::{json, Value};

async fn verify(lawyer: &ApiClient, claim: &str) {
    let r = lawyer.post(&format!("/review/claims/{claim}/decision"), json!({"decision": "verify"})).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
}

async fn new_round(admin: &ApiClient, name: &str) -> String {
    let today = app::today_of(chrono::Utc::now());
    let r = admin
        .post(
            "/admin/cases/benesse-2014/rounds",
            json!({"name": name, "court": "東京地方裁判所", "cut_off": today.to_string(),
                   "filing_date": (today + chrono::Duration::days(10)).to_string()}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    r.body["id"].as_str().unwrap().to_string()
}

fn default_policy() -> Value {
    serde_json::to_value(app::rounds::domain::benesse_default_policy()).unwrap()
}

async fn people(app: &TestApp) -> (ApiClient, String, String, String) {
    let (lawyer, _) = app.staff_verified("lawyer@example.jp", Role::Lawyer).await;
    app.add_to_case("lawyer@example.jp").await;
    // Verified, with a child: two plaintiffs.
    let (_, family) =
        app.submitted_claim("hanako@example.jp", complete_draft("やまだ", "1980-05-05"), "山田 花子").await;
    verify(&lawyer, &family).await;
    // Submitted, not verified.
    let (_, waiting) =
        app.submitted_claim("taro@example.jp", complete_draft("すずき", "1975-03-03"), "山田 花子").await;
    // Verified, then withdrawn.
    let (gone_api, gone) =
        app.submitted_claim("jiro@example.jp", complete_draft("さとう", "1970-01-01"), "山田 花子").await;
    verify(&lawyer, &gone).await;
    assert_eq!(gone_api.post(&format!("/claims/{gone}/withdraw"), json!({})).await.status, StatusCode::OK);
    // A draft is not a candidate at all.
    let draft = app.claimant("draft@example.jp").await;
    draft.post("/claims", json!({"case": "benesse-2014"})).await;
    (lawyer, family, waiting, gone)
}

#[tokio::test]
async fn a_round_takes_exactly_the_eligible_plaintiffs_and_says_why_others_are_out() {
    let app = spawn_app().await;
    let (_lawyer, family, waiting, gone) = people(&app).await;
    let (mut admin, _) = app.staff_verified("admin2@example.jp", Role::Admin).await;
    admin.lang = "en";
    let round = new_round(&admin, "第1次提訴").await;

    let early = admin.post(&format!("/admin/rounds/{round}/compute"), json!({})).await;
    assert_eq!(early.status, StatusCode::CONFLICT);
    assert_eq!(early.body["error"]["code"], "round_has_no_policy");

    // A bad policy is refused with field errors, in the reader's language.
    let mut bad = default_policy();
    bad["tiers"][1]["amount_yen"] = json!(0);
    bad["item_points"]["bank_account"] = json!(3);
    let refused = admin.put(&format!("/admin/rounds/{round}/policy"), bad).await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY, "{:?}", refused.body);
    let fields = &refused.body["error"]["fields"];
    assert!(fields["tiers[1].amount_yen"].is_string() && fields["item_points.bank_account"].is_string(), "{fields:?}");
    let set = admin.put(&format!("/admin/rounds/{round}/policy"), default_policy()).await;
    assert_eq!(set.status, StatusCode::CREATED, "{:?}", set.body);
    assert_eq!(set.body["version"], 1);
    assert_eq!(
        admin.put(&format!("/admin/rounds/{round}/policy"), default_policy()).await.status,
        StatusCode::CONFLICT
    );

    let preview = admin.post(&format!("/admin/rounds/{round}/compute"), json!({})).await;
    assert_eq!(preview.status, StatusCode::OK, "{:?}", preview.body);
    let body = &preview.body;
    let members: Vec<(String, u64)> = body["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["claim_id"].as_str().unwrap().to_string(), m["position"].as_u64().unwrap()))
        .collect();
    assert_eq!(members, vec![(family.clone(), 0), (family.clone(), 1)], "the parent and the child");
    let child = &body["members"][1];
    assert!(child["reasons"].as_array().unwrap().iter().any(|r| r["kind"] == "minor"), "{child:?}");
    let excluded: Vec<(String, Value)> = body["excluded"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["claim_id"].as_str().unwrap().to_string(), e["reasons"].clone()))
        .collect();
    assert!(excluded.contains(&(waiting.clone(), json!(["not_verified"]))), "{excluded:?}");
    assert!(excluded.contains(&(gone.clone(), json!(["withdrawn"]))), "{excluded:?}");
    assert!(excluded.iter().all(|(id, _)| *id != family));
    let total: u64 = body["members"].as_array().unwrap().iter().map(|m| m["amount_yen"].as_u64().unwrap()).sum();
    assert_eq!(body["total_yen"].as_u64().unwrap(), total);
    assert_eq!(body["by_tier"].as_array().unwrap().len(), 4);

    // The same inputs give the same bytes.
    let again = admin.post(&format!("/admin/rounds/{round}/compute"), json!({})).await;
    assert_eq!(again.body["sha256"], body["sha256"]);
    assert_eq!(again.body.to_string(), body.to_string());

    // Freezing numbers the plaintiffs; the round no longer changes.
    let frozen = admin.post(&format!("/admin/rounds/{round}/freeze"), json!({})).await;
    assert_eq!(frozen.status, StatusCode::OK, "{:?}", frozen.body);
    assert_eq!(frozen.body["round"]["state"], "frozen");
    assert_eq!(frozen.body["sha256"], body["sha256"]);
    let numbered = admin.get(&format!("/admin/rounds/{round}/members")).await.body;
    let numbers: Vec<u64> =
        numbered.as_array().unwrap().iter().map(|m| m["plaintiff_number"].as_u64().unwrap()).collect();
    assert_eq!(numbers, vec![1, 2]);
    assert_eq!(admin.post(&format!("/admin/rounds/{round}/compute"), json!({})).await.status, StatusCode::CONFLICT);
    assert_eq!(admin.post(&format!("/admin/rounds/{round}/freeze"), json!({})).await.status, StatusCode::CONFLICT);
    let mut changed = default_policy();
    changed["minor_uplift_points"] = json!(1);
    assert_eq!(admin.put(&format!("/admin/rounds/{round}/policy"), changed).await.status, StatusCode::CONFLICT);

    // Filing is recorded once, after freezing.
    let filed = admin.post(&format!("/admin/rounds/{round}/filed"), json!({})).await;
    assert_eq!(filed.status, StatusCode::OK, "{:?}", filed.body);
    assert_eq!(filed.body["state"], "filed");
    assert_eq!(admin.post(&format!("/admin/rounds/{round}/filed"), json!({})).await.status, StatusCode::CONFLICT);

    // The next round does not take them again.
    let second = new_round(&admin, "第2次提訴").await;
    admin.put(&format!("/admin/rounds/{second}/policy"), default_policy()).await;
    let next = admin.post(&format!("/admin/rounds/{second}/compute"), json!({})).await.body;
    assert!(next["members"].as_array().unwrap().is_empty(), "{next:?}");
    assert_eq!(admin.get("/admin/cases/benesse-2014/rounds").await.body.as_array().unwrap().len(), 2);

    let db = app.db().await;
    use sea_orm::EntityTrait;
    let actions: Vec<String> =
        entities::audit_event::Entity::find().all(&db).await.unwrap().into_iter().map(|e| e.action).collect();
    for a in ["round.created", "round.policy_set", "round.computed", "round.frozen", "round.filed"] {
        assert!(actions.iter().any(|x| x == a), "{a} is audited");
    }
}

#[tokio::test]
async fn a_round_is_for_administrators_only() {
    let app = spawn_app().await;
    let (lawyer, _) = app.staff_verified("lawyer@example.jp", Role::Lawyer).await;
    let body =
        json!({"name": "第1次提訴", "court": "東京地方裁判所", "cut_off": "2026-11-21", "filing_date": "2026-12-01"});
    assert_eq!(lawyer.post("/admin/cases/benesse-2014/rounds", body.clone()).await.status, StatusCode::NOT_FOUND);
    let (mut admin, _) = app.staff_verified("admin2@example.jp", Role::Admin).await;
    admin.lang = "en";
    let bad = admin
        .post(
            "/admin/cases/benesse-2014/rounds",
            json!({"name": "", "court": "x", "cut_off": "2026-12-01", "filing_date": "2026-11-01"}),
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bad.body["error"]["fields"]["name"].is_string() && bad.body["error"]["fields"]["filing_date"].is_string());
}

#[tokio::test]
async fn administrators_run_a_round_from_the_pages() {
    let app = spawn_app().await;
    let _ = people(&app).await;
    let browser = app.staff_browser("admin2@example.jp", Role::Admin).await;
    let list = browser.get("/admin/cases/benesse-2014/rounds").await;
    assert_eq!(list.status, StatusCode::OK);
    let refused = browser
        .submit(
            &list,
            "/admin/cases/benesse-2014/rounds",
            &[("name", "第1次提訴"), ("court", ""), ("cut_off", "2026-13-01"), ("filing_date", "")],
        )
        .await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(refused.input_value("name").as_deref(), Some("第1次提訴"), "what was typed is kept");
    assert!(refused.texts("#f-court-error").len() == 1 && refused.texts("#f-cut_off-error").len() == 1);
    let today = app::today_of(chrono::Utc::now());
    let (cut, filing) = (today.to_string(), (today + chrono::Duration::days(10)).to_string());
    let round = browser
        .submit(
            &refused,
            "/admin/cases/benesse-2014/rounds",
            &[("name", "第1次提訴"), ("court", "東京地方裁判所"), ("cut_off", &cut), ("filing_date", &filing)],
        )
        .await;
    assert_eq!(round.status, StatusCode::OK);
    assert!(round.url.contains("/admin/rounds/"), "{}", round.url);
    let path = round.url.split("/admin/rounds/").nth(1).unwrap().to_string();
    // The default policy is offered; a broken one is refused beside it.
    let offered = round.texts("#f-policy").pop().unwrap();
    assert!(offered.contains("expected_delivery_date"));
    let broken =
        browser.submit(&round, &format!("/admin/rounds/{path}/policy"), &[("policy", "{\"tiers\": []}")]).await;
    assert_eq!(broken.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(broken.html.contains("tiers"));
    let saved = browser.submit(&broken, &format!("/admin/rounds/{path}/policy"), &[("policy", &offered)]).await;
    assert_eq!(saved.status, StatusCode::OK);
    let preview = browser.submit(&saved, &format!("/admin/rounds/{path}/compute"), &[]).await;
    assert_eq!(preview.status, StatusCode::OK);
    assert_eq!(preview.texts("table.chart tbody tr").len(), 4, "a row per tier");
    assert_eq!(preview.texts("table.chart meter").len(), 8);
    let frozen = browser.submit(&preview, &format!("/admin/rounds/{path}/freeze"), &[]).await;
    assert_eq!(frozen.status, StatusCode::OK);
    assert!(frozen.html.contains("確定済み"));
    assert_eq!(frozen.texts("#bundle").len(), 1, "the bundle section is offered once frozen");
}

#[tokio::test]
async fn an_adult_household_member_is_left_out_until_they_give_their_own_retainer() {
    let app = spawn_app().await;
    let (lawyer, _) = app.staff_verified("lawyer@example.jp", Role::Lawyer).await;
    app.add_to_case("lawyer@example.jp").await;
    let mut draft = complete_draft("やまだ", "1980-05-05");
    draft["persons"][1] = json!({"relation": "spouse", "family_name": "山田", "given_name": "太郎",
        "family_name_kana": "やまだ", "given_name_kana": "たろう", "birth_date": "1978-02-02", "gender": "male"});
    let (_, claim) = app.submitted_claim("hanako@example.jp", draft, "山田 花子").await;
    verify(&lawyer, &claim).await;
    let (admin, _) = app.staff_verified("admin2@example.jp", Role::Admin).await;
    let round = new_round(&admin, "第1次提訴").await;
    admin.put(&format!("/admin/rounds/{round}/policy"), default_policy()).await;
    let preview = admin.post(&format!("/admin/rounds/{round}/compute"), json!({})).await.body;
    let members = preview["members"].as_array().unwrap();
    assert_eq!(members.len(), 1, "{preview:?}");
    assert_eq!(members[0]["position"], 0);
    assert_eq!(preview["excluded"][0]["position"], 1);
    assert_eq!(preview["excluded"][0]["reasons"], json!(["no_current_consent"]));
}
