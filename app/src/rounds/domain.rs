//! The tier policy of a filing round and the computation of every
//! plaintiff's tier and claimed amount. Pure and deterministic: the same
//! policy and the same plaintiffs give the same result, byte for byte.
use std::collections::{BTreeMap, BTreeSet};

use chrono::{Months, NaiveDate};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::claims::domain::{Exclusion, HarmKind};
use crate::domain::{ErrorCode, FieldErrors, PastDate};

pub const MAX_POINTS: u32 = 1_000;
pub const MAX_TIERS: usize = 10;
pub const MAX_AMOUNT_YEN: u64 = 10_000_000;
pub const TIER_NAME_MAX_CHARS: usize = 40;

/// One tier: plaintiffs with at least `min_points` claim `amount_yen`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tier {
    pub name: String,
    pub min_points: u32,
    pub amount_yen: u64,
}

/// How a round weighs each plaintiff. Maps are ordered, so the policy's
/// canonical JSON (and its hash) does not depend on how it was typed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TierPolicy {
    /// Points per leaked item (case catalogue code), by sensitivity.
    pub item_points: BTreeMap<String, u32>,
    /// Added for a plaintiff who is a minor (a child's data leaked).
    pub minor_uplift_points: u32,
    /// Points per kind of harm, counted once per kind and only when the
    /// claim holds evidence of that kind (see `supporting_evidence`).
    pub harm_points: BTreeMap<String, u32>,
    /// At most this many harm points in all.
    pub max_harm_points: u32,
    /// Highest threshold first; the last tier starts at 0 so every eligible
    /// plaintiff has a tier.
    pub tiers: Vec<Tier>,
}

/// The evidence kind that makes a harm "verified".
pub fn supporting_evidence(kind: HarmKind) -> &'static str {
    match kind {
        HarmKind::DirectMail => "direct_mail",
        HarmKind::Call => "call_log",
        HarmKind::Email | HarmKind::Fraud | HarmKind::Other => "other",
    }
}

/// The default for benesse-2014: four tiers claiming ¥100,000 / ¥55,000 /
/// ¥33,000 / ¥15,000. The expected delivery date (出産予定日) and children's
/// data weigh most; verified direct mail, sales calls and fraud attempts add.
pub fn benesse_default_policy() -> TierPolicy {
    let items = [
        ("name", 1),
        ("name_kana", 1),
        ("gender", 1),
        ("birth_date", 2),
        ("relation", 2),
        ("postal_code", 1),
        ("address", 2),
        ("phone", 2),
        ("fax", 1),
        ("expected_delivery_date", 5),
        ("email", 1),
    ];
    let harms = [("direct_mail", 3), ("call", 3), ("fraud", 5), ("email", 1), ("other", 1)];
    TierPolicy {
        item_points: items.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
        minor_uplift_points: 4,
        harm_points: harms.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
        max_harm_points: 8,
        tiers: vec![
            Tier { name: "A".into(), min_points: 18, amount_yen: 100_000 },
            Tier { name: "B".into(), min_points: 12, amount_yen: 55_000 },
            Tier { name: "C".into(), min_points: 7, amount_yen: 33_000 },
            Tier { name: "D".into(), min_points: 0, amount_yen: 15_000 },
        ],
    }
}

fn points(errors: &mut FieldErrors, field: String, v: &serde_json::Value) -> Option<u32> {
    match v.as_u64() {
        Some(n) if n <= u64::from(MAX_POINTS) => Some(n as u32),
        Some(_) => {
            errors.add(field, ErrorCode::OutOfRange);
            None
        }
        None => {
            errors.add(field, ErrorCode::Number);
            None
        }
    }
}

type Object = serde_json::Map<String, serde_json::Value>;

