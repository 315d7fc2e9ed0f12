//! Settling a payment with the gateway, exactly once, however many callers try at the same time.
//!
//! 1. **Claim**: one conditional `UPDATE … SET status = 'verifying' … RETURNING` (`queries::claims`).
//!    Exactly one caller gets the row; it also gets a fencing number (`verify_attempts`).
//! 2. **Verify** with the stored amount, holding no database connection (and no transaction).
//!    After -51, `inquiry.json` tells "still at the bank" from "failed".
//! 3. **Record** the outcome in one transaction: success sets status, `ref_id`, masked card,
//!    confirms the discount redemption and writes `payment.verified` to the outbox together;
//!    anything else is fenced by the claim's number, so a claimer that lost its lease changes
//!    nothing. Success itself needs no fence: it applies once, to a payment not yet succeeded.
//!
//! A claim that dies with its process (crash mid-verify) is not stuck: the claim carries a lease
//! (`next_check_at`), after which the reconciler may claim the payment again.

use std::{sync::Arc, time::Duration};

use chrono::Utc;
use diesel_async::{AsyncConnection, AsyncPgConnection};
use prometheus::{IntCounterVec, IntGaugeVec, Opts};
use zimmer_db::{
    DbPool,
    models::billing::{Payment, payment_status as ps},
};
use zimmer_events::contracts::{PaymentFailed, PaymentVerified, RefId};
use zimmer_http::ApiError;

use crate::{
    clients::zarinpal::{Answer, InquiryStatus, VerifyOutcome, ZarinpalClient, masked_card},
    config::BillingConfig,
    queries::{self, RedemptionOutcome},
};

/// A callback re-verifies a payment checked less than this long ago only through the
/// reconciler: replaying the callback URL cannot turn into a stream of gateway calls.
pub const CALLBACK_RECHECK_INTERVAL: Duration = Duration::from_secs(5);

/// The producer name on billing's outbox rows.
pub const PRODUCER: &str = "billing";

/// `payment.verified` of a succeeded payment: the marketplace credits `tokens` once per
/// `payment_id`.
pub fn verified_event(p: &Payment) -> PaymentVerified {
    PaymentVerified {
        payment_id: p.id,
        user_id: p.user_id,
        automation_id: p.automation_id,
        user_automation_id: p.user_automation_id,
        tokens: p.tokens_purchased,
        amount: p.amount,
        ref_id: p.ref_id.map(RefId::Number),
    }
}

/// Writes `payment.verified` in the caller's transaction.
pub async fn enqueue_verified(conn: &mut AsyncPgConnection, p: &Payment) -> Result<(), ApiError> {
    zimmer_events::enqueue_event(conn, PRODUCER, &verified_event(p)).await?;
    Ok(())
}

/// What billing needs to settle payments: shared by the HTTP handlers and the reconciler.
#[derive(Clone)]
pub struct Billing {
    pub pool: DbPool,
    pub zarinpal: ZarinpalClient,
    pub config: Arc<BillingConfig>,
    pub metrics: BillingMetrics,
}

#[derive(Clone)]
pub struct BillingMetrics {
    /// Settled outcomes: succeeded, failed, expired, canceled, needs_review, retry, unchanged.
    pub outcomes: IntCounterVec,
    /// Unfinished payments by status, refreshed by the reconciler.
    pub unfinished: IntGaugeVec,
    pub reconcile_runs: IntCounterVec,
}

impl BillingMetrics {
    pub fn register(registry: &prometheus::Registry) -> anyhow::Result<Self> {
        let outcomes = IntCounterVec::new(
            Opts::new(
                "billing_payment_outcomes_total",
                "Payment settlements by outcome",
            ),
            &["outcome"],
        )?;
        let unfinished = IntGaugeVec::new(
            Opts::new(
                "billing_payments_unfinished",
                "Payments pending, verifying or needing review",
            ),
            &["status"],
        )?;
        let reconcile_runs = IntCounterVec::new(
            Opts::new(
                "billing_reconcile_runs_total",
                "Reconciliation rounds by result",
            ),
            &["result"],
        )?;
        let _ = registry.register(Box::new(outcomes.clone()));
        let _ = registry.register(Box::new(unfinished.clone()));
        let _ = registry.register(Box::new(reconcile_runs.clone()));
        Ok(Self {
            outcomes,
            unfinished,
            reconcile_runs,
        })
    }

