//! The notifications consumer: events from other services (and support's own
//! `ticket.replied`) become notifications, in the transaction that records the event in the
//! inbox. Idempotent twice over: the inbox skips a redelivered event, and the unique
//! `(user_id, source_event_id)` would refuse a second notification anyway.
//!
//! Not consumed, on purpose: `ticket.created` (staff work from the ticket queue, which the
//! dashboard lists; notifying every staff member of every ticket would drown the useful ones).

use diesel_async::AsyncPgConnection;
use zimmer_events::{
    BoxFuture, ConsumerSpec, Envelope, Event, EventHandler, HandlerError,
    contracts::{
        AutomationHealthChanged, NotificationBroadcast, PaymentFailed, PaymentVerified,
        TicketReplied, TokensAdjusted, TokensCredited, TokensDepleted, TokensLow, UserRegistered,
        internal::notifications::{check_data, check_type},
    },
};

use crate::{
    domain::texts,
    ops::notifications,
    queries::{lookups, notifications as nq, tickets as tq},
};

/// Queue `<exchange>.support.notifications`; also the inbox's consumer name.
pub const CONSUMER: &str = "support.notifications";

pub const BINDINGS: [&str; 10] = [
    UserRegistered::NAME,
    PaymentVerified::NAME,
    PaymentFailed::NAME,
    TokensCredited::NAME,
    TokensLow::NAME,
    TokensDepleted::NAME,
    TokensAdjusted::NAME,
    TicketReplied::NAME,
    NotificationBroadcast::NAME,
    AutomationHealthChanged::NAME,
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

/// The automation (id and name) of a user automation, for the texts of token events.
async fn automation_of(
    conn: &mut AsyncPgConnection,
    user_automation_id: i64,
) -> Result<(Option<i64>, Option<String>), HandlerError> {
    Ok(
        match lookups::automation_of(conn, user_automation_id).await? {
            Some((id, name)) => (Some(id), Some(name)),
            None => (None, None),
        },
    )
}

async fn handle(conn: &mut AsyncPgConnection, event: &Envelope) -> Result<(), HandlerError> {
    let source = Some(event.id);
    match event.event_type.as_str() {
        UserRegistered::NAME => {
            let d: UserRegistered = event.decode()?;
            let draft = texts::welcome(&d.name);
            notifications::notify_user(conn, d.user_id, &draft, source).await?;
        }
        PaymentVerified::NAME => {
            let d: PaymentVerified = event.decode()?;
            let ref_id = d.ref_id.as_ref().map(ToString::to_string);
            let draft = texts::payment_verified(
                d.payment_id,
                Some(d.automation_id),
                Some(d.user_automation_id),
                d.amount,
                d.tokens,
                ref_id.as_deref(),
            );
            notifications::notify_user(conn, d.user_id, &draft, source).await?;
        }
        PaymentFailed::NAME => {
            let d: PaymentFailed = event.decode()?;
            let draft = texts::payment_failed(d.payment_id, d.reason.as_deref());
            notifications::notify_user(conn, d.user_id, &draft, source).await?;
        }
        TokensCredited::NAME => {
            let d: TokensCredited = event.decode()?;
            let ua = d.user_automation_id;
            let (automation_id, name) = automation_of(conn, ua).await?;
            let draft =
                texts::tokens_credited(ua, automation_id, name.as_deref(), d.tokens, d.balance);
            notifications::notify_user(conn, d.user_id, &draft, source).await?;
        }
        TokensLow::NAME => {
            let d: TokensLow = event.decode()?;
            let ua = d.user_automation_id;
            let (automation_id, name) = automation_of(conn, ua).await?;
            let draft = texts::tokens_low(ua, automation_id, name.as_deref(), d.remaining);
            notifications::notify_user(conn, d.user_id, &draft, source).await?;
        }
        TokensDepleted::NAME => {
            let d: TokensDepleted = event.decode()?;
            let ua = d.user_automation_id;
            let (automation_id, name) = automation_of(conn, ua).await?;
            let draft = texts::tokens_depleted(ua, automation_id, name.as_deref());
            notifications::notify_user(conn, d.user_id, &draft, source).await?;
        }
        TokensAdjusted::NAME => {
            let d: TokensAdjusted = event.decode()?;
            let ua = d.user_automation_id;
            let (automation_id, name) = automation_of(conn, ua).await?;
            let draft = texts::tokens_adjusted(
                ua,
                automation_id,
                name.as_deref(),
                d.delta,
                d.reason.as_deref(),
            );
            notifications::notify_user(conn, d.user_id, &draft, source).await?;
        }
        TicketReplied::NAME => {
            let d: TicketReplied = event.decode()?;
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
                notifications::notify_user(conn, ticket.user_id, &draft, source).await?;
            } else if let Some(assignee) = ticket.assigned_to {
                let draft = texts::customer_replied(ticket.id, &ticket.title);
                notifications::notify_user(conn, assignee, &draft, source).await?;
            }
        }
        NotificationBroadcast::NAME => {
            let d: NotificationBroadcast = event.decode()?;
            // The body may be empty (docs/panels.md "Fallback log and notifications").
            let (title, body) = (d.title.trim(), d.body.trim());
            if title.is_empty() {
                return Err(HandlerError::permanent(anyhow::anyhow!(
                    "broadcast without a title"
                )));
            }
            // Events written before `type`/`data` existed make `admin` notifications with `{}`.
            let kind = match d.kind.as_deref() {
                None => "admin",
                Some(k) => check_type(k).map_err(|e| {
                    HandlerError::permanent(anyhow::anyhow!("broadcast type {k:?}: {e}"))
                })?,
            };
            let data = check_data(d.data.as_ref())
                .map_err(|e| HandlerError::permanent(anyhow::anyhow!("broadcast data: {e}")))?;
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
                kind,
                title: title.to_owned(),
                body: body.to_owned(),
                data,
            };
            let created = notifications::notify_roles(conn, &roles, &draft, event.id).await?;
            tracing::info!(created, "broadcast notifications created");
        }
        AutomationHealthChanged::NAME => {
            let d: AutomationHealthChanged = event.decode()?;
            let name = lookups::automation_name(conn, d.automation_id).await?;
            let draft = texts::automation_health(d.automation_id, name.as_deref(), &d.from, &d.to);
            notifications::notify_roles(conn, &AUTOMATION_STAFF, &draft, event.id).await?;
        }
        other => {
            // Bound only to the keys above; anything else is someone's misrouting.
            tracing::warn!(event_type = other, "event of an unexpected type ignored");
        }
    }
    Ok(())
}
