//! Verification signals as pure rules over facts gathered about a claim.
//! A signal informs a lawyer; none rejects a claim.
use chrono::NaiveDate;
use serde::Serialize;

use crate::claims::domain::{ClaimStatus, DecisionKind};
use crate::domain::{parse_code, parse_free_text, ErrorCode, FieldErrors};

/// What was found.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SignalKind {
    /// The registration code from the apology letter is on the roster.
    RegistrationCodeMatch,
    /// A person's kana name and birth date are on the roster.
    IdentityMatch,
    /// The phone number is on the roster.
    PhoneMatch,
    /// Postal code and kana name together are on the roster.
    PostalKanaMatch,
    ApologyLetterUploaded,
    DirectMailUploaded,
    /// Another live claim in the case names the same person.
    PossibleDuplicate,
    /// Many claims were started from one address in a short time.
    ClaimBurstFromAddress,
}

/// How a signal weighs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Weight {
    Strong,
    Supporting,
    /// Needs a closer look (possible duplicate or fraud).
    Warning,
}

impl SignalKind {
    pub const ALL: [SignalKind; 8] = [
        SignalKind::RegistrationCodeMatch,
        SignalKind::IdentityMatch,
        SignalKind::PhoneMatch,
        SignalKind::PostalKanaMatch,
        SignalKind::ApologyLetterUploaded,
        SignalKind::DirectMailUploaded,
        SignalKind::PossibleDuplicate,
        SignalKind::ClaimBurstFromAddress,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            SignalKind::RegistrationCodeMatch => "registration_code_match",
            SignalKind::IdentityMatch => "identity_match",
            SignalKind::PhoneMatch => "phone_match",
            SignalKind::PostalKanaMatch => "postal_kana_match",
            SignalKind::ApologyLetterUploaded => "apology_letter_uploaded",
            SignalKind::DirectMailUploaded => "direct_mail_uploaded",
            SignalKind::PossibleDuplicate => "possible_duplicate",
            SignalKind::ClaimBurstFromAddress => "claim_burst_from_address",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
    pub fn weight(self) -> Weight {
        match self {
            SignalKind::RegistrationCodeMatch => Weight::Strong,
            SignalKind::IdentityMatch
            | SignalKind::PhoneMatch
            | SignalKind::PostalKanaMatch
            | SignalKind::ApologyLetterUploaded
            | SignalKind::DirectMailUploaded => Weight::Supporting,
            SignalKind::PossibleDuplicate | SignalKind::ClaimBurstFromAddress => Weight::Warning,
        }
    }
    /// The catalogue key of the reason shown to a person.
    pub fn reason_key(self) -> String {
        format!("signal-{}", self.as_str().replace('_', "-"))
    }
}

/// What is known about a claim, gathered by the service.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Facts {
    pub roster_code: bool,
    pub roster_identity: bool,
    pub roster_phone: bool,
    pub roster_postal_kana: bool,
    pub apology_letters: usize,
    pub direct_mail_samples: usize,
    pub possible_duplicate: bool,
    /// Claims started from the same address within the burst window.
    pub claims_from_same_address: usize,
}

/// At or above this many claims from one address in the window, flag a burst.
pub const BURST_THRESHOLD: usize = 5;

pub fn signals(f: &Facts) -> Vec<SignalKind> {
    let mut out = Vec::new();
    let rules = [
        (f.roster_code, SignalKind::RegistrationCodeMatch),
        (f.roster_identity, SignalKind::IdentityMatch),
        (f.roster_phone, SignalKind::PhoneMatch),
        (f.roster_postal_kana, SignalKind::PostalKanaMatch),
        (f.apology_letters > 0, SignalKind::ApologyLetterUploaded),
        (f.direct_mail_samples > 0, SignalKind::DirectMailUploaded),
        (f.possible_duplicate, SignalKind::PossibleDuplicate),
        (f.claims_from_same_address >= BURST_THRESHOLD, SignalKind::ClaimBurstFromAddress),
    ];
    for (fired, kind) in rules {
        if fired {
            out.push(kind);
        }
    }
    out
}