    fn count(&self, outcome: &str) {
        self.outcomes.with_label_values(&[outcome]).inc();
    }
}

/// What to do with a claimed payment once the gateway has answered.
#[derive(Debug)]
enum Decision {
    Succeed {
        code: i64,
        ref_id: Option<i64>,
        card_pan: Option<String>,
    },
    /// A final state other than success.
    Close {
        status: &'static str,
        reason: String,
        /// `payment.failed` (support tells the customer).
        notify: bool,
    },
    /// Nothing learned: back to pending, looked at again after a back-off.
    Retry { reason: String },
    /// A closed payment re-checked (late callback, unVerified walk) that is still not paid:
    /// it goes back to what it was.
    Restore { status: String, reason: String },
    /// -50: a person must look (never credit automatically).
    Review { reason: String },
}

/// The state a claim was taken from (kept in `meta.claimed_from` by the claim).
fn claimed_from(p: &Payment) -> String {
    p.meta
        .get("claimed_from")
        .and_then(|v| v.as_str())
        .unwrap_or(ps::PENDING)
        .to_owned()
}

fn is_closed(status: &str) -> bool {
    matches!(status, ps::CANCELED | ps::EXPIRED | ps::FAILED)
}

impl Billing {
    /// Claims the payment of `authority` if it is in one of `from`, for a callback (the
    /// connection goes back to the pool before the gateway is called).
    async fn claim_for_callback(
        &self,
        authority: &str,
        from: &[&str],
    ) -> Result<Option<Payment>, ApiError> {
        let mut conn = self.pool.get().await?;
        let claimed = queries::claim_by_authority(
            &mut conn,
            authority,
            from,
            self.config.claim_lease(),
            CALLBACK_RECHECK_INTERVAL,
        )
        .await?;
        Ok(claimed)
    }

    /// Claims the payment of `authority` (a callback with `Status=OK`) and settles it. A
    /// caller that loses the claim waits briefly for the winner and answers the state then.
    /// None: no payment has this authority.
    pub async fn settle_by_authority(&self, authority: &str) -> Result<Option<Payment>, ApiError> {
        // A payer whose payment was canceled (a forged or early NOK) or expired may still
        // have paid: only the verify knows.
        let claimed = self
            .claim_for_callback(authority, &[ps::PENDING, ps::CANCELED, ps::EXPIRED])
            .await?;
        match claimed {
            Some(p) => self.verify_claimed(p).await.map(Some),
            None => self.await_settled(authority).await,
        }
    }

    /// `Status=NOK` for `authority`. The redirect is only the payer's browser talking (anyone
    /// can forge it), so the payment is canceled, and its discount reservation released, only
    /// when the gateway's inquiry says the session can no longer be paid. While it is still at
    /// the bank (or the gateway cannot be asked) it stays pending and the reconciler looks
    /// again; if the gateway says it was paid after all, it is verified now.
    /// None: no payment has this authority.
    pub async fn cancel_by_authority(&self, authority: &str) -> Result<Option<Payment>, ApiError> {
        let claimed = self.claim_for_callback(authority, &[ps::PENDING]).await?;
        let Some(claimed) = claimed else {
            // Settled, closed, being checked, or checked a moment ago: NOK changes nothing.
            return self.await_settled(authority).await;
        };
        let inquiry = self.zarinpal.inquiry(authority).await;
        let decision = match inquiry {
            Answer::Ok(InquiryStatus::Paid | InquiryStatus::Verified) => {
                tracing::info!(
                    payment_id = claimed.id,
                    "NOK callback for a session the gateway reports paid; verifying"
                );
                return self.verify_claimed(claimed).await.map(Some);
            }
            Answer::Ok(InquiryStatus::Failed | InquiryStatus::Reversed) => Decision::Close {
                status: ps::CANCELED,
                reason: "canceled_by_payer".into(),
                notify: false,
            },
            // Not ours, invalid or unknown at the gateway: nobody can pay it.
            Answer::Refused(e) if matches!(e.code, -55..=-53) => Decision::Close {
                status: ps::CANCELED,
                reason: format!("gateway_rejected_{}", -e.code),
                notify: false,
            },
            other => self.expire_or_retry(&claimed, || match other {
                Answer::Ok(s) => format!("NOK callback, session {s:?}"),
                Answer::Refused(e) => format!("NOK callback, inquiry code {}", e.code),
                Answer::Indeterminate(why) => format!("NOK callback, inquiry {why}"),
            }),
        };
        self.record(claimed, decision).await.map(Some)
    }

