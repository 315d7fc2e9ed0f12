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
//! | `OPENAI_BASE_URL` | `https://api.openai.com/v1` | where a key test sends its chat completion (tests and `scripts/start.sh` point it at `crates/fake-openai`) |
//! | `OPENAI_TEST_MODEL` | `gpt-4o-mini` | the model a key test asks for (`max_tokens: 1`) |
//! | `OPENAI_TEST_TIMEOUT_SECS` | 10 | total timeout of a key test |
//! | `BACKUP_*`, `PG_DUMP_BIN`, `PG_RESTORE_BIN` | see [`BackupConfig`] | PostgreSQL backups |

use std::{path::PathBuf, time::Duration};

use zimmer_config::{ConfigError, Settings};

use crate::domain::backups::{PgTarget, Schedule};

#[derive(Debug, Clone)]
pub struct AdminConfig {
    pub stats_ttl: Duration,
    pub analytics_ttl: Duration,
    pub upstream_connect_timeout: Duration,
    pub upstream_timeout: Duration,
    pub watched_queues: Vec<String>,
    pub backups: BackupConfig,
    /// OpenAI's API base, without a trailing slash (docs/panels.md "OpenAI keys: per-automation
    /// limits and test").
    pub openai_base_url: String,
    pub openai_test_model: String,
    pub openai_test_timeout: Duration,
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
            backups: BackupConfig::from_settings(settings)?,
            openai_base_url: env
                .get("OPENAI_BASE_URL")
                .map(|u| u.trim().trim_end_matches('/').to_owned())
                .filter(|u| !u.is_empty())
                .unwrap_or_else(|| "https://api.openai.com/v1".to_owned()),
            openai_test_model: env
                .get("OPENAI_TEST_MODEL")
                .map(|m| m.trim().to_owned())
                .filter(|m| !m.is_empty())
                .unwrap_or_else(|| "gpt-4o-mini".to_owned()),
            openai_test_timeout: Duration::from_secs(env.parse("OPENAI_TEST_TIMEOUT_SECS", 10)?),
        })
    }
}

/// Backup settings.
///
/// | variable | default | meaning |
/// | --- | --- | --- |
/// | `BACKUP_DIR` | unset: backups off | where archives are written (a persistent volume; created 0700) |
/// | `BACKUP_VERIFY_DATABASE_URL` (or `BACKUP_SCRATCH_DATABASE_URL`) | unset | a scratch database each verification restores into; never the live one |
/// | `BACKUP_INTERVAL_HOURS` | 24 | a scheduled run when the last one started this long ago; 0 = no schedule |
/// | `BACKUP_DAILY_AT` | unset | instead, one run a day at or after this UTC time (`HH:MM`) |
/// | `BACKUP_SCHEDULE_ENABLED` | true | false: manual runs only |
/// | `BACKUP_RETENTION_DAYS` | 7 | the scheduled cleanup removes runs older than this (1-365) |
/// | `BACKUP_TRIGGER_WAIT_SECS` | 50 | how long a manual trigger waits for its run (below the gateway's 60 s) |
/// | `PG_DUMP_BIN`, `PG_RESTORE_BIN` | `pg_dump`, `pg_restore` | the client programs (of the server's major version) |
#[derive(Debug, Clone)]
pub struct BackupConfig {
    pub dir: Option<PathBuf>,
    pub live: PgTarget,
    pub scratch: Option<PgTarget>,
    /// When scheduled runs happen (`None`: no schedule).
    pub schedule: Option<Schedule>,
    pub retention_days: i64,
    pub trigger_wait: Duration,
    pub pg_dump: String,
    pub pg_restore: String,
}

impl BackupConfig {
    pub fn from_settings(settings: &Settings) -> Result<Self, ConfigError> {
        let env = &settings.env;
        let dir = env
            .get("BACKUP_DIR")
            .map(|d| d.trim().to_owned())
            .filter(|d| !d.is_empty())
            .map(PathBuf::from);
        let live = PgTarget::parse(settings.database.url.expose())
            .ok_or_else(|| ConfigError("DATABASE_URL is not a postgres:// URL".to_owned()))?;
        let scratch = match env
            .get("BACKUP_VERIFY_DATABASE_URL")
            .or_else(|| env.get("BACKUP_SCRATCH_DATABASE_URL"))
            .filter(|u| !u.trim().is_empty())
        {
            None => None,
            Some(url) => {
                let t = PgTarget::parse(url.trim()).ok_or_else(|| {
                    ConfigError("BACKUP_VERIFY_DATABASE_URL is not a postgres:// URL".to_owned())
                })?;
                // A verification drops and recreates every table of the scratch database.
                if t.same_database(&live) {
                    return Err(ConfigError(
                        "BACKUP_VERIFY_DATABASE_URL names the live database; it must be a scratch one"
                            .to_owned(),
                    ));
                }
                Some(t)
            }
        };
        let hours: u64 = env.parse("BACKUP_INTERVAL_HOURS", 24)?;
        let daily_at = match env.get("BACKUP_DAILY_AT").filter(|v| !v.trim().is_empty()) {
            None => None,
            Some(raw) => Some(
                chrono::NaiveTime::parse_from_str(raw.trim(), "%H:%M").map_err(|_| {
                    ConfigError("BACKUP_DAILY_AT must be a UTC time HH:MM".to_owned())
                })?,
            ),
        };
        let schedule = if !env.bool("BACKUP_SCHEDULE_ENABLED", true)? {
            None
        } else if let Some(at) = daily_at {
            Some(Schedule::DailyAt(at))
        } else {
            (hours > 0).then(|| Schedule::Every(Duration::from_secs(hours * 3600)))
        };
        let retention_days: i64 = env.parse("BACKUP_RETENTION_DAYS", 7)?;
        if !(1..=365).contains(&retention_days) {
            return Err(ConfigError(
                "BACKUP_RETENTION_DAYS must be between 1 and 365".to_owned(),
            ));
        }
        Ok(Self {
            dir,
            live,
            scratch,
            schedule,
            retention_days,
            trigger_wait: Duration::from_secs(env.parse("BACKUP_TRIGGER_WAIT_SECS", 50)?),
            pg_dump: env.string("PG_DUMP_BIN", "pg_dump"),
            pg_restore: env.string("PG_RESTORE_BIN", "pg_restore"),
        })
    }
}
