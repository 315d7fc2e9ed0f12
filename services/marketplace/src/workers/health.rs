//! The health checker: polls each active automation's `health_check_url`, records
//! `health_status` and `last_health_at`, and on a change emits `automation.health_changed`
//! (outbox, same transaction) and invalidates the catalogue cache (the listing shows it).

use std::time::Duration;

use chrono::{DateTime, Utc};
use diesel_async::AsyncConnection;
use futures_util::StreamExt;
use serde::Serialize;
use zimmer_db::DbPool;
use zimmer_events::contracts::AutomationHealthChanged;
use zimmer_http::ApiError;

use super::TaskHandle;
use crate::{
    PRODUCER,
    clients::vendor::{Health, VendorCall, VendorClient},
    config::HealthConfig,
    queries::automations,
    queries::cache::CatalogueCache,
};

/// Checks running at once.
const PARALLEL_CHECKS: usize = 8;

#[derive(Clone)]
pub struct HealthChecker {
    pub pool: DbPool,
    pub vendor: VendorClient,
    pub cache: CatalogueCache,
    pub config: HealthConfig,
}

#[derive(Debug, Serialize)]
pub struct HealthReport {
    pub automation_id: i64,
    pub health_status: String,
    pub previous: String,
    pub changed: bool,
    pub checked_at: DateTime<Utc>,
    /// Why the URL was not called (it leads to an internal address); recorded as `down`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refused: Option<String>,
}

impl HealthChecker {
    pub fn spawn(self) -> TaskHandle {
        let handle = TaskHandle::new("health_checker");
        let h = handle.clone();
        tokio::spawn(async move {
            let _guard = h.guard();
            loop {
                if let Err(e) = self.check_all().await {
                    tracing::warn!(error = format!("{e:#}"), "health round failed");
                }
                tokio::time::sleep(self.config.interval).await;
            }
        });
        handle
    }

    async fn check_all(&self) -> anyhow::Result<()> {
        let targets = {
            let mut conn = self.pool.get().await?;
            automations::health_targets(&mut conn).await?
        };
        futures_util::stream::iter(targets)
            .for_each_concurrent(PARALLEL_CHECKS, |t| async move {
                if let Err(e) = self
                    .check(t.id, &t.health_check_url, t.token_hash.as_deref())
                    .await
                {
                    tracing::warn!(automation_id = t.id, error = %e, "health check not recorded");
                }
            })
            .await;
        Ok(())
    }

    /// One check now (also the admin's "check now"). `Ok(None)`: no such automation.
    pub async fn check_one(&self, id: i64) -> Result<Option<HealthReport>, ApiError> {
        let target = {
            let mut conn = self.pool.get().await?;
            automations::health_target(&mut conn, id).await?
        };
        let Some((url, hash)) = target else {
            return Ok(None);
        };
        let Some(url) = url else {
            return Err(ApiError::conflict(
                "no_health_check_url",
                "This automation has no health check URL",
            ));
        };
        self.check(id, &url, hash.as_deref()).await
    }

    async fn check(
        &self,
        id: i64,
        url: &str,
        hash: Option<&[u8]>,
    ) -> Result<Option<HealthReport>, ApiError> {
        let timeout = self.config.timeout.max(Duration::from_millis(1));
        let call = VendorCall {
            url,
            automation_id: id,
            token_hash: hash,
            timeout,
        };
        let (status, refused) = match self.vendor.health(call).await {
            Ok(health) => (health.as_str(), None),
            Err(refused) => {
                tracing::warn!(
                    automation_id = id,
                    reason = %refused,
                    "health check refused: health_check_url leads to an internal address"
                );
                (Health::Down.as_str(), Some(refused.0))
            }
        };
        let mut conn = self.pool.get().await?;
        let previous = conn
            .transaction(async |conn| {
                let previous = automations::record_health(conn, id, status).await?;
                if let Some(prev) = previous.as_deref()
                    && prev != status
                {
                    zimmer_events::enqueue_event(
                        conn,
                        PRODUCER,
                        &AutomationHealthChanged {
                            automation_id: id,
                            from: prev.to_owned(),
                            to: status.to_owned(),
                        },
                    )
                    .await?;
                }
                Ok::<_, ApiError>(previous)
            })
            .await?;
        drop(conn);
        let Some(previous) = previous else {
            return Ok(None);
        };
        let changed = previous != status;
        if changed {
            tracing::info!(automation_id = id, from = %previous, to = status, "automation health changed");
            self.cache.invalidate().await;
        }
        Ok(Some(HealthReport {
            automation_id: id,
            health_status: status.to_owned(),
            previous,
            changed,
            checked_at: Utc::now(),
            refused,
        }))
    }
}
