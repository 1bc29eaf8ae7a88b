use migration::MigratorTrait;
use portal::{complete_draft, spawn_app};
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test]
async fn a_claimant_completes_an_intake_through_the_api() {
    let app = spawn_app().await;
    let api = app.claimant("hanako@example.jp").await;

    let cases = api.get("/cases").await;
    assert_eq!(cases.body[0]["slug"], "benesse-2014");
    assert!(cases.body[0]["leaked_items"].as_array().unwrap().iter().any(|i| i["code"] == "expected_delivery_date"));

    let created = api.post("/claims", json!({"case": "benesse-2014"})).await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    assert_eq!(created.body["status"], "draft");
    assert_eq!(created.body["number"], "BN-000001");
    let id = created.body["id"].as_str().unwrap().to_string();

    let saved = api.put(&format!("/claims/{id}"), complete_draft("やまだ", "1980-05-05")).await;
    assert_eq!(saved.status, StatusCode::OK, "{:?}", saved.body);
    assert_eq!(saved.body["persons"][0]["family_name_kana"], "ヤマダ", "kana is stored as katakana");
    assert_eq!(saved.body["address"]["postal_code"], "1000001");
    // Only the signatures are missing now.
    assert_eq!(saved.body["missing"], json!(["consent.retainer", "consent.fee_terms", "consent.privacy_notice"]));
    api.sign_all(&id).await;
    assert_eq!(api.get(&format!("/claims/{id}")).await.body["missing"], json!([]));

    let submitted = api.post(&format!("/claims/{id}/submit"), json!({})).await;
    assert_eq!(submitted.status, StatusCode::OK, "{:?}", submitted.body);
    assert_eq!(submitted.body["status"], "submitted");

    let listed = api.get("/claims").await;
    assert_eq!(listed.body.as_array().unwrap().len(), 1);
    assert_eq!(listed.body[0]["status"], "submitted");
    let fetched = api.get(&format!("/claims/{id}")).await;
    assert_eq!(fetched.body["harms"][0]["sender"], "某教育サービス");
    assert_eq!(fetched.body["registration_code"], "AB12CD34");
}

#[tokio::test]
async fn submitting_an_incomplete_draft_lists_what_is_missing() {
    let app = spawn_app().await;
    let mut api = app.claimant("hanako@example.jp").await;
    api.lang = "en";
    let id = api.post("/claims", json!({"case": "benesse-2014"})).await.body["id"].as_str().unwrap().to_string();
    let r = api.post(&format!("/claims/{id}/submit"), json!({})).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.body["error"]["code"], "incomplete");
    for field in ["persons", "address", "phone", "leaked_items", "apology_letter_received", "apology_option"] {
        assert_eq!(r.body["error"]["fields"][field], "Please fill this in.", "{field}");
    }
}

