//! The events exchanged between Zimmer services, declared once: each payload type carries its
//! routing key ([`Event::NAME`], also the envelope's `type`) and its payload version
//! ([`Event::VERSION`], the envelope's `version`). Producers write these structs to their
//! outbox and consumers read the envelope's `data` back into the same structs (through
//! `zimmer_events`), so a renamed or retyped field breaks the build, not production.
//!
//! The wire format is the one documented in `docs/events.md`. Rules kept by every type here:
//! - a field a producer writes is never renamed or retyped without a new `VERSION`;
//! - `#[serde(default)]` marks a field consumers have always accepted as absent (older
//!   producers, hand-made test events); it changes nothing in what producers write;
//! - a consumer meeting a version it does not know dead-letters the message (see
//!   `zimmer_events::Envelope::decode`).
//!
//! Deliberately free of database and HTTP dependencies: any crate may depend on this one.

pub mod internal;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use uuid::Uuid;

/// An event payload: what travels in the envelope's `data`.
pub trait Event: Serialize + DeserializeOwned + Send + Sync + 'static {
    /// The event type: routing key, AMQP `type` and the envelope's `type`.
    const NAME: &'static str;
    /// The payload's schema version, written to the envelope's `version`. Bump it (and keep
    /// reading the old one where needed) when a field changes meaning, type or name.
    const VERSION: u32;
}

macro_rules! event {
    ($ty:ident, $name:literal, $version:literal) => {
        impl Event for $ty {
            const NAME: &'static str = $name;
            const VERSION: u32 = $version;
        }
    };
}

/// Every event type and its current version, for documentation checks and topology.
pub const ALL: &[(&str, u32)] = &[
    (UserRegistered::NAME, UserRegistered::VERSION),
    (UserUpdated::NAME, UserUpdated::VERSION),
    (UserDeactivated::NAME, UserDeactivated::VERSION),
    (SessionRevoked::NAME, SessionRevoked::VERSION),
    (UserAutomationCreated::NAME, UserAutomationCreated::VERSION),
    (
        AutomationHealthChanged::NAME,
        AutomationHealthChanged::VERSION,
    ),
    (PaymentVerified::NAME, PaymentVerified::VERSION),
    (PaymentFailed::NAME, PaymentFailed::VERSION),
    (TokensCredited::NAME, TokensCredited::VERSION),
    (TokensLow::NAME, TokensLow::VERSION),
    (TokensDepleted::NAME, TokensDepleted::VERSION),
    (TokensAdjusted::NAME, TokensAdjusted::VERSION),
    (TicketCreated::NAME, TicketCreated::VERSION),
    (TicketReplied::NAME, TicketReplied::VERSION),
    (NotificationBroadcast::NAME, NotificationBroadcast::VERSION),
];

// ---------------------------------------------------------------- auth

/// `user.registered` (auth): a sign-up, or a staff account created by a manager (which adds
/// `role` and `created_by`). Support sends a welcome notification.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserRegistered {
    pub user_id: i64,
    #[serde(default)]
    pub email: String,
    #[serde(default)]
    pub name: String,
    /// Staff creation only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// Staff creation only: the manager who created the account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_by: Option<i64>,
}
event!(UserRegistered, "user.registered", 1);

/// `user.updated` (auth): `user_id` plus only the fields that changed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct UserUpdated {
    pub user_id: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_active: Option<bool>,
    /// The staff member who changed role or activation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor_id: Option<i64>,
    /// Set (true) when the account was deleted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deleted: Option<bool>,
}
event!(UserUpdated, "user.updated", 1);

/// `user.deactivated` (auth): every service rejects that user's tokens at once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserDeactivated {
    pub user_id: i64,
    /// Absent in old events: consumers use the envelope's `occurred_at` then.
    #[serde(default)]
    pub deactivated_at: Option<DateTime<Utc>>,
}
event!(UserDeactivated, "user.deactivated", 1);

