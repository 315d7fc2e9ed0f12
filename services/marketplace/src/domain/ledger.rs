//! The arithmetic of balances: how a consumption splits between demo and paid tokens, and
//! when the low / depleted alerts fire.

use zimmer_db::models::marketplace::UserAutomation;

/// The balances of one user automation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Balances {
    pub paid: i64,
    pub demo: i64,
    pub demo_active: bool,
}

/// The balances of `ua` as its row stores them.
pub fn balances(ua: &UserAutomation) -> Balances {
    Balances {
        paid: ua.tokens_remaining,
        demo: ua.demo_tokens,
        demo_active: ua.is_demo_active && !ua.demo_expired,
    }
}

impl Balances {
    /// Demo tokens count only while the demo is active.
    pub fn spendable_demo(&self) -> i64 {
        if self.demo_active { self.demo } else { 0 }
    }
    /// What the customer can still spend.
    pub fn total(&self) -> i64 {
        self.paid.saturating_add(self.spendable_demo())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Split {
    pub from_demo: i64,
    pub from_paid: i64,
}

/// Demo tokens first, then paid; `None` when the balance cannot cover all `units` (a
/// consumption is never partial and never goes below zero).
pub fn split_consumption(balances: &Balances, units: i64) -> Option<Split> {
    if units <= 0 {
        return None;
    }
    let from_demo = units.min(balances.spendable_demo());
    let from_paid = units - from_demo;
    (from_paid <= balances.paid).then_some(Split {
        from_demo,
        from_paid,
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Alerts {
    pub low: bool,
    pub depleted: bool,
}

/// `tokens.low` once per downward crossing of `threshold` (the flag, cleared only when a
/// credit lifts the balance above the threshold, keeps it to once); `tokens.depleted` when
/// the balance reaches zero (then no separate low alert: one notification is enough).
pub fn alerts(before_total: i64, after_total: i64, threshold: i64, low_alert_sent: bool) -> Alerts {
    let depleted = before_total > 0 && after_total == 0;
    let low = !depleted && !low_alert_sent && before_total > threshold && after_total <= threshold;
    Alerts { low, depleted }
}

/// The `low_alert_sent` flag after a balance change.
pub fn low_flag_after(before: bool, after_total: i64, threshold: i64, alerts: Alerts) -> bool {
    if after_total > threshold {
        false
    } else {
        before || alerts.low || alerts.depleted
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(paid: i64, demo: i64, demo_active: bool) -> Balances {
        Balances {
            paid,
            demo,
            demo_active,
        }
    }

    #[test]
    fn demo_first_then_paid_never_partial() {
        assert_eq!(
            split_consumption(&b(10, 3, true), 5),
            Some(Split {
                from_demo: 3,
                from_paid: 2
            })
        );
        assert_eq!(
            split_consumption(&b(10, 3, false), 5),
            Some(Split {
                from_demo: 0,
                from_paid: 5
            })
        );
        assert_eq!(split_consumption(&b(1, 3, true), 5), None);
        assert_eq!(split_consumption(&b(1, 3, true), 0), None);
        assert_eq!(split_consumption(&b(1, 3, true), -1), None);
    }

    #[test]
    fn low_fires_once_per_crossing_and_depleted_at_zero() {
        // (before, after, threshold, low alert sent already) → (low, depleted)
        for (before, after, threshold, sent, (low, depleted)) in [
            (6, 5, 5, false, (true, false)),
            (5, 4, 5, true, (false, false)),
            (5, 4, 5, false, (false, false)), // no crossing
            (20, 0, 5, false, (false, true)),
            (0, 0, 5, true, (false, false)),
        ] {
            assert_eq!(
                alerts(before, after, threshold, sent),
                Alerts { low, depleted },
                "{before} → {after}"
            );
        }
        let a = alerts(6, 5, 5, false);
        assert!(low_flag_after(false, 5, 5, a));
        assert!(
            !low_flag_after(true, 6, 5, Alerts::default()),
            "credit above clears"
        );
        assert!(
            low_flag_after(true, 3, 5, Alerts::default()),
            "credit below keeps"
        );
    }
}
