//! A vendor's consumption of a customer's tokens, in one transaction: the user automation's
//! row is locked (`SELECT … FOR UPDATE`) while the balance is checked, the ledger entry
//! inserted and the balances updated, so concurrent calls serialise and the balance can never
//! be overdrawn or charged twice. A repeated idempotency key (checked under the same lock)
//! gets the stored answer; a refused call changes and stores nothing. Every call carries a
//! source key (a generated one without an idempotency key), so a new key's insert never
//! conflicts and the common path is lock, insert, update.

use diesel_async::{AsyncConnection, AsyncPgConnection};
use serde::{Deserialize, Serialize};
use serde_json::json;
use zimmer_db::models::marketplace::LedgerEntry;
use zimmer_http::ApiError;

use crate::{
    domain::ledger::{balances, split_consumption},
    ops::ledger::{self, Change},
    queries::{self, user_automations},
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

fn replay(prev: &LedgerEntry, ua_id: i64, units: i64) -> Result<ConsumeAnswer, ApiError> {
    let same = prev.user_automation_id == ua_id
        && prev.meta.get("units").and_then(serde_json::Value::as_i64) == Some(units);
    if !same {
        return Err(ApiError::conflict(
            "idempotency_conflict",
            "This idempotency key was already used for a different request",
        ));
    }
    prev.meta
        .get("response")
        .cloned()
        .and_then(|r| serde_json::from_value(r).ok())
        .ok_or_else(|| {
            ApiError::internal(anyhow::anyhow!(
                "usage entry {} has no stored answer",
                prev.id
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

/// Runs one consume call for the vendor of `automation_id`; `source_key` is the ledger key of
/// the call (`usage:<automation id>:<idempotency key>`).
pub async fn consume(
    conn: &mut AsyncPgConnection,
    c: &Checked,
    automation_id: i64,
    automation_status: &str,
    source_key: &str,
    threshold: i64,
) -> Result<Outcome, ApiError> {
    conn.transaction(async |conn| {
        // The same answer whether the user automation does not exist or belongs to another
        // automation: a vendor cannot probe other vendors' customers.
        let ua = user_automations::lock(conn, c.ua_id)
            .await?
            .filter(|ua| ua.automation_id == automation_id)
            .ok_or_else(not_for_user_automation)?;
        // What this call would answer if its key is new. A refusal changes nothing, so a key
        // seen before (rare here) is looked up first and its stored answer wins.
        let refusal = if automation_status != "active" {
            Some(refused(
                &ua,
                "automation_inactive",
                "This automation is inactive",
            ))
        } else if ua.status != "active" {
            Some(refused(
                &ua,
                "user_automation_inactive",
                "The customer's automation is not active",
            ))
        } else {
            None
        };
        let split = match (refusal, split_consumption(&balances(&ua), c.units)) {
            (None, Some(split)) => split,
            (refusal, _) => {
                if c.key.is_some()
                    && let Some(prev) = queries::ledger::by_source_key(conn, source_key).await?
                {
                    return Ok(Outcome::Replayed(replay(&prev, ua.id, c.units)?));
                }
                return Ok(Outcome::Answered(refusal.unwrap_or_else(|| {
                    refused(&ua, "insufficient_tokens", "Insufficient tokens")
                })));
            }
        };
        let answer = ConsumeAnswer {
            accepted: true,
            remaining_demo_tokens: balances(&ua).spendable_demo() - split.from_demo,
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
        // The accepted path inserts straight away (one round trip less under the row lock,
        // issue 16): the ledger's unique source key refuses a key seen before, and only
        // then is the earlier entry read, for its stored answer.
        let applied = ledger::apply(
            conn,
            &ua,
            &Change {
                kind: "consumption",
                delta: -split.from_paid,
                demo_delta: -split.from_demo,
                source_key,
                usage_type: c.usage_type.as_deref(),
                meta: &meta,
                actor_id: None,
                reason: None,
            },
            threshold,
        )
        .await?;
        let Some(applied) = applied else {
            // The key was used before (or concurrently, committed first): replay it, or
            // refuse it if it was for another user automation or amount.
            let prev = queries::ledger::by_source_key(conn, source_key)
                .await?
                .ok_or_else(|| {
                    ApiError::conflict(
                        "idempotency_conflict",
                        "This idempotency key was already used for a different request",
                    )
                })?;
            return Ok(Outcome::Replayed(replay(&prev, ua.id, c.units)?));
        };
        ledger::enqueue_alerts(conn, &applied).await?;
        Ok::<_, ApiError>(Outcome::Answered(answer))
    })
    .await
}