/// `session.revoked` (auth): every service rejects that session's access tokens until
/// `expires_at`, after which none of them is valid anyway.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionRevoked {
    pub session_id: Uuid,
    #[serde(default)]
    pub user_id: Option<i64>,
    pub expires_at: DateTime<Utc>,
}
event!(SessionRevoked, "session.revoked", 1);

// ---------------------------------------------------------------- marketplace

/// `user_automation.created` (marketplace): a customer added an automation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserAutomationCreated {
    pub user_automation_id: i64,
    pub user_id: i64,
    pub automation_id: i64,
    pub demo_tokens: i64,
}
event!(UserAutomationCreated, "user_automation.created", 1);

/// `automation.health_changed` (marketplace health checker): `from` → `to`, each one of
/// `healthy`, `degraded`, `down`, `unknown`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AutomationHealthChanged {
    pub automation_id: i64,
    #[serde(default)]
    pub from: String,
    #[serde(default)]
    pub to: String,
}
event!(AutomationHealthChanged, "automation.health_changed", 1);

/// `tokens.credited` (marketplace): purchased tokens credited after `payment.verified`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TokensCredited {
    pub user_automation_id: i64,
    pub user_id: i64,
    #[serde(default)]
    pub automation_id: i64,
    pub tokens: i64,
    /// `payment` today.
    #[serde(default)]
    pub source: String,
    #[serde(default)]
    pub payment_id: Option<i64>,
    /// The paid balance after the credit.
    #[serde(default)]
    pub balance: Option<i64>,
    #[serde(default)]
    pub demo_tokens: i64,
}
event!(TokensCredited, "tokens.credited", 1);

/// `tokens.low` (marketplace): a balance crossed the low threshold downwards.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TokensLow {
    pub user_automation_id: i64,
    pub user_id: i64,
    #[serde(default)]
    pub automation_id: i64,
    /// Demo plus paid tokens left.
    #[serde(default)]
    pub remaining: i64,
}
event!(TokensLow, "tokens.low", 1);

/// `tokens.depleted` (marketplace): a balance reached zero.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TokensDepleted {
    pub user_automation_id: i64,
    pub user_id: i64,
    #[serde(default)]
    pub automation_id: i64,
    #[serde(default)]
    pub demo_expired: bool,
}
event!(TokensDepleted, "tokens.depleted", 1);

/// `tokens.adjusted` (marketplace): an admin adjustment of a balance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TokensAdjusted {
    pub user_automation_id: i64,
    pub user_id: i64,
    #[serde(default)]
    pub automation_id: i64,
    #[serde(default)]
    pub delta: i64,
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(default)]
    pub actor_id: Option<i64>,
    /// The paid balance after the adjustment.
    #[serde(default)]
    pub balance: Option<i64>,
}
event!(TokensAdjusted, "tokens.adjusted", 1);

// ---------------------------------------------------------------- billing

/// Zarinpal's reference id of a verified payment: a number from the gateway; some older or
/// hand-made events carry it as a string, which consumers keep accepting.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum RefId {
    Number(i64),
    Text(String),
}

impl std::fmt::Display for RefId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Number(n) => write!(f, "{n}"),
            Self::Text(s) => f.write_str(s),
        }
    }
}

/// `payment.verified` (billing): a verified payment, or a 100 % discount. The marketplace
/// credits `tokens` once per `payment_id`; support sends a receipt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PaymentVerified {
    pub payment_id: i64,
    pub user_id: i64,
    pub automation_id: i64,
    pub user_automation_id: i64,
    pub tokens: i64,
    /// Rials.
    pub amount: i64,
    /// Null for a payment that never reached the gateway (100 % discount).
    pub ref_id: Option<RefId>,
}
event!(PaymentVerified, "payment.verified", 1);

/// `payment.failed` (billing): a payment closed as failed after a verify.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PaymentFailed {
    pub payment_id: i64,
    pub user_id: i64,
    #[serde(default)]
    pub reason: Option<String>,
}
event!(PaymentFailed, "payment.failed", 1);

// ---------------------------------------------------------------- support