#[tokio::test]
async fn each_bad_field_gets_a_clear_error_and_the_saved_draft_is_kept() {
    let app = spawn_app().await;
    let mut api = app.claimant("hanako@example.jp").await;
    let id = api.post("/claims", json!({"case": "benesse-2014"})).await.body["id"].as_str().unwrap().to_string();
    let good = complete_draft("やまだ", "1980-05-05");
    assert_eq!(api.put(&format!("/claims/{id}"), good.clone()).await.status, StatusCode::OK);

    // (json pointer, bad value, field path, English message)
    let cases = [
        ("/persons/0/family_name", json!(""), "persons[0].family_name", "Please fill this in."),
        (
            "/persons/0/family_name",
            json!("山田<script>"),
            "persons[0].family_name",
            "This contains characters that cannot be used.",
        ),
        (
            "/persons/0/given_name_kana",
            json!("花子"),
            "persons[0].given_name_kana",
            "Enter the reading in hiragana or katakana.",
        ),
        ("/persons/1/birth_date", json!("2009-02-30"), "persons[1].birth_date", "Enter a date like 2014-07-09."),
        ("/persons/1/birth_date", json!("2099-01-01"), "persons[1].birth_date", "The date cannot be in the future."),
        (
            "/persons/0/birth_date",
            json!("1850-01-01"),
            "persons[0].birth_date",
            "This date is not possible. Please check it.",
        ),
        ("/persons/0/gender", json!("x"), "persons[0].gender", "Please choose from the list."),
        ("/persons/1/relation", json!("cousin"), "persons[1].relation", "Please choose from the list."),
        (
            "/address/postal_code",
            json!("12-34567"),
            "address.postal_code",
            "Enter a 7-digit postal code, e.g. 123-4567.",
        ),
        ("/address/prefecture", json!("Tokyo"), "address.prefecture", "Please choose from the list."),
        ("/address/city", json!(""), "address.city", "Please fill this in."),
        (
            "/phone",
            json!("12345"),
            "phone",
            "Enter a phone number of 10 or 11 digits starting with 0, e.g. 090-1234-5678.",
        ),
        ("/email", json!("hanako@"), "email", "Enter an e-mail address like hanako@example.jp."),
        ("/leaked_items/0", json!("credit_card"), "leaked_items", "Please choose from the list."),
        ("/services/0", json!("netflix"), "services", "Please choose from the list."),
        (
            "/registration_code",
            json!("AB!"),
            "registration_code",
            "Enter the registration code from the apology letter, in letters and digits.",
        ),
        ("/apology_option", json!("cash"), "apology_option", "Please choose from the list."),
        (
            "/learned_of_leak_on",
            json!("2014-06-25"),
            "learned_of_leak_on",
            "This date is before the first harms (direct mail and the like) were seen; you learned of the leak after that.",
        ),
        (
            "/harms/0/date",
            json!("2012-12-31"),
            "harms[0].date",
            "This date is before the leak began; harms in this case came after it.",
        ),
        ("/harms/0/kind", json!("spam"), "harms[0].kind", "Please choose from the list."),
        ("/harms/0/date", json!("yesterday"), "harms[0].date", "Enter a date like 2014-07-09."),
        ("/harms/0/note", json!("あ".repeat(1001)), "harms[0].note", "This is too long. Please shorten it."),
    ];
    api.lang = "en";
    for (pointer, bad, field, message) in cases {
        let mut body = good.clone();
        *body.pointer_mut(pointer).unwrap_or_else(|| panic!("{pointer}")) = bad;
        let r = api.put(&format!("/claims/{id}"), body).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{pointer}");
        assert_eq!(r.body["error"]["fields"][field], message, "{pointer}: {:?}", r.body);
    }
    // Japanese is the default language of messages.
    api.lang = "ja";
    let mut body = good.clone();
    body["address"]["postal_code"] = json!("abc");
    let r = api.put(&format!("/claims/{id}"), body).await;
    assert!(r.body["error"]["fields"]["address.postal_code"].as_str().unwrap().contains("郵便番号"));

    // Nothing already saved was lost.
    let kept = api.get(&format!("/claims/{id}")).await;
    assert_eq!(kept.body["phone"], "09012345678");
    assert_eq!(kept.body["persons"].as_array().unwrap().len(), 2);
    assert_eq!(kept.body["harms"][0]["note"], "見覚えのない会社からのDM");
}

#[tokio::test]
async fn a_second_claimant_gets_404_on_the_first_ones_claim() {
    let app = spawn_app().await;
    let first = app.claimant("first@example.jp").await;
    let id = first.post("/claims", json!({"case": "benesse-2014"})).await.body["id"].as_str().unwrap().to_string();
    first.put(&format!("/claims/{id}"), complete_draft("やまだ", "1980-05-05")).await;
    let second = app.claimant("second@example.jp").await;

    let unknown = uuid::Uuid::new_v4();
    for target in [id.as_str(), &unknown.to_string(), "not-a-uuid"] {
        assert_eq!(second.get(&format!("/claims/{target}")).await.status, StatusCode::NOT_FOUND);
        assert_eq!(
            second.put(&format!("/claims/{target}"), complete_draft("すずき", "1981-01-01")).await.status,
            StatusCode::NOT_FOUND
        );
        assert_eq!(second.post(&format!("/claims/{target}/submit"), json!({})).await.status, StatusCode::NOT_FOUND);
        assert_eq!(second.post(&format!("/claims/{target}/withdraw"), json!({})).await.status, StatusCode::NOT_FOUND);
    }
    assert_eq!(second.get("/claims").await.body, json!([]));
    // The first claimant's data is untouched.
    let mine = first.get(&format!("/claims/{id}")).await;
    assert_eq!(mine.body["status"], "draft");
    assert_eq!(mine.body["persons"][0]["family_name_kana"], "ヤマダ");
}

