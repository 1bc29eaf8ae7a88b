use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Serialize};

use super::{normalise, ErrorCode};

/// Parse `YYYY-MM-DD`, also `YYYY/MM/DD`, `YYYY.MM.DD` and `YYYY年M月D日`,
/// in full- or half-width digits.
pub fn parse_date(raw: &str) -> Result<NaiveDate, ErrorCode> {
    let v = normalise(raw);
    if v.is_empty() {
        return Err(ErrorCode::Required);
    }
    let mut unified = String::with_capacity(v.len());
    unified
        .extend(v.trim_end_matches('日').chars().map(|c| if matches!(c, '/' | '.' | '年' | '月') { '-' } else { c }));
    let parts: Vec<&str> = unified.split('-').collect();
    if parts.len() != 3 || parts.iter().any(|p| p.is_empty() || !p.chars().all(|c| c.is_ascii_digit())) {
        return Err(ErrorCode::Date);
    }
    let (y, m, d) = (parts[0].parse::<i32>(), parts[1].parse::<u32>(), parts[2].parse::<u32>());
    match (y, m, d) {
        (Ok(y), Ok(m), Ok(d)) if parts[0].len() == 4 => NaiveDate::from_ymd_opt(y, m, d).ok_or(ErrorCode::Date),
        _ => Err(ErrorCode::Date),
    }
}

/// A birth date that is not in the future and not before 1900.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct BirthDate(NaiveDate);

impl BirthDate {
    pub fn parse(raw: &str, today: NaiveDate) -> Result<Self, ErrorCode> {
        let d = parse_date(raw)?;
        if d > today {
            return Err(ErrorCode::DateInFuture);
        }
        if d.year() < 1900 {
            return Err(ErrorCode::DateImplausible);
        }
        Ok(Self(d))
    }
    pub fn date(&self) -> NaiveDate {
        self.0
    }
    /// Age in whole years on `on`.
    pub fn age_on(&self, on: NaiveDate) -> u32 {
        on.years_since(self.0).unwrap_or(0)
    }
    /// Minors under the Civil Code (age of majority 18 since 2022-04-01).
    pub fn is_minor_on(&self, on: NaiveDate) -> bool {
        self.age_on(on) < 18
    }
}

/// A date in the past, not before `earliest` (e.g. a harm not before the
/// leak began); `too_early` says which bound a date before it breaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PastDate(NaiveDate);

impl PastDate {
    pub fn parse(raw: &str, earliest: NaiveDate, too_early: ErrorCode, today: NaiveDate) -> Result<Self, ErrorCode> {
        let d = parse_date(raw)?;
        if d > today {
            return Err(ErrorCode::DateInFuture);
        }
        if d < earliest {
            return Err(too_early);
        }
        Ok(Self(d))
    }
    pub fn date(&self) -> NaiveDate {
        self.0
    }
    /// A date read back from storage, where it was parsed when first saved.
    pub fn from_stored(date: NaiveDate) -> Self {
        Self(date)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, 21).unwrap()
    }

    #[test]
    fn dates_accept_japanese_spellings() {
        let want = NaiveDate::from_ymd_opt(2010, 4, 1).unwrap();
        for raw in ["2010-04-01", "2010/4/1", "２０１０－０４－０１", "2010年4月1日", "2010.04.01"] {
            assert_eq!(parse_date(raw), Ok(want), "{raw}");
        }
        assert_eq!(parse_date("2010-02-30"), Err(ErrorCode::Date));
        assert_eq!(parse_date("10-04-01"), Err(ErrorCode::Date));
        assert_eq!(parse_date("yesterday"), Err(ErrorCode::Date));
    }

    #[test]
    fn birth_dates_must_be_plausible() {
        assert_eq!(BirthDate::parse("2030-01-01", today()), Err(ErrorCode::DateInFuture));
        assert_eq!(BirthDate::parse("1850-01-01", today()), Err(ErrorCode::DateImplausible));
        let b = BirthDate::parse("2010-11-22", today()).unwrap();
        assert_eq!(b.age_on(today()), 15);
        assert!(b.is_minor_on(today()));
        assert!(!BirthDate::parse("2008-11-21", today()).unwrap().is_minor_on(today()));
    }

    proptest! {
        #[test]
        fn every_real_date_round_trips(days in 0i64..60000) {
            let d = NaiveDate::from_ymd_opt(1900, 1, 1).unwrap() + chrono::Duration::days(days);
            prop_assert_eq!(parse_date(&d.format("%Y-%m-%d").to_string()), Ok(d));
            prop_assert_eq!(parse_date(&d.format("%Y/%-m/%-d").to_string()), Ok(d));
        }
    }
}
