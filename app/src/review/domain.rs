//! Verification signals as pure rules over facts gathered about a claim.
//! A signal informs a lawyer; none rejects a claim.
use serde::Serialize;

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
        let json = serde_json::to_value(self).unwrap_or_default();
        format!("signal-{}", json.as_str().unwrap_or("unknown").replace('_', "-"))
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
    }
}
