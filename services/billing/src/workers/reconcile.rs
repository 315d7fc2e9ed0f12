//! The reconciliation job: nothing stays pending forever after a lost callback or a gateway
//! timeout, and a payer who paid a payment we had closed is still credited.
//!
//! Every `RECONCILE_INTERVAL_SECS` it
//! 1. expires pending payments that never got an authority (nobody can pay them);
//! 2. claims due payments (`pending` older than `RECONCILE_MIN_AGE_SECS` or past their
//!    back-off, and `verifying` claims whose lease ran out) with `FOR UPDATE SKIP LOCKED`, and
//!    verifies each as the callback would;
//! 3. walks `unVerified.json` (paid, never verified) and verifies those of ours, including
//!    canceled, expired and failed ones.
//!
//! Every step is a conditional claim, so two replicas running the job never settle a payment
//! twice; a round that fails is logged and the next one starts over.

use std::sync::{
    Arc,
    atomic::{AtomicBool, Ordering},
};

use futures_util::StreamExt;
use zimmer_db::models::billing::Payment;
use zimmer_http::{ApiError, Check};

use crate::{clients::zarinpal::Answer, ops::settle::Billing, queries};

/// How many verifies of one round run at once.
const CONCURRENCY: usize = 4;

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RoundReport {
    pub expired_unrequested: usize,
    pub checked: usize,
    pub succeeded: usize,
    pub unverified_listed: usize,
}

#[derive(Clone)]
pub struct ReconcilerHandle {
    running: Arc<AtomicBool>,
}

impl ReconcilerHandle {
    pub fn is_running(&self) -> bool {
        self.running.load(Ordering::SeqCst)
    }

    /// For `/healthz`: fails when the job's loop has ended.
    pub fn liveness_check(&self) -> Check {
        let running = self.running.clone();
        Check::flag("reconciler", "reconciliation job stopped", move || {
            running.load(Ordering::SeqCst)
        })
    }
}

struct RunningGuard(Arc<AtomicBool>);

impl Drop for RunningGuard {
    fn drop(&mut self) {
        self.0.store(false, Ordering::SeqCst);
        if std::thread::panicking() {
            tracing::error!("reconciliation job panicked");
        }
    }
}

/// Starts the job on the current tokio runtime.
pub fn spawn(billing: Billing) -> ReconcilerHandle {
    let running = Arc::new(AtomicBool::new(true));
    let guard = RunningGuard(running.clone());
    tokio::spawn(async move {
        let _guard = guard;
        let mut tick = tokio::time::interval(billing.config.reconcile_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tracing::info!(
            interval = ?billing.config.reconcile_interval,
            min_age = ?billing.config.reconcile_min_age,
            "reconciliation job started"
        );
        loop {
            tick.tick().await;
            match billing.reconcile_round().await {
                Ok(report) => {
                    billing
                        .metrics
                        .reconcile_runs
                        .with_label_values(&["ok"])
                        .inc();
                    if report != RoundReport::default() {
                        tracing::info!(?report, "reconciliation round");
                    }
                }
                Err(e) => {
                    billing
                        .metrics
                        .reconcile_runs
                        .with_label_values(&["error"])
                        .inc();
                    tracing::warn!(error = %e, "reconciliation round failed");
                }
            }
        }
    });
    ReconcilerHandle { running }
}

impl Billing {
    /// One round of the job (public so an operator command or a test can run one now).
    pub async fn reconcile_round(&self) -> Result<RoundReport, ApiError> {
        let mut report = RoundReport::default();
        let lease = self.config.claim_lease();

        // 1. Never requested: expire after the claim lease at least, so an init whose gateway
        //    request is still in flight is not expired under it.
        let (expired, due) = {
            let mut conn = self.pool.get().await?;
            let expired =
                queries::expire_unrequested(&mut conn, self.config.reconcile_min_age.max(lease))
                    .await?;
            self.refresh_gauges(&mut conn).await;
            let due = queries::claim_due(&mut conn, self.config.reconcile_batch, lease).await?;
            (expired, due)
        };
        report.expired_unrequested = expired.len();

        // 2. Due payments, verified without a connection held.
        let (checked, succeeded) = self.verify_all(due).await;
        report.checked += checked;
        report.succeeded += succeeded;

        // 3. Paid but never verified, according to the gateway.
        if let Answer::Ok(list) = self.zarinpal.unverified().await {
            report.unverified_listed = list.len();
            let authorities: Vec<String> = list.into_iter().map(|i| i.authority).collect();
            if !authorities.is_empty() {
                let claimed = {
                    let mut conn = self.pool.get().await?;
                    queries::claim_unverified(
                        &mut conn,
                        &authorities,
                        self.config.reconcile_min_age,
                        lease,
                    )
                    .await?
                };
                let (checked, succeeded) = self.verify_all(claimed).await;
                report.checked += checked;
                report.succeeded += succeeded;
            }
        }
        Ok(report)
    }

    async fn verify_all(&self, claimed: Vec<Payment>) -> (usize, usize) {
        let results: Vec<Result<Payment, ApiError>> = futures_util::stream::iter(claimed)
            .map(|p| self.verify_claimed(p))
            .buffer_unordered(CONCURRENCY)
            .collect()
            .await;
        let mut succeeded = 0;
        for r in &results {
            match r {
                Ok(p) if p.status == "succeeded" => succeeded += 1,
                Ok(_) => {}
                // The claim's lease lets a later round retry it.
                Err(e) => tracing::warn!(error = %e, "reconciling a payment failed"),
            }
        }
        (results.len(), succeeded)
    }

    async fn refresh_gauges(&self, conn: &mut zimmer_db::AsyncPgConnection) {
        if let Ok(counts) = queries::unfinished_counts(conn).await {
            for status in ["pending", "verifying", "needs_review"] {
                let n = counts
                    .iter()
                    .find(|(s, _)| s == status)
                    .map(|(_, n)| *n)
                    .unwrap_or(0);
                self.metrics.unfinished.with_label_values(&[status]).set(n);
            }
        }
    }
}
