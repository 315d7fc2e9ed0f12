//! The one retry back-off of the workspace: start at `base`, double after every failure, never
//! above `cap`, start again at `base` after a success. Every reconnect loop (broker, outbox
//! LISTEN, consumers, JWKS, revocation feed, support's live channel) and every retry schedule
//! (event redelivery, Zarinpal verification, vendor provisioning) uses it, so they all behave
//! alike and a fix lands once.

use std::time::Duration;

/// An exponential back-off with a cap. Cheap to copy; keep one per loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    base: Duration,
    cap: Duration,
    next: Duration,
}

impl Backoff {
    /// `base` is the first pause; `cap` bounds every pause (a cap below `base` wins).
    pub const fn new(base: Duration, cap: Duration) -> Self {
        Self {
            base,
            cap,
            next: base,
        }
    }

    /// The pause to take now; the one after is twice as long (up to the cap).
    pub fn next_delay(&mut self) -> Duration {
        let now = self.next.min(self.cap);
        self.next = now.saturating_mul(2).min(self.cap);
        now
    }

    /// The pause `next_delay` would give now, without moving on (for log lines).
    pub fn peek(&self) -> Duration {
        self.next.min(self.cap)
    }

    /// After a success: the next pause is `base` again.
    pub fn reset(&mut self) {
        self.next = self.base;
    }

    /// The pause before retry number `retry` (0-based) of a schedule kept elsewhere (a
    /// message's retry count, a row's attempt counter): `base * 2^retry`, capped.
    pub fn nth(&self, retry: u32) -> Duration {
        match 2u32.checked_pow(retry) {
            Some(factor) => self.base.saturating_mul(factor).min(self.cap),
            None => self.cap,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_caps_and_resets() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_millis(500));
        let seen: Vec<u128> = (0..5).map(|_| b.next_delay().as_millis()).collect();
        assert_eq!(seen, [100, 200, 400, 500, 500]);
        b.reset();
        assert_eq!(b.next_delay(), Duration::from_millis(100));
    }

    #[test]
    fn nth_is_stateless_and_never_overflows() {
        let b = Backoff::new(Duration::from_secs(1), Duration::from_secs(60));
        assert_eq!(b.nth(0), Duration::from_secs(1));
        assert_eq!(b.nth(3), Duration::from_secs(8));
        assert_eq!(b.nth(10), Duration::from_secs(60));
        assert_eq!(b.nth(u32::MAX), Duration::from_secs(60));
    }

    #[test]
    fn a_cap_below_the_base_wins() {
        let mut b = Backoff::new(Duration::from_secs(5), Duration::from_secs(2));
        assert_eq!(b.next_delay(), Duration::from_secs(2));
        assert_eq!(b.nth(0), Duration::from_secs(2));
    }
}
