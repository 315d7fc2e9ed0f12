//! Vendors' consumption of customers' tokens, applied in batches: every call that reached the
//! batcher (`workers::consume_batcher`) while the previous batch was being written goes into
//! one transaction, so one commit (one WAL flush) serves many calls. Inside it the vendors'
//! service tokens are checked, the user automations of the batch locked (`SELECT … FOR
//! UPDATE`, in id order), then every call is decided in arrival order against the locked
//! balances in memory (so calls on one balance serialise exactly as they would one transaction
//! each: never overdrawn, never charged twice), and the ledger entries and new balances are
//! written with one statement. A repeated idempotency key gets the stored answer (how keys are
//! checked: `consume_batch`); a refused call changes and stores nothing. Every call carries a
//! source key (a generated one without an idempotency key). No call is answered before the
//! batch commits.

use std::collections::HashMap;

use diesel_async::{AsyncConnection, AsyncPgConnection};
use serde::{Deserialize, Serialize};
use serde_json::json;
use zimmer_http::ApiError;

use crate::{
    domain::ledger::{balances, split_consumption},
    ops::ledger,
    queries::consume as qc,
};

/// A consume call that passed validation (`handlers::consume`).
pub struct Checked {
    pub ua_id: i64,
    pub units: i64,
    pub usage_type: Option<String>,
    pub key: Option<String>,
    pub meta: Option<serde_json::Value>,
}

/// The answer, stored with the ledger entry so that a replay answers byte for byte the same.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ConsumeAnswer {
    pub accepted: bool,
    pub remaining_demo_tokens: i64,
    pub remaining_paid_tokens: i64,
    pub message: String,
    /// Why a call was refused: `insufficient_tokens`, `automation_inactive`,
    /// `user_automation_inactive`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

pub enum Outcome {
    Answered(ConsumeAnswer),
    Replayed(ConsumeAnswer),
}

pub fn unauthorized(detail: &'static str, code: &'static str) -> ApiError {
    ApiError::unauthorized(detail).with_code(code)
}

/// A vendor named a user automation that does not exist or belongs to another automation:
/// the same 401 either way, on every vendor route, so a vendor cannot probe other vendors'
/// customers.
pub fn not_for_user_automation() -> ApiError {
    unauthorized(
        "This service token is not valid for that user automation",
        "token_not_for_user_automation",
    )
}

/// The stored answer of an earlier call with the same key (its entry's user automation and
/// meta), or 409 when that call was for another user automation or amount.
fn replay(
    prev_ua_id: i64,
    prev_meta: &serde_json::Value,
    ua_id: i64,
    units: i64,
) -> Result<ConsumeAnswer, ApiError> {
    let same = prev_ua_id == ua_id
        && prev_meta.get("units").and_then(serde_json::Value::as_i64) == Some(units);
    if !same {
        return Err(ApiError::conflict(
            "idempotency_conflict",
            "This idempotency key was already used for a different request",
        ));
    }
    prev_meta
        .get("response")
        .cloned()
        .and_then(|r| serde_json::from_value(r).ok())
        .ok_or_else(|| {
            ApiError::internal(anyhow::anyhow!(
                "usage entry of user automation {prev_ua_id} has no stored answer"
            ))
        })
}

fn refused(
    ua: &zimmer_db::models::marketplace::UserAutomation,
    reason: &str,
    message: &str,
) -> ConsumeAnswer {
    let b = balances(ua);
    ConsumeAnswer {
        accepted: false,
        remaining_demo_tokens: b.spendable_demo(),
        remaining_paid_tokens: b.paid,
        message: message.to_owned(),
        reason: Some(reason.to_owned()),
    }
}

/// One call of a batch, validated by the handler.
pub struct Call {
    /// SHA-256 of the vendor's `X-Zimmer-Service-Token`, checked in the batch's transaction
    /// (so a rotated token stops working at the next batch, no cache in between).
    pub token_hash: Vec<u8>,
    pub checked: Checked,
    /// The idempotency key, or a generated one; the ledger's source key is
    /// `usage:<automation id>:<key>`.
    pub key: String,
}

/// The answer to one call: an outcome, or its own 4xx (bad token, another vendor's user
/// automation, a key reused for another request).
pub type CallResult = Result<Outcome, ApiError>;

