//! The token ledger: the only way balances change. Each entry is inserted and the balance
//! columns updated in the same transaction, under the row lock of the user automation
//! (`user_automations::lock`, taken by the caller); the unique `source_key` makes a payment,
//! a usage report or an adjustment apply at most once. The `tokens.low` / `tokens.depleted`
//! events a change causes go to the outbox in that transaction.

use diesel::QueryResult;
use diesel_async::AsyncPgConnection;
use zimmer_db::models::marketplace::{LedgerEntry, NewLedgerEntry, UserAutomation};
use zimmer_events::contracts::{TokensDepleted, TokensLow};

use crate::{
    PRODUCER,
    domain::ledger::{Alerts, Balances, alerts, balances, low_flag_after},
    queries::ledger::{self as lq, BalanceColumns},
};

/// One balance change to record.
#[derive(Debug)]
pub struct Change<'a> {
    pub kind: &'a str,
    /// Paid tokens (+ credit, − spend).
    pub delta: i64,
    /// Demo tokens.
    pub demo_delta: i64,
    pub source_key: &'a str,
    pub usage_type: Option<&'a str>,
    pub meta: &'a serde_json::Value,
    pub actor_id: Option<i64>,
    pub reason: Option<&'a str>,
}

/// What [`apply`] did.
#[derive(Debug)]
pub struct Applied {
    pub entry: LedgerEntry,
    pub user_automation: UserAutomation,
    pub alerts: Alerts,
}

/// What a change does to a user automation's balance columns, and the alerts it fires: the
/// rules of [`apply`], without the SQL (a consume batch applies several changes to one row in
/// memory before writing it once, `ops::consume`).
#[derive(Debug, Clone, Copy)]
pub struct Planned {
    pub columns: BalanceColumns,
    pub alerts: Alerts,
}

pub fn plan(
    ua: &UserAutomation,
    kind: &str,
    delta: i64,
    demo_delta: i64,
    low_threshold: i64,
) -> Planned {
    let before = balances(ua);
    let paid = ua.tokens_remaining + delta;
    let demo = ua.demo_tokens + demo_delta;
    let (demo_active, demo_expired) = if kind == "demo_grant" {
        (demo > 0, false)
    } else if demo_delta < 0 && demo == 0 {
        // The demo ends when its tokens run out.
        (false, true)
    } else {
        (ua.is_demo_active, ua.demo_expired)
    };
    let after = Balances {
        paid,
        demo,
        demo_active: demo_active && !demo_expired,
    };
    let fired = if delta + demo_delta < 0 {
        alerts(
            before.total(),
            after.total(),
            low_threshold,
            ua.low_alert_sent,
        )
    } else {
        Alerts::default()
    };
    Planned {
        columns: BalanceColumns {
            paid,
            demo,
            demo_active,
            demo_expired,
            low_alert_sent: low_flag_after(ua.low_alert_sent, after.total(), low_threshold, fired),
        },
        alerts: fired,
    }
}

/// `ua` as [`plan`] leaves it.
pub fn set_columns(ua: &mut UserAutomation, b: &BalanceColumns) {
    ua.tokens_remaining = b.paid;
    ua.demo_tokens = b.demo;
    ua.is_demo_active = b.demo_active;
    ua.demo_expired = b.demo_expired;
    ua.low_alert_sent = b.low_alert_sent;
}

/// Applies `change` to `ua`, which the caller has locked in this transaction. `None` when an
/// entry with the same source key exists already (nothing changed). The caller makes sure the
/// balances stay >= 0 (the table's CHECKs refuse it otherwise).
pub async fn apply(
    conn: &mut AsyncPgConnection,
    ua: &UserAutomation,
    change: &Change<'_>,
    low_threshold: i64,
) -> QueryResult<Option<Applied>> {
    let planned = plan(
        ua,
        change.kind,
        change.delta,
        change.demo_delta,
        low_threshold,
    );
    let b = planned.columns;
    let entry = lq::insert_entry(
        conn,
        NewLedgerEntry {
            user_automation_id: ua.id,
            kind: change.kind,
            delta: change.delta,
            demo_delta: change.demo_delta,
            balance_after: b.paid,
            demo_balance_after: b.demo,
            source_key: change.source_key,
            usage_type: change.usage_type,
            meta: change.meta,
            actor_id: change.actor_id,
            reason: change.reason,
        },
    )
    .await?;
    let Some(entry) = entry else {
        return Ok(None);
    };
    let user_automation = lq::set_balances(conn, ua.id, b).await?;
    Ok(Some(Applied {
        entry,
        user_automation,
        alerts: planned.alerts,
    }))
}

/// `tokens.low` / `tokens.depleted` for what [`apply`] reported, in the same transaction.
pub async fn enqueue_alerts(conn: &mut AsyncPgConnection, applied: &Applied) -> QueryResult<()> {
    enqueue_alerts_of(conn, &applied.user_automation, applied.alerts).await
}

/// `alerts`, fired by a change that left the user automation as `ua`.
pub async fn enqueue_alerts_of(
    conn: &mut AsyncPgConnection,
    ua: &UserAutomation,
    alerts: Alerts,
) -> QueryResult<()> {
    let remaining = balances(ua).total();
    if alerts.low {
        zimmer_events::enqueue_event(
            conn,
            PRODUCER,
            &TokensLow {
                user_automation_id: ua.id,
                user_id: ua.user_id,
                automation_id: ua.automation_id,
                remaining,
            },
        )
        .await?;
    }
    if alerts.depleted {
        zimmer_events::enqueue_event(
            conn,
            PRODUCER,
            &TokensDepleted {
                user_automation_id: ua.id,
                user_id: ua.user_id,
                automation_id: ua.automation_id,
                demo_expired: ua.demo_expired,
            },
        )
        .await?;
    }
    Ok(())
}
