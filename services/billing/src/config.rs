//! Billing's own settings (environment variables, read through `settings.env`).
//!
//! | variable | default | meaning |
//! | --- | --- | --- |
//! | `ZARINPAL_BASE_URL` | `http://127.0.0.1:8091` (the local fake) | live `https://payment.zarinpal.com`, sandbox `https://sandbox.zarinpal.com` |
//! | `ZARINPAL_MERCHANT_ID` | a fixed dev UUID | the 36-character merchant id (required in production) |
//! | `ZARINPAL_CALLBACK_URL` | `http://127.0.0.1:8080/api/payments/zarinpal/callback` | the public callback address (through the gateway) |
//! | `ZARINPAL_CONNECT_TIMEOUT_MS` | 3000 | connect timeout of every gateway call |
//! | `ZARINPAL_TIMEOUT_MS` | 10000 | total timeout of every gateway call |
//! | `PAYMENT_MAX_TOKENS` | 100000 | most tokens in one purchase |
//! | `RECONCILE_ENABLED` | true | run the reconciliation job in this process |
//! | `RECONCILE_INTERVAL_SECS` | 60 | how often the job runs |
//! | `RECONCILE_MIN_AGE_SECS` | 300 | a pending payment younger than this is left to its callback |
//! | `RECONCILE_RETRY_BASE_SECS` | 60 | first back-off after an inconclusive verify (doubles, capped at 1 h) |
//! | `RECONCILE_BATCH` | 50 | payments claimed per round |
//! | `PAYMENT_EXPIRE_AFTER_SECS` | 7200 | an unpaid session older than this is expired |
//! | `DISCOUNT_VALIDATE_LIMIT` | 20 | discount code checks allowed per user and, separately, per client IP in one window (0: no limit) |
//! | `DISCOUNT_VALIDATE_WINDOW_SECS` | 600 | that window |

use std::time::Duration;

use zimmer_config::{ConfigError, Secret, Settings};

use crate::clients::zarinpal::{LIVE_HOSTS, ZarinpalClient};

/// Any well-formed UUID passes the sandbox and the fake; never valid in production.
pub const DEV_MERCHANT_ID: &str = "00000000-0000-4000-8000-000000000000";
pub const DEFAULT_FAKE_BASE_URL: &str = "http://127.0.0.1:8091";

#[derive(Debug, Clone)]
pub struct BillingConfig {
    pub zarinpal_base_url: String,
    pub merchant_id: Secret,
    pub callback_url: String,
    pub connect_timeout: Duration,
    pub total_timeout: Duration,
    pub max_tokens: i64,
    pub reconcile_enabled: bool,
    pub reconcile_interval: Duration,
    pub reconcile_min_age: Duration,
    pub retry_base: Duration,
    pub reconcile_batch: i64,
    pub expire_after: Duration,
    /// `POST /api/discounts/validate` per user and per IP, per window (codes must not be
    /// enumerable by guessing); 0 turns the limit off.
    pub validate_limit: u64,
    pub validate_window: Duration,
    /// `POST /api/payments/zarinpal/init` per user per minute (each opens a gateway session).
    pub init_rate_per_min: u64,
}

impl BillingConfig {
    pub fn from_settings(settings: &Settings) -> Result<Self, ConfigError> {
        let env = &settings.env;
        let secs = |key: &str, default: u64| -> Result<Duration, ConfigError> {
            env.parse(key, default).map(Duration::from_secs)
        };
        let millis = |key: &str, default: u64| -> Result<Duration, ConfigError> {
            env.parse(key, default).map(Duration::from_millis)
        };
        let config = Self {
            zarinpal_base_url: env
                .string("ZARINPAL_BASE_URL", DEFAULT_FAKE_BASE_URL)
                .trim()
                .trim_end_matches('/')
                .to_owned(),
            merchant_id: Secret::new(env.string("ZARINPAL_MERCHANT_ID", DEV_MERCHANT_ID).trim()),
            callback_url: env.string(
                "ZARINPAL_CALLBACK_URL",
                "http://127.0.0.1:8080/api/payments/zarinpal/callback",
            ),
            connect_timeout: millis("ZARINPAL_CONNECT_TIMEOUT_MS", 3_000)?,
            total_timeout: millis("ZARINPAL_TIMEOUT_MS", 10_000)?,
            max_tokens: env.parse("PAYMENT_MAX_TOKENS", 100_000)?,
            reconcile_enabled: env.bool("RECONCILE_ENABLED", true)?,
            reconcile_interval: secs("RECONCILE_INTERVAL_SECS", 60)?,
            reconcile_min_age: secs("RECONCILE_MIN_AGE_SECS", 300)?,
            retry_base: secs("RECONCILE_RETRY_BASE_SECS", 60)?,
            reconcile_batch: env.parse("RECONCILE_BATCH", 50)?,
            expire_after: secs("PAYMENT_EXPIRE_AFTER_SECS", 7_200)?,
            validate_limit: env.parse("DISCOUNT_VALIDATE_LIMIT", 20)?,
            validate_window: secs("DISCOUNT_VALIDATE_WINDOW_SECS", 600)?,
            // Read per request before, where a bad value fell back to the default; kept so.
            init_rate_per_min: env.parse("PAYMENT_INIT_RATE_PER_MIN", 20).unwrap_or(20),
        };
        config.check(settings.is_production())?;
        Ok(config)
    }