/// Parse and check a policy typed by an administrator (JSON), against the
/// case's leaked-item codes. Every problem comes back as a field error with
/// its path (`tiers[2].amount_yen`, `item_points.fax`, …).
pub fn parse_policy(raw: &serde_json::Value, item_codes: &[String]) -> Result<TierPolicy, FieldErrors> {
    let mut errors = FieldErrors::new();
    let empty = Object::new();
    let obj = raw.as_object().unwrap_or(&empty);
    let item_points = item_points_of(obj, item_codes, &mut errors);
    let minor_uplift_points = match obj.get("minor_uplift_points") {
        Some(v) => points(&mut errors, "minor_uplift_points".into(), v).unwrap_or(0),
        None => 0,
    };
    let harm_points = harm_points_of(obj, &mut errors);
    let max_harm_points = match obj.get("max_harm_points") {
        Some(v) => points(&mut errors, "max_harm_points".into(), v).unwrap_or(0),
        None => harm_points.values().sum(),
    };
    let tiers = tiers_of(obj, &mut errors);
    errors.into_result(TierPolicy { item_points, minor_uplift_points, harm_points, max_harm_points, tiers })
}

/// `item_points`: required, keyed by the case's leaked-item codes.
fn item_points_of(obj: &Object, item_codes: &[String], errors: &mut FieldErrors) -> BTreeMap<String, u32> {
    let mut item_points = BTreeMap::new();
    let Some(map) = obj.get("item_points").and_then(|v| v.as_object()) else {
        errors.add("item_points", ErrorCode::Required);
        return item_points;
    };
    for (code, v) in map {
        let field = format!("item_points.{code}");
        if !item_codes.contains(code) {
            errors.add(field, ErrorCode::Choice);
        } else if let Some(p) = points(errors, field, v) {
            item_points.insert(code.clone(), p);
        }
    }
    item_points
}

/// `harm_points`: optional, keyed by harm kinds.
fn harm_points_of(obj: &Object, errors: &mut FieldErrors) -> BTreeMap<String, u32> {
    let mut harm_points = BTreeMap::new();
    let Some(map) = obj.get("harm_points").and_then(|v| v.as_object()) else {
        return harm_points;
    };
    for (kind, v) in map {
        let field = format!("harm_points.{kind}");
        if HarmKind::ALL.iter().all(|k| k.as_str() != kind) {
            errors.add(field, ErrorCode::Choice);
        } else if let Some(p) = points(errors, field, v) {
            harm_points.insert(kind.clone(), p);
        }
    }
    harm_points
}

/// `tiers`: one to MAX_TIERS, thresholds strictly falling to a last tier
/// that starts at 0, names unique.
fn tiers_of(obj: &Object, errors: &mut FieldErrors) -> Vec<Tier> {
    let list = match obj.get("tiers").and_then(|v| v.as_array()) {
        Some(list) if !list.is_empty() && list.len() <= MAX_TIERS => list,
        Some(list) if list.len() > MAX_TIERS => {
            errors.add("tiers", ErrorCode::TooMany);
            return vec![];
        }
        _ => {
            errors.add("tiers", ErrorCode::Required);
            return vec![];
        }
    };
    let tiers: Vec<(usize, Tier)> =
        list.iter().enumerate().filter_map(|(i, t)| tier_of(i, t, errors).map(|t| (i, t))).collect();
    for pair in tiers.windows(2) {
        if pair[1].1.min_points >= pair[0].1.min_points {
            errors.add(format!("tiers[{}].min_points", pair[1].0), ErrorCode::OutOfRange);
        }
    }
    if let Some((i, last)) = tiers.last() {
        if last.min_points != 0 && *i == list.len() - 1 {
            errors.add(format!("tiers[{i}].min_points"), ErrorCode::OutOfRange);
        }
    }
    let mut seen = BTreeSet::new();
    for (i, t) in &tiers {
        if !seen.insert(t.name.clone()) {
            errors.add(format!("tiers[{i}].name"), ErrorCode::Duplicate);
        }
    }
    tiers.into_iter().map(|(_, t)| t).collect()
}

