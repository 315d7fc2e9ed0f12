//! Admin's own settings (environment variables, read through `settings.env`).
//!
//! | variable | default | meaning |
//! | --- | --- | --- |
//! | `OPENAI_KEYS_ENCRYPTION_KEY` | a fixed dev key (refused in production) | base64 of the 32-byte AES-256-GCM key for OpenAI keys at rest |
//! | `ADMIN_STATS_CACHE_SECS` | 30 | how long dashboard stats are cached in Redis |
//! | `ADMIN_ANALYTICS_CACHE_SECS` | 60 | how long an analytics series is cached |
//! | `ADMIN_UPSTREAM_CONNECT_TIMEOUT_MS` | 2000 | connect timeout of calls to other services |
//! | `ADMIN_UPSTREAM_TIMEOUT_MS` | 15000 | total timeout of calls to other services (a health check now waits for the vendor) |
//! | `ADMIN_WATCHED_QUEUES` | `support.notifications,marketplace.payments` | consumer queues whose depth system status reports (with their `.retry` and `.dlq`) |
//! | `BACKUP_*`, `PG_DUMP_BIN`, `PG_RESTORE_BIN` | see [`crate::backups::BackupConfig`] | PostgreSQL backups |

use std::time::Duration;

use zimmer_config::{ConfigError, Settings};

#[derive(Debug, Clone)]
pub struct AdminConfig {
    pub stats_ttl: Duration,
    pub analytics_ttl: Duration,
    pub upstream_connect_timeout: Duration,
    pub upstream_timeout: Duration,
    pub watched_queues: Vec<String>,
    pub backups: crate::backups::BackupConfig,
}

impl AdminConfig {
    pub fn from_settings(settings: &Settings) -> Result<Self, ConfigError> {
        let env = &settings.env;
        Ok(Self {
            stats_ttl: Duration::from_secs(env.parse("ADMIN_STATS_CACHE_SECS", 30)?),
            analytics_ttl: Duration::from_secs(env.parse("ADMIN_ANALYTICS_CACHE_SECS", 60)?),
            upstream_connect_timeout: Duration::from_millis(
                env.parse("ADMIN_UPSTREAM_CONNECT_TIMEOUT_MS", 2000)?,
            ),
            upstream_timeout: Duration::from_millis(
                env.parse("ADMIN_UPSTREAM_TIMEOUT_MS", 15_000)?,
            ),
            watched_queues: env.list(
                "ADMIN_WATCHED_QUEUES",
                "support.notifications,marketplace.payments",
            ),
            backups: crate::backups::BackupConfig::from_settings(settings)?,
        })
    }
}
