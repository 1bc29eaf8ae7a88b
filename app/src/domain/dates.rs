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

/// A date in the past, exact (`2014-06-26`) or a month when that is all a
/// person remembers (`2014-07`, 「2014年7月ごろ」), not before `earliest`.
/// A month is kept as its first day and a flag; it passes a bound when any
/// day of it does, and anything that counts from it (the limitation period)
/// counts from its first day, so that a warning is never late.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PastDate {
    first: NaiveDate,
    month_only: bool,
}

impl PastDate {
    /// `too_early` says which bound a date before `earliest` breaks.
    pub fn parse(raw: &str, earliest: NaiveDate, too_early: ErrorCode, today: NaiveDate) -> Result<Self, ErrorCode> {
        let parsed = Self::parse_unbounded(raw)?;
        if parsed.first > today {
            return Err(ErrorCode::DateInFuture);
        }
        if parsed.last() < earliest {
            return Err(too_early);
        }
        Ok(parsed)
    }

    fn parse_unbounded(raw: &str) -> Result<Self, ErrorCode> {
        match parse_date(raw) {
            Ok(d) => Ok(Self { first: d, month_only: false }),
            Err(ErrorCode::Date) => parse_month(raw).map(|first| Self { first, month_only: true }),
            Err(e) => Err(e),
        }
    }

    /// The earliest day the date allows (the day itself, or the month's first).
    pub fn first(&self) -> NaiveDate {
        self.first
    }

    /// The latest day the date allows.
    pub fn last(&self) -> NaiveDate {
        if !self.month_only {
            return self.first;
        }
        let next = if self.first.month() == 12 {
            NaiveDate::from_ymd_opt(self.first.year() + 1, 1, 1)
        } else {
            NaiveDate::from_ymd_opt(self.first.year(), self.first.month() + 1, 1)
        };
        next.and_then(|n| n.pred_opt()).unwrap_or(self.first)
    }

    pub fn month_only(&self) -> bool {
        self.month_only
    }

    /// A date read back from storage, where it was parsed when first saved.
    pub fn from_stored(first: NaiveDate, month_only: bool) -> Self {
        Self { first, month_only }
    }

    /// As the API and the forms write it: `2014-06-26` or `2014-07`.
    pub fn as_input(&self) -> String {
        if self.month_only {
            self.first.format("%Y-%m").to_string()
        } else {
            self.first.to_string()
        }
    }

    /// As a person reads it: the day, or 「2014年7月ごろ」 / "around July 2014".
    pub fn display(&self, lang: crate::i18n::Lang) -> String {
        match (self.month_only, lang) {
            (false, _) => self.first.to_string(),
            (true, crate::i18n::Lang::Ja) => format!("{}年{}月ごろ", self.first.year(), self.first.month()),
            (true, crate::i18n::Lang::En) => format!("around {}", self.first.format("%B %Y")),
        }
    }
}

/// Parse a month: `YYYY-MM`, `YYYY/M`, `YYYY年M月`, with 「ごろ」 or 「頃」 after it.
fn parse_month(raw: &str) -> Result<NaiveDate, ErrorCode> {
    let v = normalise(raw);
    let v = v.trim_end_matches(['ご', 'ろ', '頃', ' ']).trim_end_matches('月');
    let unified: String = v.chars().map(|c| if matches!(c, '/' | '.' | '年') { '-' } else { c }).collect();
    let parts: Vec<&str> = unified.split('-').collect();
    if parts.len() != 2
        || parts[0].len() != 4
        || parts.iter().any(|p| p.is_empty() || !p.chars().all(|c| c.is_ascii_digit()))
    {
        return Err(ErrorCode::Date);
    }
    match (parts[0].parse::<i32>(), parts[1].parse::<u32>()) {
        (Ok(y), Ok(m)) => NaiveDate::from_ymd_opt(y, m, 1).ok_or(ErrorCode::Date),
        _ => Err(ErrorCode::Date),
    }
}

impl Serialize for PastDate {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.as_input())
    }
}

impl<'de> Deserialize<'de> for PastDate {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        Self::parse_unbounded(&raw).map_err(|_| serde::de::Error::custom("a date YYYY-MM-DD or a month YYYY-MM"))
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

    #[test]
    fn a_date_may_be_a_month_when_that_is_all_a_person_knows() {
        let earliest = NaiveDate::from_ymd_opt(2014, 6, 26).unwrap();
        let bound = ErrorCode::DateBeforeFirstHarms;
        for raw in ["2014-07", "2014/7", "2014年7月", "2014年7月ごろ", "２０１４年７月頃"] {
            let d = PastDate::parse(raw, earliest, bound, today()).unwrap_or_else(|e| panic!("{raw}: {e:?}"));
            assert!(d.month_only(), "{raw}");
            assert_eq!(d.as_input(), "2014-07");
            assert_eq!(d.last().to_string(), "2014-07-31");
            assert_eq!(d.display(crate::i18n::Lang::Ja), "2014年7月ごろ");
            assert_eq!(d.display(crate::i18n::Lang::En), "around July 2014");
        }
        // June 2014 passes a bound of 2014-06-26 (its last days are after it); May does not.
        let june = PastDate::parse("2014-06", earliest, bound, today()).unwrap();
        assert_eq!(june.first().to_string(), "2014-06-01", "counts from the earliest day");
        assert_eq!(PastDate::parse("2014-05", earliest, bound, today()), Err(bound));
        assert_eq!(PastDate::parse("2014-06-25", earliest, bound, today()), Err(bound));
        assert_eq!(PastDate::parse("2099-01", earliest, bound, today()), Err(ErrorCode::DateInFuture));
        assert_eq!(PastDate::parse("2014-13", earliest, bound, today()), Err(ErrorCode::Date));
        assert_eq!(PastDate::parse("2014-12", earliest, bound, today()).unwrap().last().to_string(), "2014-12-31");
        let exact = PastDate::parse("2014-06-26", earliest, bound, today()).unwrap();
        assert!(!exact.month_only());
        assert_eq!(serde_json::to_value(exact).unwrap(), "2014-06-26");
        let july = PastDate::from_stored(NaiveDate::from_ymd_opt(2014, 7, 1).unwrap(), true);
        assert_eq!(serde_json::from_value::<PastDate>(serde_json::json!("2014-07")).unwrap(), july);
    }
}