#[tokio::test]
async fn a_submitted_claim_cannot_be_changed_and_answers_409() {
    let app = spawn_app().await;
    let api = app.claimant("hanako@example.jp").await;
    let id = api.post("/claims", json!({"case": "benesse-2014"})).await.body["id"].as_str().unwrap().to_string();
    api.put(&format!("/claims/{id}"), complete_draft("やまだ", "1980-05-05")).await;
    api.sign_all(&id).await;
    assert_eq!(api.post(&format!("/claims/{id}/submit"), json!({})).await.status, StatusCode::OK);
    let r = api.put(&format!("/claims/{id}"), complete_draft("すずき", "1980-05-05")).await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert_eq!(r.body["error"]["code"], "claim_not_editable");
    // A retried submit is idempotent.
    let again = api.post(&format!("/claims/{id}/submit"), json!({})).await;
    assert_eq!(again.status, StatusCode::OK);
    assert_eq!(again.body["status"], "submitted");
    assert_eq!(api.get(&format!("/claims/{id}")).await.body["persons"][0]["family_name_kana"], "ヤマダ");
}

#[tokio::test]
async fn one_claim_per_claimant_per_case() {
    let app = spawn_app().await;
    let api = app.claimant("hanako@example.jp").await;
    assert_eq!(api.post("/claims", json!({"case": "benesse-2014"})).await.status, StatusCode::CREATED);
    let again = api.post("/claims", json!({"case": "benesse-2014"})).await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    assert_eq!(again.body["error"]["code"], "claim_exists");
    assert_eq!(api.get("/claims").await.body.as_array().unwrap().len(), 1);
    assert_eq!(api.post("/claims", json!({"case": "no-such-case"})).await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn withdrawal_is_final() {
    let app = spawn_app().await;
    let api = app.claimant("hanako@example.jp").await;
    let id = api.post("/claims", json!({"case": "benesse-2014"})).await.body["id"].as_str().unwrap().to_string();
    let r = api.post(&format!("/claims/{id}/withdraw"), json!({})).await;
    assert_eq!(r.body["status"], "withdrawn");
    assert_eq!(api.post(&format!("/claims/{id}/withdraw"), json!({})).await.status, StatusCode::CONFLICT);
    assert_eq!(api.post(&format!("/claims/{id}/submit"), json!({})).await.status, StatusCode::CONFLICT);
    assert_eq!(
        api.put(&format!("/claims/{id}"), complete_draft("やまだ", "1980-05-05")).await.status,
        StatusCode::CONFLICT
    );
}

#[tokio::test]
async fn claims_naming_the_same_person_are_flagged_as_possible_duplicates() {
    use sea_orm::EntityTrait;
    let app = spawn_app().await;
    let mut ids = vec![];
    for (email, kana) in [("a@example.jp", "やまだ"), ("b@example.jp", "ヤマダ"), ("c@example.jp", "すずき")] {
        let api = app.claimant(email).await;
        let id = api.post("/claims", json!({"case": "benesse-2014"})).await.body["id"].as_str().unwrap().to_string();
        // b names the same mother (hiragana vs katakana) and child as a; c has other people.
        let mut draft = complete_draft(kana, "1980-05-05");
        if kana == "すずき" {
            draft["persons"][1]["birth_date"] = json!("2011-01-01");
        }
        api.put(&format!("/claims/{id}"), draft).await;
        api.sign_all(&id).await;
        assert_eq!(api.post(&format!("/claims/{id}/submit"), json!({})).await.status, StatusCode::OK);
        ids.push(uuid::Uuid::parse_str(&id).unwrap());
    }
    let db = app.db().await;
    let flag = |id| {
        let db = db.clone();
        async move { entities::claim::Entity::find_by_id(id).one(&db).await.unwrap().unwrap().possible_duplicate }
    };
    assert!(flag(ids[0]).await, "the earlier claim is flagged too");
    assert!(flag(ids[1]).await);
    assert!(!flag(ids[2]).await);
}

#[tokio::test]
async fn requests_without_a_session_answer_401_in_json() {
    let app = spawn_app().await;
    let r = app.api().get("/claims").await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.body["error"]["code"], "unauthenticated");
    assert!(r.body["error"]["message"].as_str().unwrap().contains("ログイン"));
}

/// The first direct mail of the Benesse case reached people on 2014-06-26,
/// before the announcement of 2014-07-09: the strongest evidence a claimant has.
#[tokio::test]
async fn a_harm_from_before_the_announcement_is_accepted() {
    let app = spawn_app().await;
    let api = app.claimant("early@example.jp").await;
    let id = api.post("/claims", json!({"case": "benesse-2014"})).await.body["id"].as_str().unwrap().to_string();
    let mut draft = complete_draft("やまだ", "1980-04-01");
    draft["harms"][0]["date"] = json!("2014-06-26");
    draft["learned_of_leak_on"] = json!("2014-06-26");
    let r = api.put(&format!("/claims/{id}"), draft).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let back = api.get(&format!("/claims/{id}")).await.body;
    assert_eq!(back["harms"][0]["date"], "2014-06-26");
    assert_eq!(back["learned_of_leak_on"], "2014-06-26");
}

/// A database made before the case had a timeline gets the shipped dates
/// at the next start, audited, and keeps any date an operator set.
#[tokio::test]
async fn an_existing_case_is_given_the_timeline_it_lacks_and_keeps_what_was_set() {
    use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, Set};
    let app = spawn_app().await;
    let db = app.db().await;
    let case = entities::case::Entity::find()
        .filter(entities::case::Column::Slug.eq("benesse-2014"))
        .one(&db)
        .await
        .unwrap()
        .unwrap();
    let mut catalogue = case.catalogue.clone();
    let obj = catalogue.as_object_mut().unwrap();
    obj.remove("first_harms_on");
    obj.insert("leak_began_on".into(), json!("2012-04-01"));
    let mut row: entities::case::ActiveModel = case.into();
    row.catalogue = Set(catalogue);
    row.update(&db).await.unwrap();

    let state = app.state().await; // starts as the portal does: migrate, seed
    let case = state.cases.by_slug(state.db.conn(), "benesse-2014").await.unwrap();
    assert_eq!(case.catalogue.first_harms_on.map(|d| d.to_string()).as_deref(), Some("2014-06-26"));
    assert_eq!(case.catalogue.leak_began_on.map(|d| d.to_string()).as_deref(), Some("2012-04-01"), "kept");
    let events = entities::audit_event::Entity::find()
        .filter(entities::audit_event::Column::Action.eq("case.timeline_added"))
        .all(&db)
        .await
        .unwrap();
    assert_eq!(events.len(), 1, "the change is audited once");
    assert!(events[0].detail.contains("first_harms_on") && !events[0].detail.contains("leak_began_on"));
}