/// `ticket.created` (support): a new ticket. No consumer, on purpose.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TicketCreated {
    pub ticket_id: i64,
    pub user_id: i64,
    pub priority: String,
}
event!(TicketCreated, "ticket.created", 1);

/// `ticket.replied` (support): a message on a ticket; `user_id` is the ticket's owner.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TicketReplied {
    pub ticket_id: i64,
    #[serde(default)]
    pub user_id: i64,
    #[serde(default)]
    pub by_staff: bool,
    #[serde(default)]
    pub message_id: i64,
    #[serde(default)]
    pub author_id: i64,
}
event!(TicketReplied, "ticket.replied", 1);

// ---------------------------------------------------------------- admin

/// `notification.broadcast` (admin): one notification per active user of `role`, or of
/// every role when `role` is null.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NotificationBroadcast {
    pub title: String,
    pub body: String,
    /// Written as null for everyone.
    #[serde(default)]
    pub role: Option<String>,
    #[serde(default)]
    pub actor_id: Option<i64>,
    /// The notification type (system, payment, ticket, automation, admin); absent in events
    /// written before it existed, which make `admin` notifications.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// An object stored with each notification; absent = `{}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<serde_json::Value>,
}
event!(NotificationBroadcast, "notification.broadcast", 1);

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn names_are_unique_and_versions_positive() {
        let mut names: Vec<&str> = ALL.iter().map(|(n, _)| *n).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), ALL.len());
        assert!(ALL.iter().all(|(_, v)| *v >= 1));
    }

    #[test]
    fn payment_verified_wire_format() {
        let p = PaymentVerified {
            payment_id: 1,
            user_id: 2,
            automation_id: 3,
            user_automation_id: 4,
            tokens: 5,
            amount: 60_000,
            ref_id: Some(RefId::Number(201)),
        };
        assert_eq!(
            serde_json::to_value(&p).unwrap(),
            json!({"payment_id": 1, "user_id": 2, "automation_id": 3, "user_automation_id": 4,
                   "tokens": 5, "amount": 60_000, "ref_id": 201})
        );
        let text: PaymentVerified = serde_json::from_value(json!({"payment_id": 1, "user_id": 2,
            "automation_id": 3, "user_automation_id": 4, "tokens": 5, "amount": 6, "ref_id": "A1"}))
        .unwrap();
        assert_eq!(text.ref_id.unwrap().to_string(), "A1");
    }

    #[test]
    fn optional_fields_are_omitted_as_producers_always_did() {
        let signup = UserRegistered {
            user_id: 1,
            email: "a@b.c".into(),
            name: "A".into(),
            role: None,
            created_by: None,
        };
        assert_eq!(
            serde_json::to_value(&signup).unwrap(),
            json!({"user_id": 1, "email": "a@b.c", "name": "A"})
        );
        let updated = UserUpdated {
            user_id: 1,
            name: Some("B".into()),
            ..UserUpdated::default()
        };
        assert_eq!(
            serde_json::to_value(&updated).unwrap(),
            json!({"user_id": 1, "name": "B"})
        );
        let broadcast = NotificationBroadcast {
            title: "t".into(),
            body: "b".into(),
            role: None,
            actor_id: Some(9),
            kind: None,
            data: None,
        };
        assert_eq!(
            serde_json::to_value(&broadcast).unwrap(),
            json!({"title": "t", "body": "b", "role": null, "actor_id": 9})
        );
        // The fields added later: written when set, and an old event still decodes.
        let typed = NotificationBroadcast {
            kind: Some("payment".into()),
            data: Some(json!({"k": 1})),
            ..broadcast
        };
        let wire = serde_json::to_value(&typed).unwrap();
        assert_eq!(wire["type"], "payment");
        assert_eq!(wire["data"], json!({"k": 1}));
        let old: NotificationBroadcast =
            serde_json::from_value(json!({"title": "t", "body": "b"})).unwrap();
        assert_eq!((old.kind, old.data, old.role), (None, None, None));
    }
}