/// Why a whole batch was rolled back (nothing of it was applied).
#[derive(Debug)]
pub enum BatchError {
    Db(diesel::result::Error),
    /// A source key of an accepted call was committed already (before this batch, when its
    /// keys were not looked up, or by another instance's batch meanwhile): decide the batch
    /// again with every key looked up.
    KeyRace,
}

impl From<diesel::result::Error> for BatchError {
    fn from(e: diesel::result::Error) -> Self {
        Self::Db(e)
    }
}

/// Applies `calls` in one transaction, in order, and answers each (same order). Nothing is
/// answered unless the transaction commits: on `Err` none of the calls was applied.
///
/// Idempotency keys are almost always new, so the first attempt does not look them up: the
/// ledger's unique source key is the check. A refused call's key is looked up before the
/// commit (a refusal and a replay both leave the balances alone, so the other decisions
/// stand); an accepted call whose key was committed before makes the insert fall short, and
/// the batch is rolled back and decided again with every key looked up. This took a query
/// off the batch's locked section (issue 16: see README, "Performance").
pub async fn consume_batch(
    conn: &mut AsyncPgConnection,
    calls: &[Call],
    threshold: i64,
) -> Result<Vec<CallResult>, BatchError> {
    match decide_and_write(conn, calls, threshold, Lookup::Refused).await {
        Err(BatchError::KeyRace) => decide_and_write(conn, calls, threshold, Lookup::All).await,
        done => done,
    }
}

/// Which idempotency keys a batch looks up in the ledger.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Lookup {
    /// Only those of refused calls, after deciding (a key of an accepted call that exists
    /// already shows as a short insert: `BatchError::KeyRace`).
    Refused,
    /// Every key, before deciding.
    All,
}

