//! Settings of the marketplace alone (read from `Settings::env`, defaults for local work).

use std::time::Duration;

use zimmer_config::{ConfigError, Env, Settings};

use crate::clients::outbound::OutboundPolicy;

#[derive(Debug, Clone)]
pub struct MarketConfig {
    /// `tokens.low` fires when the spendable balance (demo + paid) falls to this or below.
    pub low_tokens_threshold: i64,
    /// Largest `units` one consume call may spend; more is refused as absurd (422).
    pub consume_max_units: i64,
    /// Largest number of consume calls applied in one transaction (`CONSUME_BATCH_MAX`).
    pub consume_batch_max: usize,
    /// Tasks writing consume batches (`CONSUME_WRITERS`): while one waits for its commit,
    /// the next batch is being decided.
    pub consume_writers: usize,
    /// Largest single admin adjustment, either way.
    pub adjust_max_delta: i64,
    /// Bound on how stale a cached catalogue page can be if an invalidation is lost.
    pub catalogue_ttl: Duration,
    /// How long this process serves a catalogue answer from memory
    /// (`CATALOGUE_LOCAL_TTL_MS`, 1000; 0 = off): the bound for another instance's change.
    pub catalogue_local_ttl: Duration,
    /// How long this process serves a customer's list from memory
    /// (`USER_AUTOMATIONS_CACHE_TTL_MS`, 1000; 0 = off): the bound for a balance or status
    /// changed by another instance or a background job (`local_cache`).
    pub mine_cache_ttl: Duration,
    pub provision: ProvisionConfig,
    pub health: HealthConfig,
    pub kb: KbConfig,
    /// Which addresses vendor URLs may lead to (`VENDOR_URL_ALLOW_PRIVATE`,
    /// `VENDOR_URL_ALLOWLIST`; see `outbound`).
    pub outbound: OutboundPolicy,
}

#[derive(Debug, Clone)]
pub struct ProvisionConfig {
    /// One HTTP call to a vendor's provision_url.
    pub timeout: Duration,
    /// Calls per round before the row is marked `failed`.
    pub attempts: u32,
    /// Pause before the second call of a round; doubles for each later one.
    pub backoff: Duration,
    /// Fallback scan of the table for rows to provision (requests also wake the worker).
    pub poll_interval: Duration,
    /// First pause before a `failed` row gets a new round; doubles per failed round ...
    pub retry_failed_after: Duration,
    /// ... up to this.
    pub retry_failed_max: Duration,
    /// Vendor calls in flight at once.
    pub concurrency: usize,
}

/// KB monitoring calls to vendors (docs/panels.md "KB monitoring: status, reset, history").
#[derive(Debug, Clone)]
pub struct KbConfig {
    /// One KB status or reset call (`KB_CALL_TIMEOUT_MS`, 10 s).
    pub call_timeout: Duration,
    /// The whole status request of an automation (`KB_STATUS_DEADLINE_MS`, 25 s): customers
    /// not reached by then are reported as not checked.
    pub status_deadline: Duration,
    /// Status calls in flight at once (`KB_CONCURRENCY`, 8).
    pub concurrency: usize,
}

#[derive(Debug, Clone)]
pub struct HealthConfig {
    pub enabled: bool,
    pub interval: Duration,
    pub timeout: Duration,
}

fn millis(env: &Env, key: &str, default: u64) -> Result<Duration, ConfigError> {
    Ok(Duration::from_millis(env.parse(key, default)?))
}

impl MarketConfig {
    pub fn from_settings(settings: &Settings) -> Result<Self, ConfigError> {
        let env = &settings.env;
        let config = Self {
            low_tokens_threshold: env.parse("LOW_TOKENS_THRESHOLD", 5)?,
            consume_max_units: env.parse("CONSUME_MAX_UNITS", 10_000)?,
            consume_batch_max: env.parse("CONSUME_BATCH_MAX", 256usize)?.clamp(1, 4096),
            consume_writers: env.parse("CONSUME_WRITERS", 2usize)?.clamp(1, 16),
            adjust_max_delta: env.parse("ADJUST_MAX_DELTA", 1_000_000)?,
            catalogue_ttl: Duration::from_secs(env.parse("CATALOGUE_CACHE_TTL_SECS", 60)?),
            catalogue_local_ttl: millis(env, "CATALOGUE_LOCAL_TTL_MS", 1_000)?,
            mine_cache_ttl: millis(env, "USER_AUTOMATIONS_CACHE_TTL_MS", 1_000)?,
            provision: ProvisionConfig {
                timeout: millis(env, "PROVISION_TIMEOUT_MS", 5_000)?,
                attempts: env.parse("PROVISION_ATTEMPTS", 4u32)?.max(1),
                backoff: millis(env, "PROVISION_BACKOFF_MS", 500)?,
                poll_interval: millis(env, "PROVISION_POLL_MS", 2_000)?
                    .max(Duration::from_millis(10)),
                retry_failed_after: millis(env, "PROVISION_RETRY_FAILED_MS", 5 * 60 * 1000)?,
                retry_failed_max: millis(env, "PROVISION_RETRY_FAILED_MAX_MS", 60 * 60 * 1000)?,
                concurrency: env.parse("PROVISION_CONCURRENCY", 4usize)?.max(1),
            },
            health: HealthConfig {
                enabled: env.bool("HEALTH_CHECK_ENABLED", true)?,
                interval: millis(env, "HEALTH_CHECK_INTERVAL_MS", 60_000)?
                    .max(Duration::from_millis(10)),
                timeout: millis(env, "HEALTH_CHECK_TIMEOUT_MS", 3_000)?,
            },
            kb: KbConfig {
                call_timeout: millis(env, "KB_CALL_TIMEOUT_MS", 10_000)?
                    .max(Duration::from_millis(1)),
                status_deadline: millis(env, "KB_STATUS_DEADLINE_MS", 25_000)?
                    .max(Duration::from_millis(1)),
                concurrency: env.parse("KB_CONCURRENCY", 8usize)?.max(1),
            },
            outbound: OutboundPolicy::from_env(env, settings.is_production())?,
        };
        if config.consume_max_units < 1 || config.low_tokens_threshold < 0 {
            return Err(ConfigError(
                "CONSUME_MAX_UNITS must be >= 1 and LOW_TOKENS_THRESHOLD >= 0".into(),
            ));
        }
        Ok(config)
    }
}
