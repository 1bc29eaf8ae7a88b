//! Consent rules: the kinds of document a claimant signs, structured fee
//! terms and what they mean in yen, the document hash, and the check that
//! a typed signature is the claimant's own name. No I/O.
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::claims::domain::Person;
use crate::domain::{hiragana_to_katakana, normalise, parse_code, parse_free_text, ErrorCode, FieldErrors};

/// What a document is. Every kind is required before a claim is submitted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DocumentKind {
    /// 訴訟委任状: the power of attorney to the lawyers.
    Retainer,
    /// 報酬・費用の取り決め.
    FeeTerms,
    /// 個人情報の取扱い (purposes of use).
    PrivacyNotice,
}

impl DocumentKind {
    pub const ALL: [DocumentKind; 3] = [DocumentKind::Retainer, DocumentKind::FeeTerms, DocumentKind::PrivacyNotice];
    pub fn as_str(self) -> &'static str {
        match self {
            DocumentKind::Retainer => "retainer",
            DocumentKind::FeeTerms => "fee_terms",
            DocumentKind::PrivacyNotice => "privacy_notice",
        }
    }
    pub fn parse(raw: &str) -> Result<Self, ErrorCode> {
        parse_code(raw, &Self::ALL, Self::as_str)
    }
}

/// In what capacity a signature was given for a person.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Capacity {
    /// The claimant for themself.
    Principal,
    /// The claimant as 法定代理人 of a minor on the claim.
    Guardian,
}

impl Capacity {
    pub fn as_str(self) -> &'static str {
        match self {
            Capacity::Principal => "principal",
            Capacity::Guardian => "guardian",
        }
    }
    pub fn parse(raw: &str) -> Option<Self> {
        [Capacity::Principal, Capacity::Guardian].into_iter().find(|c| c.as_str() == raw)
    }
}

/// The text as published: CRLF and CR become LF, trailing white space at
/// the end is dropped, so a browser's textarea and a file give one hash.
pub fn canonical_body(raw: &str) -> String {
    raw.replace("\r\n", "\n").replace('\r', "\n").trim_end().to_string()
}

/// The identity of a published version: SHA-256 of its canonical body.
pub fn body_sha256(canonical: &str) -> String {
    hex::encode(Sha256::digest(canonical.as_bytes()))
}

/// The fee terms, as structured data beside their text.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeeTerms {
    /// 着手金, charged when joining.
    pub upfront_fee_yen: u64,
    /// 成功報酬, a percentage of any award.
    pub contingency_percent: u32,
    /// Out-of-pocket costs the claimant bears (stamp duty, postage, copies…).
    pub costs_borne: Vec<String>,
    /// Estimated costs per plaintiff, in yen.
    pub estimated_costs_per_plaintiff_yen: u64,
    /// Whether fees and costs come out of an award (never paid otherwise).
    pub deducted_from_award: bool,
}

pub const MAX_UPFRONT_FEE_YEN: u64 = 10_000_000;
pub const MAX_CONTINGENCY_PERCENT: u32 = 50;
pub const MAX_TITLE_CHARS: usize = 200;
pub const MAX_BODY_CHARS: usize = 100_000;

/// Fee terms as typed into a form or sent to the API.
#[derive(Clone, Debug, Default, Serialize, Deserialize, rocket::FromForm)]
#[serde(default)]
pub struct FeeTermsInput {
    #[field(default = String::new())]
    pub upfront_fee_yen: String,
    #[field(default = String::new())]
    pub contingency_percent: String,
    /// One cost per line.
    #[field(default = String::new())]
    pub costs_borne: String,
    #[field(default = String::new())]
    pub estimated_costs_per_plaintiff_yen: String,
    pub deducted_from_award: bool,
}

fn parse_yen(raw: &str, max: u64) -> Result<u64, ErrorCode> {
    let v = normalise(raw).replace([',', '¥', '円'], "");
    if v.is_empty() {
        return Err(ErrorCode::Required);
    }
    let n: u64 = v.parse().map_err(|_| ErrorCode::Number)?;
    if n > max {
        return Err(ErrorCode::OutOfRange);
    }
    Ok(n)
}

impl FeeTermsInput {
    pub fn parse(&self, prefix: &str, errors: &mut FieldErrors) -> Option<FeeTerms> {
        let f = |name: &str| format!("{prefix}{name}");
        let upfront = errors.check(&f("upfront_fee_yen"), parse_yen(&self.upfront_fee_yen, MAX_UPFRONT_FEE_YEN));
        let percent = errors.check(
            &f("contingency_percent"),
            parse_yen(&self.contingency_percent.replace('%', ""), MAX_CONTINGENCY_PERCENT as u64).map(|n| n as u32),
        );
        let costs = errors.check(
            &f("estimated_costs_per_plaintiff_yen"),
            parse_yen(&self.estimated_costs_per_plaintiff_yen, MAX_UPFRONT_FEE_YEN),
        );
        let mut borne = Vec::new();
        for line in self.costs_borne.lines() {
            match parse_free_text(line, 100) {
                Ok(s) if !s.is_empty() => borne.push(s),
                Ok(_) => {}
                Err(code) => errors.add(f("costs_borne"), code),
            }
        }
        if borne.len() > 20 {
            errors.add(f("costs_borne"), ErrorCode::TooMany);
        }
        Some(FeeTerms {
            upfront_fee_yen: upfront?,
            contingency_percent: percent?,
            costs_borne: borne,
            estimated_costs_per_plaintiff_yen: costs?,
            deducted_from_award: self.deducted_from_award,
        })
    }

