//! Rules of the dashboard's daily rollup (docs/data-model.md "dashboard_daily"): which UTC
//! days are closed, and which closed days a run computes again.
//!
//! How the figures stay exact: a reader sums the rollup for closed days (before
//! `closed_before`), the raw rows from `closed_before` on, and the raw rows that came late
//! (an id above the one the rollup saw, a timestamp before `closed_before`: a back-dated
//! insert or an import). The one row that can be missed is one whose inserting transaction
//! began before a day's end and was still open [`SETTLE`] later, when the day was rolled up:
//! its id is below the rollup's and it was not yet visible. Every run computes the last
//! [`RECOMPUTE_DAYS`] closed days again, which folds such a row in on the next run (every
//! [`RUN_EVERY`]); nothing in Zimmer keeps a transaction open for an hour.
//!
//! What the readers rely on: the summed rows are only ever inserted, with their timestamp
//! (`token_ledger.created_at`, `payments.created_at`, `users.created_at`,
//! `user_automations.created_at`) set once, and `payments.verified_at` set once when a payment
//! succeeds (now, never a past time), a succeeded payment staying succeeded; and no account,
//! payment, user automation or ledger entry is ever deleted. A repair that changes old rows in
//! place must rebuild the rollup (workers/rollup.rs says how).

use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};

/// How long after a UTC day's end it counts as closed: far longer than any transaction that
/// writes a ledger entry, a payment's success or an account (each takes milliseconds), so the
/// rows of a closed day are all committed when it is rolled up.
pub const SETTLE: Duration = Duration::from_secs(3600);

/// Closed days computed again on every run (see the module comment).
pub const RECOMPUTE_DAYS: i32 = 3;

/// How often a replica tries a run (one at a time: an advisory lock).
pub const RUN_EVERY: Duration = Duration::from_secs(300);

/// The first day that is not closed at `now`: every day before it ended at least [`SETTLE`]
/// ago. Never moves back: `previous` (what the rollup has) wins if a clock went backwards.
pub fn closed_before(now: DateTime<Utc>, previous: Option<NaiveDate>) -> NaiveDate {
    let settle = chrono::Duration::from_std(SETTLE).unwrap_or(chrono::Duration::zero());
    let day = (now - settle).date_naive();
    previous.map_or(day, |p| p.max(day))
}

/// The first day a run computes (up to the new `closed_before`, plus the days of late rows):
/// `None` when nothing was rolled up yet, meaning from the first day with data.
pub fn recompute_from(previous: Option<NaiveDate>) -> Option<NaiveDate> {
    previous.map(|p| p - chrono::Duration::days(i64::from(RECOMPUTE_DAYS)))
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn at(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, d, h, min, 0).unwrap()
    }

    fn day(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    #[test]
    fn a_day_closes_an_hour_after_its_end() {
        // 00:30: yesterday ended only half an hour ago, so the day before is the last closed.
        assert_eq!(
            closed_before(at(2026, 12, 3, 0, 30), None),
            day(2026, 12, 2)
        );
        assert_eq!(
            closed_before(at(2026, 12, 3, 0, 59), None),
            day(2026, 12, 2)
        );
        assert_eq!(closed_before(at(2026, 12, 3, 1, 0), None), day(2026, 12, 3));
        assert_eq!(
            closed_before(at(2026, 12, 3, 23, 59), None),
            day(2026, 12, 3)
        );
    }

    #[test]
    fn closed_before_never_moves_back() {
        let now = at(2026, 12, 3, 12, 0);
        assert_eq!(closed_before(now, Some(day(2026, 12, 1))), day(2026, 12, 3));
        assert_eq!(closed_before(now, Some(day(2026, 12, 5))), day(2026, 12, 5));
    }

    #[test]
    fn a_run_computes_the_last_closed_days_again() {
        assert_eq!(recompute_from(None), None);
        assert_eq!(
            recompute_from(Some(day(2026, 12, 3))),
            Some(day(2026, 11, 30))
        );
    }
}
