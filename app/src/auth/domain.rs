use std::collections::HashSet;
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

use crate::domain::ErrorCode;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Hash)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Claimant,
    Lawyer,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Claimant => "claimant",
            Role::Lawyer => "lawyer",
            Role::Admin => "admin",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "claimant" => Some(Role::Claimant),
            "lawyer" => Some(Role::Lawyer),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
    pub fn is_staff(self) -> bool {
        matches!(self, Role::Lawyer | Role::Admin)
    }
}

/// A password that meets the policy: 8–128 characters, no composition
/// rules, not on the bundled breached-password list (S1).
pub struct Password(String);

fn breached() -> &'static HashSet<&'static str> {
    static LIST: OnceLock<HashSet<&'static str>> = OnceLock::new();
    LIST.get_or_init(|| {
        include_str!("../../data/breached-passwords.txt")
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .collect()
    })
}

impl Password {
    pub fn parse(raw: &str) -> Result<Self, ErrorCode> {
        let n = raw.chars().count();
        if n == 0 {
            return Err(ErrorCode::Required);
        }
        if n < 8 {
            return Err(ErrorCode::PasswordTooShort);
        }
        if n > 128 {
            return Err(ErrorCode::PasswordTooLong);
        }
        if breached().contains(raw.to_lowercase().as_str()) {
            return Err(ErrorCode::PasswordBreached);
        }
        Ok(Self(raw.to_string()))
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_follow_length_and_breach_rules_only() {
        assert_eq!(Password::parse("short").err(), Some(ErrorCode::PasswordTooShort));
        assert_eq!(Password::parse(&"x".repeat(129)).err(), Some(ErrorCode::PasswordTooLong));
        assert_eq!(Password::parse("Password1").err(), Some(ErrorCode::PasswordBreached));
        // No composition rules: lower-case words are fine, as is Japanese.
        assert!(Password::parse("correct horse battery").is_ok());
        assert!(Password::parse("ながいあいことばです").is_ok());
        assert_eq!(Password::parse("").err(), Some(ErrorCode::Required));
    }

    #[test]
    fn roles_round_trip() {
        for r in [Role::Claimant, Role::Lawyer, Role::Admin] {
            assert_eq!(Role::parse(r.as_str()), Some(r));
        }
        assert_eq!(Role::parse("root"), None);
    }
}
