//! The one place the portal reads the time from. Every rule (deadlines,
//! reminders, leases, lockouts, sessions) asks `state.clock`; tests hold the
//! same handle and set it.
use std::sync::{Arc, RwLock};

use chrono::{DateTime, Duration, NaiveDate, Utc};

/// A shared clock: the system's, unless set to a fixed instant (tests).
#[derive(Clone, Debug, Default)]
pub struct Clock(Arc<RwLock<Option<DateTime<Utc>>>>);

impl Clock {
    /// The system clock.
    pub fn system() -> Self {
        Self::default()
    }

    /// A clock stopped at `at` until set or advanced.
    pub fn fixed(at: DateTime<Utc>) -> Self {
        Self(Arc::new(RwLock::new(Some(at))))
    }

    pub fn now(&self) -> DateTime<Utc> {
        match self.0.read() {
            Ok(fixed) => fixed.unwrap_or_else(Utc::now),
            Err(_) => Utc::now(),
        }
    }

    /// Today's date in Japan, where the suits are filed.
    pub fn today(&self) -> NaiveDate {
        crate::today_of(self.now())
    }

    /// Stop the clock at `at` (every holder of this handle sees it).
    pub fn set(&self, at: DateTime<Utc>) {
        if let Ok(mut fixed) = self.0.write() {
            *fixed = Some(at);
        }
    }

    /// Move a stopped clock on; a running clock is first stopped at now.
    pub fn advance(&self, by: Duration) {
        let next = self.now() + by;
        self.set(next);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fixed_clock_is_shared_by_every_handle_and_advances_when_told() {
        let at = DateTime::parse_from_rfc3339("2026-12-01T23:30:00Z").unwrap().with_timezone(&Utc);
        let clock = Clock::fixed(at);
        let other = clock.clone();
        assert_eq!(other.now(), at);
        // 23:30 UTC is 08:30 the next day in Japan.
        assert_eq!(other.today(), NaiveDate::from_ymd_opt(2026, 12, 2).unwrap());
        clock.advance(Duration::days(3));
        assert_eq!(other.now(), at + Duration::days(3));
    }

    #[test]
    fn the_system_clock_moves() {
        let clock = Clock::system();
        let before = Utc::now();
        assert!(clock.now() >= before);
    }
}
