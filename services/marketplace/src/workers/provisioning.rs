//! The provisioning worker: tells an automation's vendor about a customer (new user
//! automation, or a changed bot token) by calling its `provision_url`, and records
//! `integration_status`.
//!
//! The work queue is the table (`integration_status` pending/failed), not a message: the row
//! and its status commit together with the request that created the work, so nothing can be
//! lost between the request and the vendor call, and a restart resumes where it stopped.
//! Requests wake the worker right after their commit; a poll covers the rest (other
//! replicas, restarts). No database connection is held during a vendor call.
//!
//! One round = up to `attempts` calls with exponential backoff; a round that fails marks the
//! row `failed`. Failed rows get new rounds with a per-row backoff (doubling up to a cap), so
//! a vendor that comes back is picked up without anyone acting. The per-row backoff lives in
//! memory (the schema has no column for it): after a restart each failed row is retried once
//! promptly, then backs off again. Several replicas share the work through a Redis lease per
//! row; without Redis two replicas may both call a vendor for the same row, which the vendor
//! contract allows (provisioning is idempotent by `user_automation_id`).

use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, Mutex},
    time::Duration,
};

use serde_json::json;
use tokio::{sync::Semaphore, time::Instant};
use zimmer_db::DbPool;
use zimmer_redis::Redis;

use super::TaskHandle;
use crate::{
    clients::vendor::{CallError, VendorCall, VendorClient},
    config::ProvisionConfig,
    domain::bot_token::BotTokenVault,
    queries::provisioning::{self, Job},
};

const BATCH: i64 = 100;

pub struct Provisioner {
    pool: DbPool,
    redis: Redis,
    vendor: VendorClient,
    vault: BotTokenVault,
    config: ProvisionConfig,
    handle: TaskHandle,
    state: Mutex<State>,
    permits: Arc<Semaphore>,
    outcomes: prometheus::IntCounterVec,
}

#[derive(Default)]
struct State {
    in_flight: HashSet<i64>,
    failed: HashMap<i64, Backoff>,
}

#[derive(Debug, Clone, Copy)]
struct Backoff {
    rounds: u32,
    next_at: Instant,
}

impl Provisioner {
    pub fn spawn(
        pool: DbPool,
        redis: Redis,
        vendor: VendorClient,
        vault: BotTokenVault,
        config: ProvisionConfig,
        outcomes: prometheus::IntCounterVec,
    ) -> TaskHandle {
        let handle = TaskHandle::new("provisioning_worker");
        let worker = Arc::new(Self {
            pool,
            redis,
            vendor,
            vault,
            permits: Arc::new(Semaphore::new(config.concurrency)),
            config,
            handle: handle.clone(),
            state: Mutex::default(),
            outcomes,
        });
        tokio::spawn(worker.run());
        handle
    }

