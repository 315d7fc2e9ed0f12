//! A staff adjustment of a paid balance (`POST /internal/tokens/adjust`), in one transaction
//! under the user automation's row lock: the ledger entry (`adjust:<idempotency key>`), the
//! balances, `tokens.adjusted` and any `tokens.low` / `tokens.depleted`.

use diesel_async::{AsyncConnection, AsyncPgConnection};
use serde_json::json;
use zimmer_db::models::marketplace::LedgerEntry;
use zimmer_events::contracts::{
    TokensAdjusted,
    internal::tokens::{AdjustAnswer, AdjustRequest},
};
use zimmer_http::ApiError;

use crate::{
    PRODUCER,
    ops::ledger::{self, Change},
    queries::{self, user_automations},
};

/// The answer of an adjustment, derived from its ledger entry (so a replay answers the same).
fn answer(e: &LedgerEntry) -> AdjustAnswer {
    AdjustAnswer {
        ledger_id: e.id,
        user_automation_id: e.user_automation_id,
        delta: e.delta,
        tokens_remaining: e.balance_after,
        demo_tokens: e.demo_balance_after,
        reason: e.reason.clone(),
        actor_id: e.actor_id,
        created_at: e.created_at,
    }
}

/// Applies `body` (validated by the handler; `key` is its trimmed idempotency key and
/// `source_key` the ledger key). The answer, and whether it is a replay of an earlier call.
pub async fn adjust(
    conn: &mut AsyncPgConnection,
    body: &AdjustRequest,
    key: &str,
    reason: &str,
    source_key: &str,
    threshold: i64,
) -> Result<(AdjustAnswer, bool), ApiError> {
    conn.transaction(async |conn| {
        let ua = user_automations::lock(conn, body.user_automation_id)
            .await?
            .ok_or_else(|| ApiError::not_found("User automation not found"))?;
        // Separation of duties, enforced where the balance lives: no staff member moves
        // the balance of their own automation (admin checks first, with the same answer).
        if ua.user_id == body.actor_id {
            return Err(ApiError::forbidden(
                "You cannot adjust the token balance of your own automation; ask another \
                     staff member",
            )
            .with_code("self_adjustment"));
        }
        if let Some(prev) = queries::ledger::by_source_key(conn, source_key).await? {
            if prev.user_automation_id != ua.id || prev.delta != body.delta {
                return Err(ApiError::conflict(
                    "idempotency_conflict",
                    "This idempotency key was already used for a different adjustment",
                ));
            }
            return Ok((answer(&prev), true));
        }
        if ua.tokens_remaining + body.delta < 0 {
            return Err(ApiError::conflict(
                "insufficient_tokens",
                "The adjustment would take the balance below zero",
            ));
        }
        let meta = json!({ "idempotency_key": key });
        let applied = ledger::apply(
            conn,
            &ua,
            &Change {
                kind: "adjustment",
                delta: body.delta,
                demo_delta: 0,
                source_key,
                usage_type: None,
                meta: &meta,
                actor_id: Some(body.actor_id),
                reason: Some(reason),
            },
            threshold,
        )
        .await?
        .ok_or_else(|| {
            ApiError::conflict(
                "idempotency_conflict",
                "This idempotency key was already used for a different adjustment",
            )
        })?;
        zimmer_events::enqueue_event(
            conn,
            PRODUCER,
            &TokensAdjusted {
                user_automation_id: ua.id,
                user_id: ua.user_id,
                automation_id: ua.automation_id,
                delta: body.delta,
                reason: Some(reason.to_owned()),
                actor_id: Some(body.actor_id),
                balance: Some(applied.user_automation.tokens_remaining),
            },
        )
        .await?;
        ledger::enqueue_alerts(conn, &applied).await?;
        Ok::<_, ApiError>((answer(&applied.entry), false))
    })
    .await
}