/// The tier at `tiers[i]`, if its name, threshold and amount parse.
fn tier_of(i: usize, t: &serde_json::Value, errors: &mut FieldErrors) -> Option<Tier> {
    let name = t.get("name").and_then(|v| v.as_str()).map(crate::domain::normalise).unwrap_or_default();
    if name.is_empty() {
        errors.add(format!("tiers[{i}].name"), ErrorCode::Required);
    } else if name.chars().count() > TIER_NAME_MAX_CHARS {
        errors.add(format!("tiers[{i}].name"), ErrorCode::TooLong);
    }
    let min = match t.get("min_points") {
        Some(v) => points(errors, format!("tiers[{i}].min_points"), v),
        None => {
            errors.add(format!("tiers[{i}].min_points"), ErrorCode::Required);
            None
        }
    };
    let amount = match t.get("amount_yen").and_then(|v| v.as_u64()) {
        Some(a) if (1..=MAX_AMOUNT_YEN).contains(&a) => Some(a),
        Some(_) => {
            errors.add(format!("tiers[{i}].amount_yen"), ErrorCode::OutOfRange);
            None
        }
        None => {
            errors.add(format!("tiers[{i}].amount_yen"), ErrorCode::Number);
            None
        }
    };
    Some(Tier { name, min_points: min?, amount_yen: amount? })
}

/// Why a plaintiff has the points they have.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Reason {
    LeakedItem {
        item: String,
        points: u32,
    },
    Minor {
        points: u32,
    },
    VerifiedHarm {
        harm: String,
        points: u32,
    },
    /// Harm points were capped at the policy's maximum.
    HarmCapped {
        max: u32,
    },
}

/// What is known about one person on a claim, for a round.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlaintiffInput {
    pub claim_id: Uuid,
    pub claim_number: String,
    /// The person's position on the claim (0: the claimant).
    pub position: u32,
    pub is_minor: bool,
    pub leaked_items: Vec<String>,
    pub harm_kinds: BTreeSet<HarmKind>,
    /// Evidence kinds the claim holds.
    pub evidence_kinds: BTreeSet<String>,
    /// When the claimant learned of the leak: a day, or a month.
    pub learned_of_leak_on: Option<PastDate>,
    /// Why the claim would not join a round (empty: eligible).
    pub exclusions: Vec<Exclusion>,
}

/// A plaintiff's assessment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Assessment {
    pub claim_id: Uuid,
    pub claim_number: String,
    pub position: u32,
    pub points: u32,
    pub tier: String,
    pub amount_yen: u64,
    pub reasons: Vec<Reason>,
    /// The last day of the three-year limitation period (Civil Code
    /// Art. 724 (i)), when it falls before the filing date.
    pub limitation_ended_on: Option<NaiveDate>,
    /// The warning counts from the first day of a month the claimant gave
    /// (the earliest the period can have started), so it is never late.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub limitation_from_month: bool,
}

/// A person kept out of the round, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Excluded {
    pub claim_id: Uuid,
    pub claim_number: String,
    pub position: u32,
    pub reasons: Vec<Exclusion>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TierTotal {
    pub tier: String,
    pub amount_yen: u64,
    pub plaintiffs: u64,
    pub total_yen: u64,
}

/// The round's computation: members in plaintiff order, exclusions, totals.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RoundResult {
    pub members: Vec<Assessment>,
    pub excluded: Vec<Excluded>,
    pub by_tier: Vec<TierTotal>,
    pub total_yen: u64,
    /// Members whose limitation period ends before the filing date.
    pub limitation_warnings: u64,
}

/// The last day on which a claim may be brought: three years from the day
/// after the person learned of the damage (Civil Code Arts. 140, 143, 724):
/// the same date three years on (28 February for a 29 February).
pub fn limitation_last_day(learned: NaiveDate) -> NaiveDate {
    learned.checked_add_months(Months::new(36)).unwrap_or(NaiveDate::MAX)
}