    pub fn from_terms(t: &FeeTerms) -> Self {
        Self {
            upfront_fee_yen: t.upfront_fee_yen.to_string(),
            contingency_percent: t.contingency_percent.to_string(),
            costs_borne: t.costs_borne.join("\n"),
            estimated_costs_per_plaintiff_yen: t.estimated_costs_per_plaintiff_yen.to_string(),
            deducted_from_award: t.deducted_from_award,
        }
    }
}

/// A new version of a document, as an administrator submits it.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct DocumentInput {
    pub kind: String,
    pub title: String,
    pub body: String,
    pub fee_terms: Option<FeeTermsInput>,
}

/// A document ready to publish.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewDocument {
    pub kind: DocumentKind,
    pub title: String,
    pub body: String,
    pub sha256: String,
    pub fee_terms: Option<FeeTerms>,
}

impl DocumentInput {
    pub fn parse(&self) -> Result<NewDocument, FieldErrors> {
        let mut errors = FieldErrors::new();
        let kind = errors.check("kind", DocumentKind::parse(&self.kind));
        let title = errors.check(
            "title",
            parse_free_text(&self.title, MAX_TITLE_CHARS).and_then(|t| {
                if t.is_empty() {
                    Err(ErrorCode::Required)
                } else {
                    Ok(t)
                }
            }),
        );
        let body = canonical_body(&self.body);
        if body.trim().is_empty() {
            errors.add("body", ErrorCode::Required);
        } else if body.chars().count() > MAX_BODY_CHARS {
            errors.add("body", ErrorCode::TooLong);
        }
        let fee_terms = match (kind, &self.fee_terms) {
            (Some(DocumentKind::FeeTerms), Some(input)) => input.parse("fee_terms.", &mut errors),
            (Some(DocumentKind::FeeTerms), None) => {
                errors.add("fee_terms", ErrorCode::Required);
                None
            }
            _ => None,
        };
        let sha256 = body_sha256(&body);
        errors.into_result(())?;
        let (Some(kind), Some(title)) = (kind, title) else {
            return Err(FieldErrors::new());
        };
        Ok(NewDocument { kind, title, body, sha256, fee_terms })
    }
}

/// What a claimant might receive in one scenario, after fees and costs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Outcome {
    pub award_yen: u64,
    pub fee_yen: u64,
    pub costs_yen: u64,
    pub net_yen: u64,
    /// A past court award (as opposed to the amount claimed).
    pub precedent: bool,
}

/// Net amounts per person for the amount claimed and each precedent
/// award. Fees and costs come out of the award and never exceed it when
/// the terms say so; otherwise the net may be zero while costs remain.
pub fn outcomes(claimed_yen: Option<u64>, precedents_yen: &[u64], terms: &FeeTerms) -> Vec<Outcome> {
    let mut awards: Vec<(u64, bool)> = precedents_yen.iter().map(|a| (*a, true)).collect();
    if let Some(c) = claimed_yen {
        awards.push((c, false));
    }
    awards
        .into_iter()
        .map(|(award, precedent)| {
            // Round the fee down: the claimant never pays a fraction of a yen more.
            let fee = award * u64::from(terms.contingency_percent) / 100;
            let costs = if terms.deducted_from_award {
                terms.estimated_costs_per_plaintiff_yen.min(award - fee)
            } else {
                terms.estimated_costs_per_plaintiff_yen
            };
            Outcome {
                award_yen: award,
                fee_yen: fee,
                costs_yen: costs,
                net_yen: award - fee - costs.min(award - fee),
                precedent,
            }
        })
        .collect()
}

fn signature_form(s: &str) -> String {
    hiragana_to_katakana(&normalise(s)).chars().filter(|c| !c.is_whitespace() && *c != '・').collect()
}

