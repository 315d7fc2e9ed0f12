//! The payloads of the live-notification signal (PostgreSQL `NOTIFY` on [`CHANNEL`]), shared
//! by the queries that send it inside the inserting transaction and by the listener
//! (`workers::live`) that routes it to the open streams. NOTIFY payloads are limited to 8000
//! bytes:
//! - `{"n": <notification JSON>, "u": user_id}` — the common case, no database read needed;
//! - `{"u": user_id, "id": id}` — a notification too large to inline: fetched by id;
//! - `{"e": event_id}` — a bulk insert (broadcast): each instance fetches that event's
//!   notifications for the users it has streams for.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::views::NotificationView;

pub const CHANNEL: &str = "zimmer_notifications";
/// Below PostgreSQL's 8000-byte payload limit, with room to spare.
const MAX_INLINE_PAYLOAD: usize = 7000;

#[derive(Debug, Serialize, Deserialize)]
pub struct Signal {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub u: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub e: Option<Uuid>,
}

/// The serialized view carries no `user_id` (clients never see it), so it travels beside.
#[derive(Debug, Serialize, Deserialize)]
pub struct Inline {
    pub u: i64,
    pub n: NotificationView,
}

/// The payload announcing one notification: inline when it fits, else its id.
pub fn one(view: &NotificationView) -> serde_json::Result<String> {
    let inline = serde_json::to_string(&Inline {
        u: view.user_id,
        n: view.clone(),
    })?;
    if inline.len() <= MAX_INLINE_PAYLOAD {
        return Ok(inline);
    }
    serde_json::to_string(&Signal {
        u: Some(view.user_id),
        id: Some(view.id),
        e: None,
    })
}

/// The payload announcing every notification of one event.
pub fn event(event_id: Uuid) -> serde_json::Result<String> {
    serde_json::to_string(&Signal {
        u: None,
        id: None,
        e: Some(event_id),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_signal_round_trips_with_its_user() {
        let v = NotificationView::sample(5, 99);
        let s = serde_json::to_string(&Inline { u: 5, n: v.clone() }).unwrap();
        let back: Inline = serde_json::from_str(&s).unwrap();
        assert_eq!(back.u, 5);
        assert_eq!(back.n.id, 99);
        // A bulk signal is not mistaken for an inline one.
        let e = serde_json::to_string(&Signal {
            u: None,
            id: None,
            e: Some(Uuid::nil()),
        })
        .unwrap();
        assert!(serde_json::from_str::<Inline>(&e).is_err());
    }
}