/// Assess one eligible person.
pub fn assess(policy: &TierPolicy, p: &PlaintiffInput, filing_date: NaiveDate) -> Assessment {
    let mut reasons = Vec::new();
    let mut total = 0u32;
    let items: BTreeSet<&String> = p.leaked_items.iter().collect();
    for item in items {
        if let Some(points) = policy.item_points.get(item).copied().filter(|p| *p > 0) {
            total += points;
            reasons.push(Reason::LeakedItem { item: item.clone(), points });
        }
    }
    if p.is_minor && policy.minor_uplift_points > 0 {
        total += policy.minor_uplift_points;
        reasons.push(Reason::Minor { points: policy.minor_uplift_points });
    }
    let mut harm_total = 0u32;
    for kind in &p.harm_kinds {
        let Some(points) = policy.harm_points.get(kind.as_str()).copied().filter(|p| *p > 0) else {
            continue;
        };
        if p.evidence_kinds.contains(supporting_evidence(*kind)) {
            harm_total += points;
            reasons.push(Reason::VerifiedHarm { harm: kind.as_str().to_string(), points });
        }
    }
    if harm_total > policy.max_harm_points {
        harm_total = policy.max_harm_points;
        reasons.push(Reason::HarmCapped { max: policy.max_harm_points });
    }
    total += harm_total;
    // Tiers are highest first and the last starts at 0 (checked by `parse_policy`).
    let tier = policy.tiers.iter().find(|t| total >= t.min_points).or(policy.tiers.last());
    // A month counts from its first day, the earliest the period can have started.
    let limitation_ended_on =
        p.learned_of_leak_on.map(|d| limitation_last_day(d.first())).filter(|last| *last < filing_date);
    Assessment {
        claim_id: p.claim_id,
        claim_number: p.claim_number.clone(),
        position: p.position,
        points: total,
        tier: tier.map(|t| t.name.clone()).unwrap_or_default(),
        amount_yen: tier.map(|t| t.amount_yen).unwrap_or(0),
        reasons,
        limitation_from_month: limitation_ended_on.is_some() && p.learned_of_leak_on.is_some_and(|d| d.month_only()),
        limitation_ended_on,
    }
}

