//! Throttling of the guessable endpoints, in Redis (shared by every auth replica).
//!
//! Policy (defaults; each number can be changed with the `THROTTLE_*` variable named in
//! [`Policy::from_settings`]):
//!
//! - **Login, per client IP**: 50 attempts per 5 minutes, whatever the account (one host
//!   spraying many accounts). 429 until the window ends.
//! - **Login, per account and IP**: 5 *failed* passwords per 15 minutes lock that IP out of
//!   that account; each further lock within 24 hours doubles (15, 30, 60 minutes, at most
//!   60). Only the guesser's address is locked, so the owner elsewhere is not affected.
//! - **Login, per account from every IP**: 20 failed passwords per 15 minutes lock the
//!   account for the rest of that window (at most 15 minutes, never escalating). Since one
//!   IP contributes at most 5 failures per window, keeping an account locked takes several
//!   fresh addresses every 15 minutes, and even then each lock ends by itself within 15
//!   minutes: guessing can delay a victim, never lock them out for long. A successful login
//!   clears the failures of its (account, IP) pair.
//!   Locks are checked before the password, answer 429 with `Retry-After` even for the right
//!   password, and are keyed by the normalized email whether or not an account exists, so
//!   they reveal nothing about which emails are registered.
//!   Each attempt is **counted before its password is verified** (one atomic `INCR` per rule)
//!   and given back when the password was right: of N parallel guesses only the first
//!   `max` are verified, the rest answer 429 without reaching argon2. Counting after the
//!   check let every parallel guess pass the lock check before any failure was recorded.
//! - **2FA codes, per account**: 5 TOTP attempts per 5 minutes and 30 per 24 hours (6 digits
//!   are few: this bounds a password holder's chance of guessing). Recovery codes (50 random
//!   bits) are not counted there, so the owner can still get in with one.
//! - **2FA verify, per IP**: 30 attempts per 10 minutes.
//! - **Forgot password**: 3 per email per hour and 10 per IP per hour (mail bombing).
//! - **Verification mail**: 5 per user per hour.
//! - **Password re-checks of a signed-in user** (delete account, disable 2FA, change
//!   password, and admin's generate-token through `/internal/password-recheck`): 5 failures
//!   per 15 minutes per user lock those checks for the window. The internal re-check counts
//!   each attempt before verifying it, as login does ([`Throttle::recheck_begin`]).
//!
//! When Redis is down: login, forgot-password, verification mail and password re-checks
//! **fail open** (logged and counted in `zimmer_auth_throttle_unavailable_total`): the
//! gateway's per-IP rate limit and argon2's cost still bound guessing, and people can still
//! sign in. TOTP codes **fail closed** (503): without Redis neither the attempt limit nor the
//! single-use guarantee holds, and a 6-digit code is too small to go unguarded; recovery
//! codes still work (single use is enforced in the database).

use std::time::Duration;

use aws_lc_rs::digest;
use chrono::Utc;
use prometheus::IntCounterVec;
use zimmer_config::Settings;
use zimmer_http::ApiError;
use zimmer_redis::{RateDecision, Redis};

#[derive(Debug, Clone, Copy)]
pub struct Limit {
    pub max: u64,
    pub window: Duration,
}