    /// The payment of `authority` once no claim is in progress on it, waiting at most about one
    /// gateway timeout (the winner of a concurrent callback is usually a moment away).
    pub async fn await_settled(&self, authority: &str) -> Result<Option<Payment>, ApiError> {
        let deadline = tokio::time::Instant::now() + self.config.total_timeout;
        loop {
            let current = {
                let mut conn = self.pool.get().await?;
                queries::payment_by_authority(&mut conn, authority).await?
            };
            match current {
                Some(p) if p.status == ps::VERIFYING && tokio::time::Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                other => return Ok(other),
            }
        }
    }

    /// Verifies a payment this caller has claimed and records the outcome; answers the payment
    /// as it is afterwards.
    pub async fn verify_claimed(&self, claimed: Payment) -> Result<Payment, ApiError> {
        let Some(authority) = claimed.authority.clone() else {
            return Err(ApiError::internal(anyhow::anyhow!(
                "claimed payment {} has no authority",
                claimed.id
            )));
        };
        let from = claimed_from(&claimed);
        let outcome =
            VerifyOutcome::from_answer(self.zarinpal.verify(&authority, claimed.amount).await);
        let decision = match outcome {
            VerifyOutcome::Succeeded {
                code,
                ref_id,
                card_pan,
            } => Decision::Succeed {
                code,
                ref_id,
                card_pan: masked_card(card_pan.as_deref()),
            },
            VerifyOutcome::AmountMismatch => {
                tracing::error!(
                    payment_id = claimed.id,
                    amount = claimed.amount,
                    "zarinpal: paid amount differs from the stored amount (-50); needs review"
                );
                Decision::Review {
                    reason: "amount_mismatch".into(),
                }
            }
            VerifyOutcome::NotPaid => {
                let inquiry = self.zarinpal.inquiry(&authority).await;
                self.decide_not_paid(&claimed, &from, inquiry)
            }
            VerifyOutcome::Rejected(code) if is_closed(&from) => Decision::Restore {
                status: from.clone(),
                reason: format!("gateway_rejected_{}", -code),
            },
            VerifyOutcome::Rejected(code) => Decision::Close {
                status: ps::FAILED,
                reason: format!("gateway_rejected_{}", -code),
                notify: true,
            },
            VerifyOutcome::ConfigurationFault(code) => {
                tracing::error!(
                    payment_id = claimed.id,
                    code,
                    "zarinpal: merchant configuration fault on verify; payment left unsettled"
                );
                self.retry_or_restore(&from, format!("gateway_configuration_{}", -code))
            }
            VerifyOutcome::Retry(why) => self.retry_or_restore(&from, why),
        };
        self.record(claimed, decision).await
    }

    fn retry_or_restore(&self, from: &str, reason: String) -> Decision {
        if is_closed(from) {
            Decision::Restore {
                status: from.to_owned(),
                reason,
            }
        } else {
            Decision::Retry { reason }
        }
    }

    fn decide_not_paid(&self, p: &Payment, from: &str, inquiry: Answer<InquiryStatus>) -> Decision {
        let final_answer = match &inquiry {
            Answer::Ok(InquiryStatus::Failed) => Some("not_paid"),
            Answer::Ok(InquiryStatus::Reversed) => Some("reversed"),
            _ => None,
        };
        if is_closed(from) {
            return Decision::Restore {
                status: from.to_owned(),
                reason: final_answer.unwrap_or("not_paid").to_owned(),
            };
        }
        if let Some(reason) = final_answer {
            return Decision::Close {
                status: ps::FAILED,
                reason: reason.to_owned(),
                notify: true,
            };
        }
        self.expire_or_retry(p, || match inquiry {
            Answer::Ok(s) => format!("not paid yet ({s:?})"),
            Answer::Refused(e) => format!("not paid yet (inquiry code {})", e.code),
            Answer::Indeterminate(why) => format!("not paid yet (inquiry {why})"),
        })
    }

    /// Not paid yet, at the bank or unknown: wait, but not forever. Past `expire_after` the
    /// payment expires; before that it is checked again later (`retry_reason` says why).
    fn expire_or_retry(&self, p: &Payment, retry_reason: impl FnOnce() -> String) -> Decision {
        let age = (Utc::now() - p.created_at).to_std().unwrap_or_default();
        if age >= self.config.expire_after {
            Decision::Close {
                status: ps::EXPIRED,
                reason: "not_paid_in_time".into(),
                notify: false,
            }
        } else {
            Decision::Retry {
                reason: retry_reason(),
            }
        }
    }