/// Both the strong code match and an identity match: the only case in
/// which a case's policy may verify a claim without a person.
pub fn code_and_identity_match(kinds: &[SignalKind]) -> bool {
    kinds.contains(&SignalKind::RegistrationCodeMatch) && kinds.contains(&SignalKind::IdentityMatch)
}

/// A decision as a lawyer typed it.
#[derive(Clone, Debug, Default, serde::Deserialize)]
pub struct DecisionInput {
    pub decision: String,
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(default)]
    pub cure_days: Option<serde_json::Value>,
}

/// A decision that can be applied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    pub kind: DecisionKind,
    pub reason: Option<String>,
    /// Days the claimant has to cure a deficiency (request_info only).
    pub cure_days: Option<u32>,
}

pub const REASON_MAX_CHARS: usize = 2000;
pub const DEFAULT_CURE_DAYS: u32 = 14;
pub const MAX_CURE_DAYS: u32 = 90;

/// Parse a lawyer's decision: a rejection and a deficiency notice need a
/// reason the claimant can act on; a cure period is 1 to 90 days (14 unless given).
pub fn parse_decision(input: &DecisionInput) -> Result<Decision, FieldErrors> {
    let mut errors = FieldErrors::new();
    let kind =
        errors.check("decision", parse_code(&input.decision, &DecisionKind::CHOSEN_BY_LAWYERS, DecisionKind::as_str));
    let reason = errors.optional("reason", input.reason.as_deref(), |r| parse_free_text(r, REASON_MAX_CHARS));
    let cure_days = match &input.cure_days {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::String(s)) if s.trim().is_empty() => None,
        Some(v) => {
            let raw = match v {
                serde_json::Value::String(s) => crate::domain::normalise(s),
                other => other.to_string(),
            };
            match raw.parse::<u32>() {
                Ok(n) if (1..=MAX_CURE_DAYS).contains(&n) => Some(n),
                Ok(_) => {
                    errors.add("cure_days", ErrorCode::OutOfRange);
                    None
                }
                Err(_) => {
                    errors.add("cure_days", ErrorCode::Number);
                    None
                }
            }
        }
    };
    if matches!(kind, Some(DecisionKind::Reject | DecisionKind::RequestInfo)) && reason.is_none() {
        errors.add("reason", ErrorCode::Required);
    }
    let kind = match kind {
        Some(k) if errors.is_empty() => k,
        _ => return Err(errors),
    };
    let cure_days = match kind {
        DecisionKind::RequestInfo => Some(cure_days.unwrap_or(DEFAULT_CURE_DAYS)),
        _ => None,
    };
    Ok(Decision { kind, reason, cure_days })
}

/// Lawyers decide on claims that are in: submitted, or waiting for the
/// claimant's answer to a deficiency notice.
pub fn can_decide(status: ClaimStatus, changed_since_decision: bool) -> bool {
    matches!(status, ClaimStatus::Submitted | ClaimStatus::NeedsInfo)
        || (status == ClaimStatus::Verified && changed_since_decision)
}

/// A deficiency notice whose deadline passed without an answer.
pub fn is_overdue(status: ClaimStatus, cure_deadline: Option<NaiveDate>, today: NaiveDate) -> bool {
    status == ClaimStatus::NeedsInfo && cure_deadline.is_some_and(|d| d < today)
}

/// Stored form of a claim's signal kinds: ",a,b," so one kind is found with LIKE.
pub fn encode_signals(kinds: &[SignalKind]) -> String {
    let mut out = String::from(",");
    for k in kinds {
        out.push_str(k.as_str());
        out.push(',');
    }
    out
}

