//! The notifications consumer: events from other services (and support's own
//! `ticket.replied`) become notifications, in the transaction that records the event in the
//! inbox. Idempotent twice over: the inbox skips a redelivered event, and the unique
//! `(user_id, source_event_id)` would refuse a second notification anyway.
//!
//! Not consumed, on purpose: `ticket.created` (staff work from the ticket queue, which the
//! dashboard lists; notifying every staff member of every ticket would drown the useful ones).

use diesel_async::AsyncPgConnection;
use serde::Deserialize;
use zimmer_events::{BoxFuture, ConsumerSpec, Envelope, EventHandler, HandlerError};

use crate::{
    domain::texts,
    queries::{lookups, notifications as nq, tickets as tq},
};

/// Queue `<exchange>.support.notifications`; also the inbox's consumer name.
pub const CONSUMER: &str = "support.notifications";

pub const BINDINGS: [&str; 10] = [
    "user.registered",
    "payment.verified",
    "payment.failed",
    "tokens.credited",
    "tokens.low",
    "tokens.depleted",
    "tokens.adjusted",
    "ticket.replied",
    "notification.broadcast",
    "automation.health_changed",
];

pub fn spec() -> ConsumerSpec {
    ConsumerSpec::new(CONSUMER, BINDINGS)
}

/// Who is told when an automation's health changes.
const AUTOMATION_STAFF: [&str; 2] = ["manager", "technical_team"];
const ALL_ROLES: [&str; 4] = ["customer", "support_staff", "technical_team", "manager"];

pub struct Notifier;

impl EventHandler for Notifier {
    fn handle<'a>(
        &'a self,
        conn: &'a mut AsyncPgConnection,
        event: &'a Envelope,
    ) -> BoxFuture<'a, Result<(), HandlerError>> {
        Box::pin(handle(conn, event))
    }
}

#[derive(Deserialize)]
struct UserRegistered {
    user_id: i64,
    #[serde(default)]
    name: Option<String>,
}