    async fn run(self: Arc<Self>) {
        let _guard = self.handle.guard();
        loop {
            if let Err(e) = self.tick().await {
                tracing::warn!(error = format!("{e:#}"), "provisioning scan failed");
            }
            tokio::select! {
                _ = self.handle.woken() => {}
                _ = tokio::time::sleep(self.config.poll_interval) => {}
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave State inconsistent in a way that
        // matters (worst case a row is retried early), so recover from poisoning.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    async fn tick(self: &Arc<Self>) -> anyhow::Result<()> {
        let rows = {
            let mut conn = self.pool.get().await?;
            provisioning::candidates(&mut conn, BATCH).await?
        };
        for (id, status) in rows {
            {
                let mut st = self.lock();
                if st.in_flight.contains(&id) {
                    continue;
                }
                let now = Instant::now();
                if status == "failed" && st.failed.get(&id).is_some_and(|b| b.next_at > now) {
                    continue;
                }
                st.in_flight.insert(id);
            }
            let permit = self.permits.clone().acquire_owned().await?;
            let this = Arc::clone(self);
            tokio::spawn(async move {
                let _in_flight = InFlight(Arc::clone(&this), id);
                this.provision(id).await;
                drop(permit);
            });
        }
        Ok(())
    }

    fn lease_ttl(&self) -> Duration {
        let c = &self.config;
        let calls = c.timeout * c.attempts;
        let pauses = c.backoff * 2u32.saturating_pow(c.attempts.min(16));
        calls + pauses + Duration::from_secs(10)
    }

    async fn provision(&self, id: i64) {
        let lease = format!("marketplace:provision-lease:{id}");
        match self.redis.set_once(&lease, self.lease_ttl()).await {
            Ok(true) => {}
            Ok(false) => return, // another replica is on it
            Err(e) => tracing::debug!(error = %e, "no Redis lease; provisioning anyway"),
        }
        if let Err(e) = self.provision_leased(id).await {
            tracing::warn!(
                user_automation_id = id,
                error = format!("{e:#}"),
                "provisioning could not be recorded"
            );
        }
        self.redis.delete(&[&lease]).await;
    }

    async fn provision_leased(&self, id: i64) -> anyhow::Result<()> {
        let job = {
            let mut conn = self.pool.get().await?;
            provisioning::job(&mut conn, id).await?
        };
        let Some(job) = job else { return Ok(()) };
        if job.integration_status == "provisioned" {
            return Ok(());
        }
        let outcome = match (&job.provision_url, &job.token_hash) {
            // A vendor that needs no provisioning: nothing to wait for.
            (None, _) => Ok(()),
            (Some(_), None) => Err(CallError::Permanent(
                "the automation has no service token to sign with".to_owned(),
            )),
            (Some(url), Some(hash)) => match self.vault.reveal(
                id,
                job.bot_token_sealed.as_deref(),
                job.legacy_bot_token.as_deref(),
            ) {
                Ok(bot_token) => self.call_with_retries(url, hash, &job, bot_token).await,
                Err(e) => Err(CallError::Permanent(format!(
                    "the bot token cannot be opened (is BOT_TOKENS_ENCRYPTION_KEY the one it \
                     was sealed with?): {e}"
                ))),
            },
        };
        let recorded = {
            let mut conn = self.pool.get().await?;
            provisioning::record(&mut conn, &job, outcome.is_ok()).await?
        };
        self.outcomes
            .with_label_values(&[match &outcome {
                Ok(()) => "provisioned",
                Err(CallError::Refused(_)) => "refused",
                Err(_) => "failed",
            }])
            .inc();
        if let Err(CallError::Refused(reason)) = &outcome {
            // Staff pointed the automation at an address the platform may not call: the row
            // is `failed` and the vendor was not contacted; later rounds check again (the URL
            // may be fixed meanwhile).
            tracing::warn!(
                user_automation_id = id,
                automation_id = job.automation_id,
                reason = %reason,
                "provisioning refused: provision_url leads to an internal address"
            );
        }
        let mut st = self.lock();
        match &outcome {
            Ok(()) => {
                st.failed.remove(&id);
                tracing::info!(user_automation_id = id, recorded, "provisioned");
            }
            Err(reason) => {
                let rounds = st.failed.get(&id).map_or(0, |b| b.rounds) + 1;
                let pause = zimmer_config::Backoff::new(
                    self.config.retry_failed_after,
                    self.config.retry_failed_max,
                )
                .nth(rounds.saturating_sub(1));
                st.failed.insert(
                    id,
                    Backoff {
                        rounds,
                        next_at: Instant::now() + pause,
                    },
                );
                tracing::warn!(
                    user_automation_id = id,
                    rounds,
                    retry_in_ms = pause.as_millis() as u64,
                    reason = %reason,
                    "provisioning failed"
                );
            }
        }
        Ok(())
    }

    async fn call_with_retries(
        &self,
        url: &str,
        hash: &[u8],
        job: &Job,
        bot_token: Option<String>,
    ) -> Result<(), CallError> {
        let body = json!({
            "user_automation_id": job.user_automation_id,
            "user_id": job.user_id,
            "automation_id": job.automation_id,
            "bot_token": bot_token,
            "demo_tokens": job.demo_tokens,
        });
        let mut last = String::new();
        for attempt in 0..self.config.attempts {
            let call = VendorCall {
                url,
                automation_id: job.automation_id,
                token_hash: Some(hash),
                timeout: self.config.timeout,
            };
            match self.vendor.provision(call, &body).await {
                Ok(()) => return Ok(()),
                Err(e @ (CallError::Permanent(_) | CallError::Refused(_))) => return Err(e),
                Err(CallError::Retryable(e)) => {
                    tracing::info!(user_automation_id = job.user_automation_id, attempt = attempt + 1, error = %e, "provisioning call failed");
                    last = e;
                    if attempt + 1 < self.config.attempts {
                        let pause = zimmer_config::Backoff::new(self.config.backoff, Duration::MAX)
                            .nth(attempt);
                        tokio::time::sleep(pause).await;
                    }
                }
            }
        }
        Err(CallError::Retryable(last))
    }
}

/// Takes the row out of the in-flight set however the task ends.
struct InFlight(Arc<Provisioner>, i64);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.lock().in_flight.remove(&self.1);
        // The row may have become pending again while we were busy with it.
        self.0.handle.wake();
    }
}