pub fn decode_signals(stored: &str) -> Vec<SignalKind> {
    stored.split(',').filter_map(SignalKind::parse).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_fact_fires_its_signal_and_a_clean_claim_fires_none() {
        assert!(signals(&Facts::default()).is_empty());
        let all = Facts {
            roster_code: true,
            roster_identity: true,
            roster_phone: true,
            roster_postal_kana: true,
            apology_letters: 1,
            direct_mail_samples: 2,
            possible_duplicate: true,
            claims_from_same_address: BURST_THRESHOLD,
        };
        assert_eq!(signals(&all).len(), 8);
        let below = Facts { claims_from_same_address: BURST_THRESHOLD - 1, ..Default::default() };
        assert!(signals(&below).is_empty());
        assert!(code_and_identity_match(&signals(&Facts {
            roster_code: true,
            roster_identity: true,
            ..Default::default()
        })));
        assert!(!code_and_identity_match(&signals(&Facts { roster_code: true, ..Default::default() })));
        assert_eq!(SignalKind::ClaimBurstFromAddress.reason_key(), "signal-claim-burst-from-address");
        for kind in SignalKind::ALL {
            assert_eq!(serde_json::to_value(kind).unwrap(), kind.as_str(), "serde and as_str agree");
        }
        assert_eq!(decode_signals(&encode_signals(&signals(&all))), signals(&all));
        assert!(decode_signals(",").is_empty());
    }

    fn input(decision: &str, reason: Option<&str>, cure_days: Option<serde_json::Value>) -> DecisionInput {
        DecisionInput { decision: decision.into(), reason: reason.map(Into::into), cure_days }
    }

    #[test]
    fn decisions_are_parsed_with_field_errors() {
        let verify = parse_decision(&input("verify", None, None)).unwrap();
        assert_eq!(verify, Decision { kind: DecisionKind::Verify, reason: None, cure_days: None });
        let notice = parse_decision(&input("request_info", Some("通知書の写真を追加してください"), None)).unwrap();
        assert_eq!(notice.cure_days, Some(DEFAULT_CURE_DAYS));
        let notice = parse_decision(&input("request_info", Some("x"), Some(serde_json::json!("３０")))).unwrap();
        assert_eq!(notice.cure_days, Some(30));

        let e = parse_decision(&input("reject", Some("  "), None)).unwrap_err();
        assert_eq!(e.get("reason"), Some(ErrorCode::Required));
        let e = parse_decision(&input("request_info", Some("x"), Some(serde_json::json!(0)))).unwrap_err();
        assert_eq!(e.get("cure_days"), Some(ErrorCode::OutOfRange));
        let e = parse_decision(&input("request_info", Some("x"), Some(serde_json::json!("abc")))).unwrap_err();
        assert_eq!(e.get("cure_days"), Some(ErrorCode::Number));
        let e = parse_decision(&input("auto_verify", None, None)).unwrap_err();
        assert_eq!(e.get("decision"), Some(ErrorCode::Choice), "the system's decision cannot be typed");
        let long = "あ".repeat(REASON_MAX_CHARS + 1);
        let e = parse_decision(&input("reject", Some(&long), None)).unwrap_err();
        assert_eq!(e.get("reason"), Some(ErrorCode::TooLong));
    }

    #[test]
    fn only_claims_that_are_in_can_be_decided_and_overdue_needs_a_passed_deadline() {
        assert!(can_decide(ClaimStatus::Submitted, false) && can_decide(ClaimStatus::NeedsInfo, false));
        assert!(can_decide(ClaimStatus::Verified, true), "a verified claim changed since is decided again");
        for s in [
            ClaimStatus::Draft,
            ClaimStatus::Verified,
            ClaimStatus::Rejected,
            ClaimStatus::Withdrawn,
            ClaimStatus::Erased,
        ] {
            assert!(!can_decide(s, false));
        }
        let today = NaiveDate::from_ymd_opt(2026, 11, 21).unwrap();
        let yesterday = today.pred_opt().unwrap();
        assert!(is_overdue(ClaimStatus::NeedsInfo, Some(yesterday), today));
        assert!(!is_overdue(ClaimStatus::NeedsInfo, Some(today), today), "the deadline day itself is still in time");
        assert!(!is_overdue(ClaimStatus::Submitted, Some(yesterday), today));
        assert!(!is_overdue(ClaimStatus::NeedsInfo, None, today));
    }
}