async fn decide_and_write(
    conn: &mut AsyncPgConnection,
    calls: &[Call],
    threshold: i64,
    lookup_mode: Lookup,
) -> Result<Vec<CallResult>, BatchError> {
    conn.transaction(async |conn| {
        let mut hashes: Vec<Vec<u8>> = calls.iter().map(|c| c.token_hash.clone()).collect();
        hashes.sort_unstable();
        hashes.dedup();
        let vendors = qc::vendors_by_token_hashes(conn, &hashes).await?;
        // Only rows named with a valid token are locked.
        let mut ua_ids: Vec<i64> = calls
            .iter()
            .filter(|c| vendors.contains_key(&c.token_hash))
            .map(|c| c.checked.ua_id)
            .collect();
        ua_ids.sort_unstable();
        ua_ids.dedup();
        let mut uas = qc::lock_many(conn, &ua_ids).await?;
        // The source key of each call whose token and user automation check out.
        let source_keys: Vec<Option<String>> = calls
            .iter()
            .map(|c| {
                let (automation_id, _) = vendors.get(&c.token_hash)?;
                uas.get(&c.checked.ua_id)
                    .filter(|ua| ua.automation_id == *automation_id)?;
                Some(format!("usage:{automation_id}:{}", c.key))
            })
            .collect();
        // Generated keys too: a batch run again after a commit whose answer was lost (the
        // connection dropped) replays its calls instead of refusing them as duplicates.
        let seen = if lookup_mode == Lookup::All {
            let lookup: Vec<String> = source_keys.iter().flatten().cloned().collect();
            qc::entries_by_source_keys(conn, &lookup).await?
        } else {
            HashMap::new()
        };
        // Calls refused without a lookup: (index, source key), looked up after the loop.
        let mut refused_unseen: Vec<(usize, &str)> = Vec::new();

        let mut entries = qc::Entries::default();
        // Source key → index in `entries`: a key repeated within the batch replays the first.
        let mut pending: HashMap<&str, usize> = HashMap::new();
        let mut touched: Vec<i64> = Vec::new();
        let mut alerts = Vec::new();
        let mut results = Vec::with_capacity(calls.len());
        for (call, source_key) in calls.iter().zip(&source_keys) {
            let c = &call.checked;
            let Some((_, automation_status)) = vendors.get(&call.token_hash) else {
                results.push(Err(unauthorized(
                    "Invalid service token",
                    "invalid_service_token",
                )));
                continue;
            };
            // The same answer whether the user automation does not exist or belongs to
            // another automation: a vendor cannot probe other vendors' customers.
            let (Some(source_key), Some(ua)) = (source_key, uas.get_mut(&c.ua_id)) else {
                results.push(Err(not_for_user_automation()));
                continue;
            };
            // A key seen before (committed, or earlier in this batch) gets its stored answer,
            // whatever the balance is now.
            if let Some(prev) = seen.get(source_key) {
                results.push(
                    replay(prev.user_automation_id, &prev.meta, ua.id, c.units)
                        .map(Outcome::Replayed),
                );
                continue;
            }
            if let Some(&i) = pending.get(source_key.as_str()) {
                results.push(
                    replay(
                        entries.user_automation_id[i],
                        &entries.meta[i],
                        ua.id,
                        c.units,
                    )
                    .map(Outcome::Replayed),
                );
                continue;
            }
            let refusal = if automation_status != "active" {
                Some(refused(
                    ua,
                    "automation_inactive",
                    "This automation is inactive",
                ))
            } else if ua.status != "active" {
                Some(refused(
                    ua,
                    "user_automation_inactive",
                    "The customer's automation is not active",
                ))
            } else {
                None
            };
            let split = match (refusal, split_consumption(&balances(ua), c.units)) {
                (None, Some(split)) => split,
                (refusal, _) => {
                    if lookup_mode == Lookup::Refused {
                        refused_unseen.push((results.len(), source_key.as_str()));
                    }
                    results.push(Ok(Outcome::Answered(refusal.unwrap_or_else(|| {
                        refused(ua, "insufficient_tokens", "Insufficient tokens")
                    }))));
                    continue;
                }
            };
            let answer = ConsumeAnswer {
                accepted: true,
                remaining_demo_tokens: balances(ua).spendable_demo() - split.from_demo,
                remaining_paid_tokens: ua.tokens_remaining - split.from_paid,
                message: format!("{} tokens consumed", c.units),
                reason: None,
            };
            let meta = json!({
                "units": c.units,
                "idempotency_key": c.key,
                "request_meta": c.meta,
                "response": answer,
            });
            let planned = ledger::plan(
                ua,
                "consumption",
                -split.from_paid,
                -split.from_demo,
                threshold,
            );
            ledger::set_columns(ua, &planned.columns);
            pending.insert(source_key, entries.source_key.len());
            entries.user_automation_id.push(ua.id);
            entries.delta.push(-split.from_paid);
            entries.demo_delta.push(-split.from_demo);
            entries.balance_after.push(planned.columns.paid);
            entries.demo_balance_after.push(planned.columns.demo);
            entries.source_key.push(source_key.clone());
            entries.usage_type.push(c.usage_type.clone());
            entries.meta.push(meta);
            if !touched.contains(&ua.id) {
                touched.push(ua.id);
            }
            if planned.alerts.low || planned.alerts.depleted {
                alerts.push((ua.clone(), planned.alerts));
            }
            results.push(Ok(Outcome::Answered(answer)));
        }

        if !refused_unseen.is_empty() {
            let keys: Vec<String> = refused_unseen
                .iter()
                .map(|(_, k)| (*k).to_owned())
                .collect();
            let found = qc::entries_by_source_keys(conn, &keys).await?;
            for (i, key) in &refused_unseen {
                if let Some(prev) = found.get(*key) {
                    let c = &calls[*i].checked;
                    results[*i] = replay(prev.user_automation_id, &prev.meta, c.ua_id, c.units)
                        .map(Outcome::Replayed);
                }
            }
        }

        if !touched.is_empty() {
            let mut rows = qc::Balances::default();
            for ua in touched.iter().filter_map(|id| uas.get(id)) {
                rows.id.push(ua.id);
                rows.paid.push(ua.tokens_remaining);
                rows.demo.push(ua.demo_tokens);
                rows.demo_active.push(ua.is_demo_active);
                rows.demo_expired.push(ua.demo_expired);
                rows.low_alert_sent.push(ua.low_alert_sent);
            }
            let written = qc::write(conn, &entries, &rows).await?;
            if usize::try_from(written.inserted).ok() != Some(entries.source_key.len()) {
                return Err(BatchError::KeyRace);
            }
            if usize::try_from(written.updated).ok() != Some(rows.id.len()) {
                // Cannot happen: the rows are locked by this transaction.
                return Err(BatchError::Db(diesel::result::Error::NotFound));
            }
        }
        for (ua, fired) in &alerts {
            ledger::enqueue_alerts_of(conn, ua, *fired).await?;
        }
        Ok(results)
    })
    .await
}