/// Compute a round: every person of every claim given, in claim-number and
/// position order (the order plaintiff numbers are given in at freezing).
pub fn compute(policy: &TierPolicy, plaintiffs: &[PlaintiffInput], filing_date: NaiveDate) -> RoundResult {
    let mut sorted: Vec<&PlaintiffInput> = plaintiffs.iter().collect();
    sorted.sort_by(|a, b| (&a.claim_number, a.position).cmp(&(&b.claim_number, b.position)));
    let mut members = Vec::new();
    let mut excluded = Vec::new();
    for p in sorted {
        if p.exclusions.is_empty() {
            members.push(assess(policy, p, filing_date));
        } else {
            excluded.push(Excluded {
                claim_id: p.claim_id,
                claim_number: p.claim_number.clone(),
                position: p.position,
                reasons: p.exclusions.clone(),
            });
        }
    }
    let by_tier: Vec<TierTotal> = policy
        .tiers
        .iter()
        .map(|t| {
            let n = members.iter().filter(|m| m.tier == t.name).count() as u64;
            TierTotal { tier: t.name.clone(), amount_yen: t.amount_yen, plaintiffs: n, total_yen: n * t.amount_yen }
        })
        .collect();
    RoundResult {
        total_yen: by_tier.iter().map(|t| t.total_yen).sum(),
        limitation_warnings: members.iter().filter(|m| m.limitation_ended_on.is_some()).count() as u64,
        members,
        excluded,
        by_tier,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn codes() -> Vec<String> {
        crate::cases::seed::benesse_catalogue().leaked_items.into_iter().map(|o| o.code).collect()
    }

    fn day(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    fn person(number: &str, position: u32) -> PlaintiffInput {
        PlaintiffInput {
            claim_id: Uuid::from_u128(number.bytes().map(u128::from).sum::<u128>()),
            claim_number: number.into(),
            position,
            is_minor: false,
            leaked_items: vec!["name".into(), "address".into(), "phone".into()],
            harm_kinds: BTreeSet::new(),
            evidence_kinds: BTreeSet::new(),
            learned_of_leak_on: Some(PastDate::from_stored(day(2014, 7, 10), false)),
            exclusions: vec![],
        }
    }

    #[test]
    fn the_default_policy_is_valid_and_round_trips_through_its_json() {
        let policy = benesse_default_policy();
        let json = serde_json::to_value(&policy).unwrap();
        assert_eq!(parse_policy(&json, &codes()).unwrap(), policy);
        let amounts: Vec<u64> = policy.tiers.iter().map(|t| t.amount_yen).collect();
        assert_eq!(amounts, vec![100_000, 55_000, 33_000, 15_000]);
    }

    #[test]
    fn a_bad_policy_is_refused_with_field_errors() {
        let bad = json!({
            "item_points": {"name": 1, "bank_account": 3, "phone": -2},
            "harm_points": {"telepathy": 1, "call": 5000},
            "tiers": [
                {"name": "A", "min_points": 10, "amount_yen": 100000},
                {"name": "A", "min_points": 12, "amount_yen": 0},
                {"name": "", "min_points": 5, "amount_yen": "lots"}
            ]
        });
        let e = parse_policy(&bad, &codes()).unwrap_err();
        assert_eq!(e.get("item_points.bank_account"), Some(ErrorCode::Choice));
        assert_eq!(e.get("item_points.phone"), Some(ErrorCode::Number));
        assert_eq!(e.get("harm_points.telepathy"), Some(ErrorCode::Choice));
        assert_eq!(e.get("harm_points.call"), Some(ErrorCode::OutOfRange));
        assert_eq!(e.get("tiers[1].amount_yen"), Some(ErrorCode::OutOfRange));
        assert_eq!(e.get("tiers[2].name"), Some(ErrorCode::Required));
        assert_eq!(e.get("tiers[2].amount_yen"), Some(ErrorCode::Number));
        // Thresholds must fall and the last must start at 0.
        let rising = json!({"item_points": {}, "tiers": [
            {"name": "A", "min_points": 10, "amount_yen": 1},
            {"name": "B", "min_points": 10, "amount_yen": 1},
            {"name": "C", "min_points": 3, "amount_yen": 1}]});
        let e = parse_policy(&rising, &codes()).unwrap_err();
        assert_eq!(e.get("tiers[1].min_points"), Some(ErrorCode::OutOfRange));
        assert_eq!(e.get("tiers[2].min_points"), Some(ErrorCode::OutOfRange));
        assert_eq!(
            parse_policy(&json!({"item_points": {}}), &codes()).unwrap_err().get("tiers"),
            Some(ErrorCode::Required)
        );
        assert_eq!(parse_policy(&json!("x"), &codes()).unwrap_err().get("item_points"), Some(ErrorCode::Required));
    }

    #[test]
    fn points_come_with_reasons_and_only_evidenced_harm_counts() {
        let policy = benesse_default_policy();
        let mut child = person("BN-000002", 1);
        child.is_minor = true;
        child.leaked_items.push("expected_delivery_date".into());
        child.harm_kinds = [HarmKind::DirectMail, HarmKind::Call, HarmKind::Fraud].into_iter().collect();
        child.evidence_kinds = ["direct_mail".to_string(), "other".to_string()].into_iter().collect();
        let a = assess(&policy, &child, day(2017, 7, 1));
        // name 1 + address 2 + phone 2 + delivery date 5 + minor 4 + DM 3 + fraud 5 (no call log: no call points)
        assert_eq!(a.points, 22);
        assert_eq!((a.tier.as_str(), a.amount_yen), ("A", 100_000));
        assert!(a.reasons.contains(&Reason::Minor { points: 4 }));
        assert!(a.reasons.contains(&Reason::VerifiedHarm { harm: "fraud".into(), points: 5 }));
        assert!(!a.reasons.iter().any(|r| matches!(r, Reason::VerifiedHarm { harm, .. } if harm == "call")));
        let plain = assess(&policy, &person("BN-000001", 0), day(2017, 7, 1));
        assert_eq!((plain.points, plain.tier.as_str(), plain.amount_yen), (5, "D", 15_000));
        // Harm points are capped.
        let mut capped = person("BN-000003", 0);
        capped.harm_kinds = HarmKind::ALL.into_iter().collect();
        capped.evidence_kinds = ["direct_mail", "call_log", "other"].iter().map(|s| s.to_string()).collect();
        let c = assess(&policy, &capped, day(2017, 7, 1));
        assert_eq!(c.points, 5 + 8);
        assert!(c.reasons.contains(&Reason::HarmCapped { max: 8 }));
    }

    #[test]
    fn the_limitation_period_ends_three_years_after_learning_of_the_leak() {
        assert_eq!(limitation_last_day(day(2014, 7, 10)), day(2017, 7, 10));
        assert_eq!(limitation_last_day(day(2016, 2, 29)), day(2019, 2, 28));
        let policy = benesse_default_policy();
        let p = person("BN-000001", 0);
        assert_eq!(assess(&policy, &p, day(2017, 7, 10)).limitation_ended_on, None, "the last day itself is in time");
        assert_eq!(assess(&policy, &p, day(2017, 7, 11)).limitation_ended_on, Some(day(2017, 7, 10)));
        assert!(!assess(&policy, &p, day(2017, 7, 11)).limitation_from_month);
        // 「2014年7月ごろ」: counted from 2014-07-01, the earliest it can be, with the reason.
        let mut month = person("BN-000002", 0);
        month.learned_of_leak_on = Some(PastDate::from_stored(day(2014, 7, 1), true));
        let warned = assess(&policy, &month, day(2017, 7, 2));
        assert_eq!(warned.limitation_ended_on, Some(day(2017, 7, 1)), "a warning is never late");
        assert!(warned.limitation_from_month);
        let mut unknown = p.clone();
        unknown.learned_of_leak_on = None;
        assert_eq!(assess(&policy, &unknown, day(2030, 1, 1)).limitation_ended_on, None);
    }

    #[test]
    fn a_round_includes_exactly_the_eligible_and_is_byte_for_byte_deterministic() {
        let policy = benesse_default_policy();
        let mut people = vec![person("BN-000003", 0), person("BN-000001", 1), person("BN-000001", 0)];
        let mut out = person("BN-000002", 0);
        out.exclusions = vec![Exclusion::NotVerified, Exclusion::NoCurrentConsent];
        people.push(out);
        let mut withdrawn = person("BN-000004", 0);
        withdrawn.exclusions = vec![Exclusion::Withdrawn];
        people.push(withdrawn);
        let filing = day(2017, 7, 1);
        let r = compute(&policy, &people, filing);
        let order: Vec<(&str, u32)> = r.members.iter().map(|m| (m.claim_number.as_str(), m.position)).collect();
        assert_eq!(order, vec![("BN-000001", 0), ("BN-000001", 1), ("BN-000003", 0)]);
        assert_eq!(r.excluded.len(), 2);
        assert_eq!(r.excluded[0].reasons, vec![Exclusion::NotVerified, Exclusion::NoCurrentConsent]);
        assert_eq!(r.excluded[1].reasons, vec![Exclusion::Withdrawn]);
        assert_eq!(r.total_yen, 3 * 15_000);
        assert_eq!(r.by_tier.iter().map(|t| t.plaintiffs).sum::<u64>(), 3);
        // The same inputs in another order give the same bytes.
        people.reverse();
        let again = compute(&policy, &people, filing);
        assert_eq!(serde_json::to_vec(&r).unwrap(), serde_json::to_vec(&again).unwrap());
    }
}