#[derive(Deserialize)]
struct PaymentVerified {
    payment_id: i64,
    user_id: i64,
    #[serde(default)]
    automation_id: Option<i64>,
    #[serde(default)]
    user_automation_id: Option<i64>,
    #[serde(default)]
    tokens: i64,
    #[serde(default)]
    amount: i64,
    #[serde(default)]
    ref_id: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct PaymentFailed {
    payment_id: i64,
    user_id: i64,
    #[serde(default)]
    reason: Option<String>,
}

#[derive(Deserialize)]
struct TokensEvent {
    user_automation_id: i64,
    user_id: i64,
    #[serde(default)]
    tokens: i64,
    #[serde(default)]
    balance: Option<i64>,
    #[serde(default)]
    remaining: i64,
    #[serde(default)]
    delta: i64,
    #[serde(default)]
    reason: Option<String>,
}

#[derive(Deserialize)]
struct TicketReplied {
    ticket_id: i64,
    #[serde(default)]
    by_staff: bool,
}

#[derive(Deserialize)]
struct Broadcast {
    title: String,
    body: String,
    #[serde(default)]
    role: Option<String>,
}

#[derive(Deserialize)]
struct HealthChanged {
    automation_id: i64,
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
}

/// A reference id may come as a number or a string.
fn text_of(v: Option<serde_json::Value>) -> Option<String> {
    match v? {
        serde_json::Value::String(s) => Some(s),
        serde_json::Value::Null => None,
        other => Some(other.to_string()),
    }
}

async fn handle(conn: &mut AsyncPgConnection, event: &Envelope) -> Result<(), HandlerError> {
    let source = Some(event.id);
    match event.event_type.as_str() {
        "user.registered" => {
            let d: UserRegistered = event.data_as()?;
            let draft = texts::welcome(d.name.as_deref().unwrap_or_default());
            nq::notify_user(conn, d.user_id, &draft, source).await?;
        }
        "payment.verified" => {
            let d: PaymentVerified = event.data_as()?;
            let ref_id = text_of(d.ref_id);
            let draft = texts::payment_verified(
                d.payment_id,
                d.automation_id,
                d.user_automation_id,
                d.amount,
                d.tokens,
                ref_id.as_deref(),
            );
            nq::notify_user(conn, d.user_id, &draft, source).await?;
        }
        "payment.failed" => {
            let d: PaymentFailed = event.data_as()?;
            let draft = texts::payment_failed(d.payment_id, d.reason.as_deref());
            nq::notify_user(conn, d.user_id, &draft, source).await?;
        }
        kind @ ("tokens.credited" | "tokens.low" | "tokens.depleted" | "tokens.adjusted") => {
            let d: TokensEvent = event.data_as()?;
            let automation = lookups::automation_of(conn, d.user_automation_id).await?;
            let (automation_id, name) = match &automation {
                Some((id, name)) => (Some(*id), Some(name.as_str())),
                None => (None, None),
            };
            let ua = d.user_automation_id;
            let draft = match kind {
                "tokens.credited" => {
                    texts::tokens_credited(ua, automation_id, name, d.tokens, d.balance)
                }
                "tokens.low" => texts::tokens_low(ua, automation_id, name, d.remaining),
                "tokens.depleted" => texts::tokens_depleted(ua, automation_id, name),
                _ => texts::tokens_adjusted(ua, automation_id, name, d.delta, d.reason.as_deref()),
            };
            nq::notify_user(conn, d.user_id, &draft, source).await?;
        }
        "ticket.replied" => {
            let d: TicketReplied = event.data_as()?;
            // Support's own replies notify in the reply's transaction (with this event's id):
            // nothing left to do then.
            if nq::event_already_notified(conn, event.id).await? {
                return Ok(());
            }
            let Some(ticket) = tq::ticket_by_id(conn, d.ticket_id).await? else {
                tracing::warn!(
                    ticket_id = d.ticket_id,
                    "ticket.replied for an unknown ticket"
                );
                return Ok(());
            };
            if d.by_staff {
                let draft = texts::staff_replied(ticket.id, &ticket.title);
                nq::notify_user(conn, ticket.user_id, &draft, source).await?;
            } else if let Some(assignee) = ticket.assigned_to {
                let draft = texts::customer_replied(ticket.id, &ticket.title);
                nq::notify_user(conn, assignee, &draft, source).await?;
            }
        }
        "notification.broadcast" => {
            let d: Broadcast = event.data_as()?;
            let (title, body) = (d.title.trim(), d.body.trim());
            if title.is_empty() || body.is_empty() {
                return Err(HandlerError::permanent(anyhow::anyhow!(
                    "broadcast without a title or body"
                )));
            }
            let roles: Vec<&str> = match d.role.as_deref().map(str::trim) {
                None | Some("") | Some("all") => ALL_ROLES.to_vec(),
                Some(r) if ALL_ROLES.contains(&r) => vec![r],
                Some(r) => {
                    return Err(HandlerError::permanent(anyhow::anyhow!(
                        "broadcast to an unknown role {r:?}"
                    )));
                }
            };
            let draft = texts::Draft {
                kind: "admin",
                title: title.to_owned(),
                body: body.to_owned(),
                data: serde_json::json!({}),
            };
            let created = nq::notify_roles(conn, &roles, &draft, event.id).await?;
            tracing::info!(created, "broadcast notifications created");
        }
        "automation.health_changed" => {
            let d: HealthChanged = event.data_as()?;
            let name = lookups::automation_name(conn, d.automation_id).await?;
            let draft = texts::automation_health(d.automation_id, name.as_deref(), &d.from, &d.to);
            nq::notify_roles(conn, &AUTOMATION_STAFF, &draft, event.id).await?;
        }
        other => {
            // Bound only to the keys above; anything else is someone's misrouting.
            tracing::warn!(event_type = other, "event of an unexpected type ignored");
        }
    }
    Ok(())
}