    fn check(&self, production: bool) -> Result<(), ConfigError> {
        let err = |m: &str| Err(ConfigError(m.to_owned()));
        if !is_uuid(self.merchant_id.expose()) {
            return err("ZARINPAL_MERCHANT_ID must be a 36-character UUID");
        }
        if !(self.zarinpal_base_url.starts_with("http://")
            || self.zarinpal_base_url.starts_with("https://"))
        {
            return err("ZARINPAL_BASE_URL must be an http(s) URL");
        }
        if !(self.callback_url.starts_with("http://") || self.callback_url.starts_with("https://"))
        {
            return err("ZARINPAL_CALLBACK_URL must be an http(s) URL");
        }
        if self.max_tokens < 1 {
            return err("PAYMENT_MAX_TOKENS must be at least 1");
        }
        if self.reconcile_batch < 1 || self.reconcile_interval.is_zero() {
            return err("RECONCILE_BATCH and RECONCILE_INTERVAL_SECS must be positive");
        }
        if self.validate_window.is_zero() {
            return err("DISCOUNT_VALIDATE_WINDOW_SECS must be positive");
        }
        if self.total_timeout.is_zero() || self.connect_timeout.is_zero() {
            return err("ZARINPAL timeouts must be positive");
        }
        if production {
            // Production talks to the real gateway only: a sandbox or fake would "pay" for free.
            if !LIVE_HOSTS.contains(&self.zarinpal_base_url.as_str()) {
                return err(
                    "ZARINPAL_BASE_URL must be the live gateway in production (no sandbox or fake)",
                );
            }
            if self.merchant_id.expose() == DEV_MERCHANT_ID {
                return err("ZARINPAL_MERCHANT_ID must be set in production");
            }
            if !self.callback_url.starts_with("https://") {
                return err("ZARINPAL_CALLBACK_URL must be https in production");
            }
        }
        Ok(())
    }

    pub fn client(&self) -> anyhow::Result<ZarinpalClient> {
        ZarinpalClient::new(
            &self.zarinpal_base_url,
            self.merchant_id.clone(),
            self.connect_timeout,
            self.total_timeout,
        )
    }

    /// How long a claim (`verifying`) is honoured before the reconciler may take the payment
    /// over: a verify and an inquiry, each with its full timeout, plus a margin.
    pub fn claim_lease(&self) -> Duration {
        self.total_timeout * 2 + self.connect_timeout + Duration::from_secs(10)
    }

    /// The wait before looking again at a payment after `attempts` inconclusive verifies.
    pub fn backoff(&self, attempts: i32) -> Duration {
        let retry = u32::try_from(attempts.max(1) - 1).unwrap_or(0);
        zimmer_config::Backoff::new(self.retry_base, Duration::from_secs(3600)).nth(retry)
    }
}

pub fn is_uuid(s: &str) -> bool {
    s.len() == 36
        && s.char_indices().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => c == '-',
            _ => c.is_ascii_hexdigit(),
        })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use zimmer_config::Env;

    use super::*;

    fn load(pairs: &[(&str, &str)]) -> Result<BillingConfig, ConfigError> {
        let mut env = Env::from_pairs([("INTERNAL_API_TOKEN", "prod-token-xyz")]);
        for (k, v) in pairs {
            env.set(*k, *v);
        }
        let settings = Settings::load("billing", env).unwrap();
        BillingConfig::from_settings(&settings)
    }

    #[test]
    fn production_refuses_sandbox_and_fake() {
        let live = [
            ("APP_ENV", "production"),
            (
                "ZARINPAL_MERCHANT_ID",
                "1344b5d4-0048-11e8-94db-005056a205be",
            ),
            (
                "ZARINPAL_CALLBACK_URL",
                "https://zimmer.example/api/payments/zarinpal/callback",
            ),
        ];
        let with = |base: &str| {
            let mut p = live.to_vec();
            p.push(("ZARINPAL_BASE_URL", base));
            load(&p)
        };
        assert!(with("https://payment.zarinpal.com").is_ok());
        assert!(with("https://payment.zarinpal.com/").is_ok());
        assert!(with("https://sandbox.zarinpal.com").is_err());
        assert!(with("http://127.0.0.1:8091").is_err());
        // Production without a merchant id of its own.
        assert!(
            load(&[
                ("APP_ENV", "production"),
                ("ZARINPAL_BASE_URL", "https://payment.zarinpal.com"),
                (
                    "ZARINPAL_CALLBACK_URL",
                    "https://zimmer.example/api/payments/zarinpal/callback"
                ),
            ])
            .is_err()
        );
        // Development defaults work.
        assert!(load(&[]).is_ok());
        assert!(load(&[("ZARINPAL_MERCHANT_ID", "not-a-uuid")]).is_err());
    }

    #[test]
    fn backoff_doubles_and_is_capped() {
        let c = load(&[("RECONCILE_RETRY_BASE_SECS", "10")]).unwrap();
        assert_eq!(c.backoff(1), Duration::from_secs(10));
        assert_eq!(c.backoff(3), Duration::from_secs(40));
        assert_eq!(c.backoff(100), Duration::from_secs(3600));
    }
}