/// A claimant who remembers only the month says so; the month round-trips.
#[tokio::test]
async fn a_date_known_only_to_the_month_round_trips_through_the_api() {
    let app = spawn_app().await;
    let api = app.claimant("month@example.jp").await;
    let id = api.post("/claims", json!({"case": "benesse-2014"})).await.body["id"].as_str().unwrap().to_string();
    let mut draft = complete_draft("やまだ", "1980-04-01");
    draft["learned_of_leak_on"] = json!("2014年7月ごろ");
    draft["harms"][0]["date"] = json!("2014-06");
    let r = api.put(&format!("/claims/{id}"), draft.clone()).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let back = api.get(&format!("/claims/{id}")).await.body;
    assert_eq!(back["learned_of_leak_on"], "2014-07");
    assert_eq!(back["harms"][0]["date"], "2014-06", "June 2014 reaches past the first harms of 2014-06-26");
    // May 2014 is wholly before the first harms: refused, the saved month kept.
    draft["learned_of_leak_on"] = json!("2014-05");
    let r = api.put(&format!("/claims/{id}"), draft).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(api.get(&format!("/claims/{id}")).await.body["learned_of_leak_on"], "2014-07");
}

/// Migration 13 keeps every exact date; undone, a month becomes its first day.
#[tokio::test]
async fn approximate_dates_migrate_down_to_their_first_day_and_back_up() {
    let app = spawn_app().await;
    let api = app.claimant("migrate@example.jp").await;
    let id = api.post("/claims", json!({"case": "benesse-2014"})).await.body["id"].as_str().unwrap().to_string();
    let mut draft = complete_draft("やまだ", "1980-04-01");
    draft["learned_of_leak_on"] = json!("2014-07");
    draft["harms"][0]["date"] = json!("2014-08-01");
    assert_eq!(api.put(&format!("/claims/{id}"), draft).await.status, StatusCode::OK);

    let db = app.db().await;
    app.migrate_down_to_before(&db, "m20261202_000013_approximate_dates").await;
    migration::Migrator::up(&db, None).await.unwrap();
    let back = api.get(&format!("/claims/{id}")).await.body;
    assert_eq!(back["learned_of_leak_on"], "2014-07-01", "the month's first day, now exact");
    assert_eq!(back["harms"][0]["date"], "2014-08-01", "an exact date is kept");
}