impl Limit {
    const fn new(max: u64, secs: u64) -> Self {
        Self {
            max,
            window: Duration::from_secs(secs),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Policy {
    pub login_ip: Limit,
    pub login_pair_failures: Limit,
    pub login_pair_max_lock: Duration,
    pub login_account_failures: Limit,
    pub otp_account: Limit,
    pub otp_account_daily: Limit,
    pub twofa_ip: Limit,
    pub forgot_email: Limit,
    pub forgot_ip: Limit,
    pub verify_mail_user: Limit,
    pub password_recheck_failures: Limit,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            login_ip: Limit::new(50, 300),
            login_pair_failures: Limit::new(5, 900),
            login_pair_max_lock: Duration::from_secs(3600),
            login_account_failures: Limit::new(20, 900),
            otp_account: Limit::new(5, 300),
            otp_account_daily: Limit::new(30, 86_400),
            twofa_ip: Limit::new(30, 600),
            forgot_email: Limit::new(3, 3600),
            forgot_ip: Limit::new(10, 3600),
            verify_mail_user: Limit::new(5, 3600),
            password_recheck_failures: Limit::new(5, 900),
        }
    }
}

impl Policy {
    /// `THROTTLE_<NAME>=max/seconds`, e.g. `THROTTLE_LOGIN_PAIR_FAILURES=5/900`.
    pub fn from_settings(settings: &Settings) -> anyhow::Result<Self> {
        let d = Self::default();
        let read = |name: &str, default: Limit| -> anyhow::Result<Limit> {
            let key = format!("THROTTLE_{name}");
            match settings.env.get(&key) {
                None => Ok(default),
                Some(raw) => {
                    let (max, secs) = raw
                        .trim()
                        .split_once('/')
                        .ok_or_else(|| anyhow::anyhow!("{key} must look like 5/900"))?;
                    Ok(Limit::new(
                        max.trim()
                            .parse()
                            .map_err(|_| anyhow::anyhow!("{key}: bad count"))?,
                        secs.trim()
                            .parse::<u64>()
                            .map_err(|_| anyhow::anyhow!("{key}: bad seconds"))?
                            .max(1),
                    ))
                }
            }
        };
        Ok(Self {
            login_ip: read("LOGIN_IP", d.login_ip)?,
            login_pair_failures: read("LOGIN_PAIR_FAILURES", d.login_pair_failures)?,
            login_pair_max_lock: d.login_pair_max_lock,
            login_account_failures: read("LOGIN_ACCOUNT_FAILURES", d.login_account_failures)?,
            otp_account: read("OTP_ACCOUNT", d.otp_account)?,
            otp_account_daily: read("OTP_ACCOUNT_DAILY", d.otp_account_daily)?,
            twofa_ip: read("TWOFA_IP", d.twofa_ip)?,
            forgot_email: read("FORGOT_EMAIL", d.forgot_email)?,
            forgot_ip: read("FORGOT_IP", d.forgot_ip)?,
            verify_mail_user: read("VERIFY_MAIL_USER", d.verify_mail_user)?,
            password_recheck_failures: read(
                "PASSWORD_RECHECK_FAILURES",
                d.password_recheck_failures,
            )?,
        })
    }
}

/// A login attempt counted before its password is checked (see [`Throttle::login_begin`]).
#[derive(Debug)]
pub struct LoginAttempt {
    account: String,
    pair: String,
    /// None when Redis could not count (fail open).
    pair_count: Option<RateDecision>,
    account_count: Option<RateDecision>,
}

/// What to do when Redis cannot answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnOutage {
    Open,
    Closed,
}

#[derive(Clone)]
pub struct Throttle {
    redis: Redis,
    pub policy: Policy,
    throttled: IntCounterVec,
    unavailable: IntCounterVec,
}