    async fn record(&self, claimed: Payment, decision: Decision) -> Result<Payment, ApiError> {
        let id = claimed.id;
        let attempt = claimed.verify_attempts;
        let mut conn = self.pool.get().await?;
        let (label, applied) = match decision {
            Decision::Succeed {
                code,
                ref_id,
                card_pan,
            } => {
                let applied = conn
                    .transaction(async |conn| {
                        let Some(p) =
                            queries::mark_succeeded(conn, id, ref_id, card_pan.as_deref(), code)
                                .await?
                        else {
                            return Ok::<_, ApiError>(None);
                        };
                        // The payer paid: credited in every case. A discount beyond the
                        // code's limits (a payment paid after its reservation was released)
                        // is recorded and sent to review instead of silently confirmed.
                        let p = match queries::settle_redemption(conn, id).await? {
                            RedemptionOutcome::OverLimit => {
                                queries::mark_over_limit(conn, id).await?.unwrap_or(p)
                            }
                            RedemptionOutcome::None | RedemptionOutcome::Confirmed => p,
                        };
                        enqueue_verified(conn, &p).await?;
                        Ok(Some(p))
                    })
                    .await?;
                let label = match &applied {
                    Some(p) if p.status == ps::NEEDS_REVIEW => {
                        tracing::warn!(
                            payment_id = id,
                            code,
                            ?ref_id,
                            "payment verified and credited; its discount was over the code's \
                             limits: needs review"
                        );
                        "succeeded_over_limit"
                    }
                    Some(_) => {
                        tracing::info!(payment_id = id, code, ?ref_id, "payment verified");
                        "succeeded"
                    }
                    None => "succeeded",
                };
                (label, applied)
            }
            Decision::Close {
                status,
                reason,
                notify,
            } => {
                let meta = serde_json::json!({ "last_result": reason });
                let applied = conn
                    .transaction(async |conn| {
                        let Some(p) = queries::finish_claim(
                            conn,
                            id,
                            attempt,
                            status,
                            Some(&reason),
                            None,
                            &meta,
                        )
                        .await?
                        else {
                            return Ok::<_, ApiError>(None);
                        };
                        queries::release_redemption(conn, id).await?;
                        if notify {
                            zimmer_events::enqueue_event(
                                conn,
                                PRODUCER,
                                &PaymentFailed {
                                    payment_id: p.id,
                                    user_id: p.user_id,
                                    reason: Some(reason.clone()),
                                },
                            )
                            .await?;
                        }
                        Ok(Some(p))
                    })
                    .await?;
                if applied.is_some() {
                    tracing::info!(payment_id = id, status, %reason, "payment closed");
                }
                (status, applied)
            }
            Decision::Retry { reason } => {
                let next = self.config.backoff(attempt);
                let meta = serde_json::json!({ "last_result": reason });
                let applied = queries::finish_claim(
                    &mut conn,
                    id,
                    attempt,
                    ps::PENDING,
                    None,
                    Some(next),
                    &meta,
                )
                .await?;
                tracing::info!(payment_id = id, %reason, retry_in = ?next, "payment stays pending");
                ("retry", applied)
            }
            Decision::Restore { status, reason } => {
                let meta = serde_json::json!({ "last_result": reason });
                let applied =
                    queries::finish_claim(&mut conn, id, attempt, &status, None, None, &meta)
                        .await?;
                ("unchanged", applied)
            }
            Decision::Review { reason } => {
                let meta = serde_json::json!({ "last_result": reason });
                let applied = queries::finish_claim(
                    &mut conn,
                    id,
                    attempt,
                    ps::NEEDS_REVIEW,
                    Some(&reason),
                    None,
                    &meta,
                )
                .await?;
                ("needs_review", applied)
            }
        };
        match applied {
            Some(p) => {
                self.metrics.count(label);
                Ok(p)
            }
            None => {
                // Fenced out (the claim was taken over) or already succeeded: answer what is.
                self.metrics.count("superseded");
                queries::payment_by_id(&mut conn, id)
                    .await?
                    .ok_or_else(|| ApiError::not_found("Payment not found"))
            }
        }
    }
}