/// A typed signature matches the person when it is their full name as
/// written or in kana (spaces, width and hiragana/katakana ignored).
pub fn signature_matches(typed: &str, person: &Person) -> bool {
    let typed = signature_form(typed);
    if typed.is_empty() {
        return false;
    }
    let written = signature_form(&format!("{}{}", person.family_name.as_str(), person.given_name.as_str()));
    let kana = signature_form(&format!("{}{}", person.family_name_kana.as_str(), person.given_name_kana.as_str()));
    typed == written || typed == kana
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::claims::domain::{Gender, Relation};
    use crate::domain::{BirthDate, KanaName, PersonName};

    fn person() -> Person {
        let today = chrono::NaiveDate::from_ymd_opt(2026, 11, 21).unwrap();
        Person {
            relation: Relation::Myself,
            family_name: PersonName::parse("山田").unwrap(),
            given_name: PersonName::parse("花子").unwrap(),
            family_name_kana: KanaName::parse("ヤマダ").unwrap(),
            given_name_kana: KanaName::parse("ハナコ").unwrap(),
            birth_date: BirthDate::parse("1980-04-01", today).unwrap(),
            gender: Gender::Female,
        }
    }

    #[test]
    fn a_signature_is_the_name_as_written_or_in_kana() {
        let p = person();
        for ok in ["山田花子", "山田 花子", "山田　花子", "やまだ はなこ", "ﾔﾏﾀﾞ ﾊﾅｺ", "ヤマダ・ハナコ"]
        {
            assert!(signature_matches(ok, &p), "{ok} should match");
        }
        for bad in ["", "  ", "山田", "山田太郎", "花子山田", "yamada hanako"] {
            assert!(!signature_matches(bad, &p), "{bad} should not match");
        }
    }

    #[test]
    fn one_text_gives_one_hash_whatever_the_line_endings() {
        let a = canonical_body("第1条\r\n委任します。\r\n\r\n");
        let b = canonical_body("第1条\n委任します。");
        assert_eq!(a, b);
        assert_eq!(body_sha256(&a), body_sha256(&b));
        assert_ne!(body_sha256(&a), body_sha256("第1条\n委任しません。"));
    }

    fn terms(percent: u32, costs: u64) -> FeeTerms {
        FeeTerms {
            upfront_fee_yen: 0,
            contingency_percent: percent,
            costs_borne: vec![],
            estimated_costs_per_plaintiff_yen: costs,
            deducted_from_award: true,
        }
    }

    #[test]
    fn net_amounts_deduct_fee_and_costs_and_never_go_below_zero() {
        let out = outcomes(Some(55_000), &[1_000, 2_000, 3_300], &terms(20, 300));
        let nets: Vec<u64> = out.iter().map(|o| o.net_yen).collect();
        assert_eq!(nets, vec![500, 1_300, 2_340, 43_700]);
        assert_eq!(out[0].fee_yen, 200);
        assert!(out[..3].iter().all(|o| o.precedent) && !out[3].precedent);
        let out = outcomes(None, &[1_000], &terms(50, 5_000));
        assert_eq!((out[0].fee_yen, out[0].costs_yen, out[0].net_yen), (500, 500, 0));
    }

    #[test]
    fn fee_terms_are_checked_field_by_field() {
        let input = FeeTermsInput {
            upfront_fee_yen: "０".into(),
            contingency_percent: "80".into(),
            costs_borne: "印紙代\n\n郵券".into(),
            estimated_costs_per_plaintiff_yen: "abc".into(),
            deducted_from_award: true,
        };
        let mut errors = FieldErrors::new();
        assert!(input.parse("fee_terms.", &mut errors).is_none());
        assert_eq!(errors.get("fee_terms.contingency_percent"), Some(ErrorCode::OutOfRange));
        assert_eq!(errors.get("fee_terms.estimated_costs_per_plaintiff_yen"), Some(ErrorCode::Number));
        assert_eq!(errors.get("fee_terms.upfront_fee_yen"), None);
        let good = FeeTermsInput {
            contingency_percent: "20%".into(),
            estimated_costs_per_plaintiff_yen: "1,000".into(),
            ..input
        };
        let mut errors = FieldErrors::new();
        let t = good.parse("", &mut errors).unwrap();
        assert_eq!((t.upfront_fee_yen, t.contingency_percent, t.estimated_costs_per_plaintiff_yen), (0, 20, 1_000));
        assert_eq!(t.costs_borne, vec!["印紙代".to_string(), "郵券".to_string()]);
    }

    #[test]
    fn a_document_needs_kind_title_body_and_fee_terms_for_fees() {
        let errors = DocumentInput { kind: "fee_terms".into(), ..Default::default() }.parse().unwrap_err();
        for f in ["title", "body", "fee_terms"] {
            assert_eq!(errors.get(f), Some(ErrorCode::Required), "{f}");
        }
        let errors = DocumentInput { kind: "contract".into(), ..Default::default() }.parse().unwrap_err();
        assert_eq!(errors.get("kind"), Some(ErrorCode::Choice));
        let doc =
            DocumentInput {
                kind: "retainer".into(), title: "委任状".into(), body: "本文\r\n".into(), fee_terms: None
            }
            .parse()
            .unwrap();
        assert_eq!(doc.body, "本文");
        assert_eq!(doc.sha256, body_sha256("本文"));
    }
}