/// Keys hold a digest, never the raw email or header: bounded length, nothing personal in
/// Redis.
fn digest_key(value: &str) -> String {
    let d = digest::digest(&digest::SHA256, value.as_bytes());
    d.as_ref()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The account key of a login: the normalized email (or the raw text when it is not a valid
/// email), the same whether or not an account exists.
pub fn account_key(email_input: &str) -> String {
    // NFKC first: a full-width spelling of an address shares its lock.
    let normalized = super::address::normalize(email_input)
        .unwrap_or_else(|_| email_input.trim().to_lowercase());
    digest_key(&normalized)
}

pub fn ip_key(ip: Option<&str>) -> String {
    digest_key(ip.unwrap_or("unknown"))
}

impl Throttle {
    pub fn new(redis: Redis, policy: Policy, registry: &prometheus::Registry) -> Self {
        let counter = |name: &str, help: &str| {
            let c = IntCounterVec::new(prometheus::Opts::new(name, help), &["rule"])
                .unwrap_or_else(|e| unreachable!("static metric definition: {e}"));
            let _ = registry.register(Box::new(c.clone()));
            c
        };
        Self {
            redis,
            policy,
            throttled: counter(
                "auth_throttled_total",
                "Requests refused by a throttling rule",
            ),
            unavailable: counter(
                "auth_throttle_unavailable_total",
                "Throttle checks that could not reach Redis",
            ),
        }
    }

    fn refuse(&self, rule: &str, retry_after: u64) -> ApiError {
        self.throttled.with_label_values(&[rule]).inc();
        ApiError::too_many_requests(retry_after)
    }

    fn outage(&self, rule: &str, on: OnOutage, e: &dyn std::fmt::Display) -> Result<(), ApiError> {
        self.unavailable.with_label_values(&[rule]).inc();
        match on {
            OnOutage::Open => {
                tracing::warn!(rule, error = %e, "throttle unavailable: allowing (fail open)");
                Ok(())
            }
            OnOutage::Closed => {
                tracing::error!(rule, error = %e, "throttle unavailable: refusing (fail closed)");
                Err(ApiError::unavailable(
                    "Two-factor checks are temporarily unavailable; try again shortly or use a recovery code",
                ))
            }
        }
    }

    /// Counts one attempt against `limit`; 429 once it is exceeded.
    pub async fn hit(
        &self,
        rule: &str,
        key: &str,
        limit: Limit,
        on: OnOutage,
    ) -> Result<(), ApiError> {
        match self
            .redis
            .rate_limit(&format!("throttle:{rule}:{key}"), limit.max, limit.window)
            .await
        {
            Ok(d) if d.allowed => Ok(()),
            Ok(d) => Err(self.refuse(rule, d.retry_after)),
            Err(e) => self.outage(rule, on, &e),
        }
    }

    fn lock_key(rule: &str, key: &str) -> String {
        format!("throttle:lock:{rule}:{key}")
    }

    /// 429 while a lock set by [`Self::failure`] lives. Redis down reads as "no lock".
    pub async fn check_lock(&self, rule: &str, key: &str) -> Result<(), ApiError> {
        if let Some(until) = self.redis.get_json::<i64>(&Self::lock_key(rule, key)).await {
            let left = until - Utc::now().timestamp();
            if left > 0 {
                return Err(self.refuse(rule, u64::try_from(left).unwrap_or(1)));
            }
        }
        Ok(())
    }

    /// Records a failure; when `limit` is reached, locks `key` until the window ends (or,
    /// with `escalate`, for the window doubled per earlier lock within a day, capped).
    pub async fn failure(&self, rule: &str, key: &str, limit: Limit, escalate: Option<Duration>) {
        let counted = self
            .redis
            .rate_limit(
                &format!("throttle:fail:{rule}:{key}"),
                limit.max,
                limit.window,
            )
            .await;
        match counted {
            Ok(d) => self.lock_when_full(rule, key, limit, d, escalate).await,
            Err(e) => {
                let _ = self.outage(rule, OnOutage::Open, &e);
            }
        }
    }

    /// The lock part of [`Self::failure`], for a failure already counted as `d`.
    async fn lock_when_full(
        &self,
        rule: &str,
        key: &str,
        limit: Limit,
        d: RateDecision,
        escalate: Option<Duration>,
    ) {
        if d.count < limit.max {
            return;
        }
        let mut lock_secs = d.retry_after;
        if let Some(cap) = escalate {
            // The n-th lock within a day lasts window × 2^(n-1), at most `cap`.
            let strikes = self
                .redis
                .rate_limit(
                    &format!("throttle:strikes:{rule}:{key}"),
                    u64::MAX,
                    Duration::from_secs(86_400),
                )
                .await
                .map(|s| s.count)
                .unwrap_or(1);
            let factor = 1u64 << strikes.saturating_sub(1).min(16);
            lock_secs = limit
                .window
                .as_secs()
                .saturating_mul(factor)
                .min(cap.as_secs());
            // The failure window restarts with the lock.
            self.redis
                .delete(&[&format!("throttle:fail:{rule}:{key}")])
                .await;
        }
        let until = Utc::now().timestamp() + i64::try_from(lock_secs).unwrap_or(3600);
        self.redis
            .set_json(
                &Self::lock_key(rule, key),
                &until,
                Duration::from_secs(lock_secs.max(1)),
            )
            .await;
        tracing::warn!(rule, lock_secs, "throttle lock set");
    }

    /// Forgets the failures of `key` (after a success).
    pub async fn clear_failures(&self, rule: &str, key: &str) {
        self.redis
            .delete(&[&format!("throttle:fail:{rule}:{key}")])
            .await;
    }

    // ---- the rules, named once ----

    /// Counts one attempt of `rule` before it is verified: `Ok(None)` when Redis cannot
    /// count (fail open), 429 when the attempt is beyond the limit (and then it is given back
    /// at once: it was never verified).
    async fn reserve(
        &self,
        rule: &str,
        key: &str,
        limit: Limit,
    ) -> Result<Option<RateDecision>, ApiError> {
        let counter = format!("throttle:fail:{rule}:{key}");
        match self
            .redis
            .rate_limit(&counter, limit.max, limit.window)
            .await
        {
            Ok(d) if d.allowed => Ok(Some(d)),
            Ok(d) => {
                self.refund(rule, key).await;
                Err(self.refuse(rule, d.retry_after))
            }
            Err(e) => self.outage(rule, OnOutage::Open, &e).map(|()| None),
        }
    }

    /// Gives back an attempt counted by [`Self::reserve`].
    async fn refund(&self, rule: &str, key: &str) {
        if let Err(e) = self
            .redis
            .refund(&format!("throttle:fail:{rule}:{key}"))
            .await
        {
            let _ = self.outage(rule, OnOutage::Open, &e);
        }
    }

    /// Before checking a login's password: the locks, then the attempt counted against the
    /// (account, IP) and the account limits. The answer is handed back to
    /// [`Self::login_failed`] or [`Self::login_succeeded`].
    pub async fn login_begin(&self, account: &str, ip: &str) -> Result<LoginAttempt, ApiError> {
        self.hit("login_ip", ip, self.policy.login_ip, OnOutage::Open)
            .await?;
        let pair = format!("{account}:{ip}");
        self.check_lock("login_pair", &pair).await?;
        self.check_lock("login_account", account).await?;
        let pair_count = self
            .reserve("login_pair", &pair, self.policy.login_pair_failures)
            .await?;
        let account_count = match self
            .reserve("login_account", account, self.policy.login_account_failures)
            .await
        {
            Ok(d) => d,
            Err(e) => {
                if pair_count.is_some() {
                    self.refund("login_pair", &pair).await;
                }
                return Err(e);
            }
        };
        Ok(LoginAttempt {
            account: account.to_owned(),
            pair,
            pair_count,
            account_count,
        })
    }

    /// A wrong password (or unknown email): the attempt stays counted; the one that fills a
    /// limit sets its lock.
    pub async fn login_failed(&self, attempt: &LoginAttempt) {
        if let Some(d) = attempt.pair_count {
            self.lock_when_full(
                "login_pair",
                &attempt.pair,
                self.policy.login_pair_failures,
                d,
                Some(self.policy.login_pair_max_lock),
            )
            .await;
        }
        if let Some(d) = attempt.account_count {
            self.lock_when_full(
                "login_account",
                &attempt.account,
                self.policy.login_account_failures,
                d,
                None,
            )
            .await;
        }
    }

    /// The right password: the (account, IP) failures start over and the account-wide
    /// count gets this attempt back.
    pub async fn login_succeeded(&self, attempt: &LoginAttempt) {
        self.clear_failures("login_pair", &attempt.pair).await;
        if attempt.account_count.is_some() {
            self.refund("login_account", &attempt.account).await;
        }
    }

    /// Before a TOTP code of `user_id` is checked (login or a signed-in action).
    pub async fn otp_attempt(&self, user_id: i64) -> Result<(), ApiError> {
        let key = user_id.to_string();
        self.hit(
            "otp_account",
            &key,
            self.policy.otp_account,
            OnOutage::Closed,
        )
        .await?;
        self.hit(
            "otp_account_daily",
            &key,
            self.policy.otp_account_daily,
            OnOutage::Closed,
        )
        .await
    }

    pub async fn twofa_ip(&self, ip: &str, on: OnOutage) -> Result<(), ApiError> {
        self.hit("twofa_ip", ip, self.policy.twofa_ip, on).await
    }

    /// Marks a TOTP step of a user as used: false when it already was (a replay).
    pub async fn consume_otp_step(&self, user_id: i64, step: u64) -> Result<bool, ApiError> {
        match self
            .redis
            .set_once(
                &format!("totp:used:{user_id}:{step}"),
                Duration::from_secs(super::twofa::REPLAY_GUARD_SECS),
            )
            .await
        {
            Ok(first) => Ok(first),
            Err(e) => self
                .outage("otp_replay", OnOutage::Closed, &e)
                .map(|()| false),
        }
    }

    /// Marks a login challenge as used: false when it already was.
    pub async fn consume_challenge(&self, nonce: &str, ttl_secs: u64) -> Result<bool, ApiError> {
        match self
            .redis
            .set_once(
                &format!("2fa:challenge:{}", digest_key(nonce)),
                Duration::from_secs(ttl_secs.max(1)),
            )
            .await
        {
            Ok(first) => Ok(first),
            // The challenge only adds to a code that was already checked (and, for TOTP,
            // marked used in Redis): without Redis, recovery-code logins still work.
            Err(e) => self.outage("challenge", OnOutage::Open, &e).map(|()| true),
        }
    }

    pub async fn forgot_password(&self, account: &str, ip: &str) -> Result<(), ApiError> {
        self.hit("forgot_ip", ip, self.policy.forgot_ip, OnOutage::Open)
            .await?;
        self.hit(
            "forgot_email",
            account,
            self.policy.forgot_email,
            OnOutage::Open,
        )
        .await
    }

    pub async fn verification_mail(&self, user_id: i64) -> Result<(), ApiError> {
        self.hit(
            "verify_mail",
            &user_id.to_string(),
            self.policy.verify_mail_user,
            OnOutage::Open,
        )
        .await
    }

    pub async fn password_recheck_allowed(&self, user_id: i64) -> Result<(), ApiError> {
        self.check_lock("password_recheck", &user_id.to_string())
            .await
    }

    /// Before re-checking a password for the internal API (docs/panels.md, generate-token):
    /// the lock, then the attempt counted against the user's re-check limit, as a login is, so
    /// parallel guesses cannot outrun the lock. Hand the answer to [`Self::recheck_failed`] or
    /// [`Self::recheck_succeeded`].
    pub async fn recheck_begin(&self, user_id: i64) -> Result<Option<RateDecision>, ApiError> {
        let key = user_id.to_string();
        self.check_lock("password_recheck", &key).await?;
        self.reserve(
            "password_recheck",
            &key,
            self.policy.password_recheck_failures,
        )
        .await
    }

    /// A wrong password: the attempt stays counted; the one that fills the limit locks.
    pub async fn recheck_failed(&self, user_id: i64, counted: Option<RateDecision>) {
        if let Some(d) = counted {
            self.lock_when_full(
                "password_recheck",
                &user_id.to_string(),
                self.policy.password_recheck_failures,
                d,
                None,
            )
            .await;
        }
    }

    /// The right password: the attempt is given back.
    pub async fn recheck_succeeded(&self, user_id: i64, counted: Option<RateDecision>) {
        if counted.is_some() {
            self.refund("password_recheck", &user_id.to_string()).await;
        }
    }

    pub async fn password_recheck_failed(&self, user_id: i64) {
        self.failure(
            "password_recheck",
            &user_id.to_string(),
            self.policy.password_recheck_failures,
            None,
        )
        .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_keys_ignore_case_and_spaces_and_hide_the_email() {
        assert_eq!(account_key(" A@Example.com "), account_key("a@example.com"));
        assert_ne!(account_key("a@example.com"), account_key("b@example.com"));
        assert!(!account_key("a@example.com").contains("example"));
        assert_eq!(account_key("x").len(), 32);
    }

    #[test]
    fn policy_reads_overrides() {
        let s = Settings::load(
            "auth",
            zimmer_config::Env::from_pairs([("THROTTLE_LOGIN_PAIR_FAILURES", "3/60")]),
        )
        .unwrap();
        let p = Policy::from_settings(&s).unwrap();
        assert_eq!(p.login_pair_failures.max, 3);
        assert_eq!(p.login_pair_failures.window, Duration::from_secs(60));
        assert_eq!(p.login_account_failures.max, 20);
        let bad = Settings::load(
            "auth",
            zimmer_config::Env::from_pairs([("THROTTLE_LOGIN_IP", "lots")]),
        )
        .unwrap();
        assert!(Policy::from_settings(&bad).is_err());
    }
}
