//! Idempotent seed of the shipped case, `benesse-2014`. Run at every start;
//! it inserts the case once and never overwrites an operator's edits.
use chrono::{NaiveDate, Utc};
use entities::case;
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, Set};
use uuid::Uuid;

use super::{Catalogue, CatalogueOption, Localized};
use crate::db::Db;

pub const BENESSE_SLUG: &str = "benesse-2014";

fn l(ja: &str, en: &str) -> Localized {
    Localized { ja: ja.into(), en: en.into() }
}

fn opt(code: &str, ja: &str, en: &str) -> CatalogueOption {
    CatalogueOption { code: code.into(), label: l(ja, en) }
}

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap_or_default()
}

pub fn benesse_catalogue() -> Catalogue {
    Catalogue {
        title: l("ベネッセ個人情報漏えい事件（2014年）", "Benesse customer data leak (2014)"),
        defendant: l("株式会社ベネッセコーポレーション ほか", "Benesse Corporation and others"),
        summary: l(
            "2014年、委託先の従業員がベネッセの顧客データベースから保護者と子どもの個人情報約3,504万件を持ち出し、名簿業者に売却しました。被害を受けた方は、この訴訟に原告として参加できます。",
            "In 2014 a contractor's employee took about 35.04 million records of parents and children from Benesse's customer database and sold them to list brokers. Affected people can join this suit as plaintiffs.",
        ),
        // Benesse's announcement of 2014-07-09: customers reported direct mail
        // from another education company from 2014-06-26; that is how the
        // leak was found, and it was made public that day.
        leak_disclosed_on: date(2014, 7, 9),
        first_harms_on: Some(date(2014, 6, 26)),
        // The public sources do not say when the copying began (it ran for
        // months): a setting, put well before the first harms.
        leak_began_on: Some(date(2013, 1, 1)),
        apology_letters_sent_on: None,
        leaked_items: vec![
            opt("name", "氏名", "Name"),
            opt("name_kana", "氏名（フリガナ）", "Name (kana)"),
            opt("gender", "性別", "Gender"),
            opt("birth_date", "生年月日", "Date of birth"),
            opt("relation", "保護者・子の続柄", "Guardian/child relation"),
            opt("postal_code", "郵便番号", "Postal code"),
            opt("address", "住所", "Address"),
            opt("phone", "電話番号", "Phone number"),
            opt("fax", "FAX番号", "Fax number"),
            opt("expected_delivery_date", "出産予定日", "Expected delivery date"),
            opt("email", "メールアドレス", "E-mail address"),
        ],
        services: vec![
            opt("shinkenzemi", "進研ゼミ", "Shinkenzemi"),
            opt("kodomo_challenge", "こどもちゃれんじ", "Kodomo Challenge"),
            opt("tamahiyo", "たまひよ", "Tamahiyo"),
            opt("other_benesse", "その他のベネッセのサービス", "Another Benesse service"),
            opt("unknown", "覚えていない", "I don't remember"),
        ],
        apology_options: vec![
            opt("emoney_500", "電子マネー（500円分）", "E-money (¥500)"),
            opt("book_card_500", "図書カード（500円分）", "Book card (¥500)"),
            opt("donation_500", "基金への寄付（500円分）", "Donation to a fund (¥500)"),
            opt("none", "受け取っていない", "Took none"),
            opt("unknown", "わからない", "Don't know"),
        ],
        apology_option_deadline: Some(date(2014, 12, 15)),
        // The first round claimed ¥55,000 a person; courts later awarded ¥1,000–¥3,300.
        claimed_per_person_yen: Some(55_000),
        precedent_awards_yen: vec![1_000, 2_000, 3_300],
        reminders: Default::default(),
    }
}

/// Insert the shipped case if it is missing; give an existing one the
/// timeline dates it lacks (never overwriting what an operator set).
/// Returns the shipped case's id, for the capabilities above to seed what
/// they keep per case (its consent documents).
pub async fn seed_cases(db: &Db) -> Result<Uuid, sea_orm::DbErr> {
    let txn = db.begin_write().await?;
    let exists = case::Entity::find().filter(case::Column::Slug.eq(BENESSE_SLUG)).one(&txn).await?;
    let case_id = match exists {
        Some(case) => {
            let id = case.id;
            add_missing_timeline(&txn, case).await?;
            id
        }
        None => insert_benesse(&txn).await?,
    };
    txn.commit().await?;
    Ok(case_id)
}

/// The shipped timeline's keys that a stored catalogue does not have yet,
/// with their shipped values.
fn missing_timeline(stored: &serde_json::Value) -> serde_json::Map<String, serde_json::Value> {
    let shipped = serde_json::to_value(benesse_catalogue()).unwrap_or_default();
    super::TIMELINE_KEYS
        .iter()
        .filter(|k| stored.get(**k).is_none_or(|v| v.is_null()))
        .filter_map(|k| shipped.get(*k).filter(|v| !v.is_null()).map(|v| (k.to_string(), v.clone())))
        .collect()
}

async fn add_missing_timeline(txn: &crate::db::WriteTx, case: case::Model) -> Result<(), sea_orm::DbErr> {
    let added = missing_timeline(&case.catalogue);
    if added.is_empty() {
        return Ok(());
    }
    let mut catalogue = case.catalogue.clone();
    if let Some(obj) = catalogue.as_object_mut() {
        obj.extend(added.clone());
    }
    let mut row: case::ActiveModel = case.into();
    row.catalogue = Set(catalogue);
    row.updated_at = Set(Utc::now());
    let case = row.update(txn).await?;
    let keys: Vec<&String> = added.keys().collect();
    let event = crate::audit::Event::new("case.timeline_added")
        .subject("case", case.id)
        .detail(serde_json::json!({"keys": keys}));
    crate::audit::append(txn, &crate::audit::Actor::default(), event).await?;
    tracing::info!(case = BENESSE_SLUG, added = ?keys, "case timeline completed from the shipped configuration");
    Ok(())
}

async fn insert_benesse(txn: &crate::db::WriteTx) -> Result<Uuid, sea_orm::DbErr> {
    let id = Uuid::new_v4();
    {
        let now = Utc::now();
        case::ActiveModel {
            id: Set(id),
            slug: Set(BENESSE_SLUG.into()),
            claim_prefix: Set("BN".into()),
            next_claim_seq: Set(1),
            catalogue: Set(serde_json::to_value(benesse_catalogue()).unwrap_or_default()),
            intake_opens_on: Set(date(2014, 7, 9)),
            intake_closes_on: Set(None),
            auto_verify: Set(false),
            created_at: Set(now),
            updated_at: Set(now),
        }
        .insert(txn)
        .await?;
    }
    Ok(id)
}
