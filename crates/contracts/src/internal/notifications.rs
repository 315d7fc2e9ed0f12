//! Internal API types: notifications (see internal/mod.rs), owned by support and called by
//! admin (docs/panels.md "Fallback log and notifications").
//!
//! - `POST /internal/notifications` [`DirectNotifications`] → [`DirectNotificationsCreated`]
//!   (200): one notification per distinct id of an existing, active account; other ids skipped.

use serde::{Deserialize, Serialize};

/// The notification types staff may send (the user panel's categories).
pub const NOTIFICATION_TYPES: [&str; 5] = ["system", "payment", "ticket", "automation", "admin"];
/// At most this many recipients in one call.
pub const MAX_RECIPIENTS: usize = 10_000;
pub const MAX_TITLE_CHARS: usize = 200;
pub const MAX_BODY_CHARS: usize = 2_000;
/// The serialized `data` object, in bytes.
pub const MAX_DATA_BYTES: usize = 8 * 1024;

/// Notifications to chosen users, sent by staff member `actor_id`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct DirectNotifications {
    pub user_ids: Vec<i64>,
    /// One of [`NOTIFICATION_TYPES`].
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    #[serde(default)]
    pub body: String,
    /// An object stored with each notification (`{}` when absent).
    #[serde(default)]
    pub data: Option<serde_json::Value>,
    pub actor_id: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct DirectNotificationsCreated {
    /// Notifications made (one per distinct active recipient).
    pub created: i64,
    /// Ids given that got none (unknown, inactive or deleted accounts, repeats).
    pub skipped: i64,
}

/// The notification type as one of [`NOTIFICATION_TYPES`] (both sides check it: admin for
/// the broadcast it enqueues, support for what it stores).
pub fn check_type(kind: &str) -> Result<&'static str, &'static str> {
    let kind = kind.trim();
    NOTIFICATION_TYPES
        .iter()
        .find(|t| **t == kind)
        .copied()
        .ok_or("must be one of system, payment, ticket, automation, admin")
}

/// `data` as stored: an object of at most [`MAX_DATA_BYTES`] serialized; absent or null = `{}`.
pub fn check_data(data: Option<&serde_json::Value>) -> Result<serde_json::Value, &'static str> {
    match data {
        None | Some(serde_json::Value::Null) => Ok(serde_json::Value::Object(Default::default())),
        Some(v @ serde_json::Value::Object(_)) => {
            if serde_json::to_vec(v).map_or(usize::MAX, |b| b.len()) > MAX_DATA_BYTES {
                Err("must be at most 8 KB")
            } else {
                Ok(v.clone())
            }
        }
        Some(_) => Err("must be an object"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn types_and_data_are_checked() {
        assert_eq!(check_type(" payment "), Ok("payment"));
        assert!(check_type("admin ").is_ok());
        assert!(check_type("urgent").is_err());
        assert_eq!(check_data(None), Ok(json!({})));
        assert_eq!(check_data(Some(&json!(null))), Ok(json!({})));
        assert_eq!(check_data(Some(&json!({"a": 1}))), Ok(json!({"a": 1})));
        assert!(check_data(Some(&json!([1]))).is_err());
        assert!(check_data(Some(&json!({"a": "x".repeat(MAX_DATA_BYTES)}))).is_err());
    }

    #[test]
    fn the_wire_name_of_kind_is_type() {
        let d: DirectNotifications = serde_json::from_value(
            json!({"user_ids": [1], "type": "system", "title": "t", "actor_id": 2}),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            (d.kind.as_str(), d.body.as_str(), d.data),
            ("system", "", None)
        );
    }
}
