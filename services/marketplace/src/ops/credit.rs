//! `payment.verified` → purchased tokens credited exactly once, in the consumer's
//! transaction: the ledger's unique source key `payment:<payment_id>` (so even a second,
//! different event about the same payment credits nothing), the balance and
//! `tokens.credited`.

use diesel_async::AsyncPgConnection;
use serde_json::json;
use zimmer_events::{
    Envelope, HandlerError,
    contracts::{PaymentVerified, TokensCredited},
};

use crate::{
    PRODUCER,
    ops::ledger::{self, Change},
    queries::user_automations,
};

/// More tokens than anyone buys at once: such an event is a bug upstream, not a purchase.
const MAX_TOKENS_PER_PAYMENT: i64 = 100_000_000;

/// Credits the tokens of one `payment.verified` event (already recorded in the inbox by
/// the consumer, in this transaction).
pub async fn credit(
    conn: &mut AsyncPgConnection,
    event: &Envelope,
    low_threshold: i64,
) -> Result<(), HandlerError> {
    let p: PaymentVerified = event.decode()?;
    if p.tokens <= 0 || p.tokens > MAX_TOKENS_PER_PAYMENT {
        return Err(HandlerError::permanent(anyhow::anyhow!(
            "payment {} carries an impossible token count {}",
            p.payment_id,
            p.tokens
        )));
    }
    let Some(ua) = user_automations::lock(conn, p.user_automation_id).await? else {
        return Err(HandlerError::permanent(anyhow::anyhow!(
            "payment {}: user automation {} does not exist",
            p.payment_id,
            p.user_automation_id
        )));
    };
    // Never credit someone else's balance because of a malformed event.
    if ua.user_id != p.user_id || p.automation_id != ua.automation_id {
        return Err(HandlerError::permanent(anyhow::anyhow!(
            "payment {}: user automation {} belongs to another user or automation",
            p.payment_id,
            p.user_automation_id
        )));
    }
    let source_key = format!("payment:{}", p.payment_id);
    let meta = json!({
        "payment_id": p.payment_id,
        "amount": p.amount,
        "ref_id": p.ref_id,
        "event_id": event.id,
    });
    let change = Change {
        kind: "purchase",
        delta: p.tokens,
        demo_delta: 0,
        source_key: &source_key,
        usage_type: None,
        meta: &meta,
        actor_id: None,
        reason: None,
    };
    let Some(applied) = ledger::apply(conn, &ua, &change, low_threshold).await? else {
        tracing::info!(
            payment_id = p.payment_id,
            "payment already credited; nothing to do"
        );
        return Ok(());
    };
    let ua = &applied.user_automation;
    zimmer_events::enqueue_event(
        conn,
        PRODUCER,
        &TokensCredited {
            user_automation_id: ua.id,
            user_id: ua.user_id,
            automation_id: ua.automation_id,
            tokens: p.tokens,
            source: "payment".to_owned(),
            payment_id: Some(p.payment_id),
            balance: Some(ua.tokens_remaining),
            demo_tokens: ua.demo_tokens,
        },
    )
    .await?;
    tracing::info!(
        payment_id = p.payment_id,
        user_automation_id = ua.id,
        tokens = p.tokens,
        "payment credited"
    );
    Ok(())
}
