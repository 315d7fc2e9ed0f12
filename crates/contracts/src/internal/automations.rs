//! Internal API types: automations (see internal/mod.rs). The marketplace owns the catalogue
//! and every automation's service token (docs/panels.md "Automations and service tokens",
//! "Service tokens: four buttons, one mechanism"); admin changes them through these calls:
//!
//! - `GET  /internal/automations` → `[`[`Automation`]`]` (listed or not)
//! - `GET  /internal/automations/{id}` → [`Automation`]
//! - `POST /internal/automations` [`AutomationInput`] (`name` and `price_per_token` required;
//!   `service_token` optional) → 201 [`Automation`]; 409 `service_token_in_use`
//! - `PUT|PATCH /internal/automations/{id}` [`AutomationInput`] (absent = unchanged, `null` or
//!   `""` clears a URL; `service_token` refused) → [`Automation`]
//! - `DELETE /internal/automations/{id}` → [`AutomationDeleted`]
//! - `POST /internal/automations/{id}/service-token` → 201 [`IssuedServiceToken`]
//! - `DELETE /internal/automations/{id}/service-token` → [`ServiceTokenRemoved`]
//!
//! And auth's re-check of a staff member's own password (the wizard's generate-token):
//! - `POST /internal/password-recheck` [`PasswordRecheck`] with the staff member's access token
//!   in `X-Acting-User-Token` → [`PasswordRechecked`]; a wrong password is 403
//!   `wrong_password` (never 401), too many wrong ones 429.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::nullable;

/// How every token the platform issues starts (then 43 base64url characters: 256 random bits),
/// so a leaked one is recognisable in logs and secret scanners.
pub const SERVICE_TOKEN_PREFIX: &str = "zst_";

/// The lengths a service token chosen by a client may have (the wizard's, docs/panels.md).
pub const SERVICE_TOKEN_MIN_LEN: usize = 32;
pub const SERVICE_TOKEN_MAX_LEN: usize = 256;

/// A chosen service token is usable as a header value as is: 32–256 visible ASCII characters
/// (no spaces: vendors send it in `X-Zimmer-Service-Token`, which is trimmed).
pub fn service_token_is_well_formed(token: &str) -> bool {
    (SERVICE_TOKEN_MIN_LEN..=SERVICE_TOKEN_MAX_LEN).contains(&token.len())
        && token.bytes().all(|b| (0x21..=0x7e).contains(&b))
}

/// The last four characters of a token: kept beside its hash for [`masked`].
pub fn service_token_tail(token: &str) -> String {
    let n = token.chars().count();
    token.chars().skip(n.saturating_sub(4)).collect()
}

/// `****` and the stored tail: how the dashboard shows a token (`service_token_masked`).
pub fn masked(tail: &str) -> String {
    format!("****{tail}")
}

/// A secret on the wire (a service token, a password): serialized as the plain string, never
/// printed by `Debug`, so a logged request or answer cannot leak it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "schema", schema(value_type = String))]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// An automation as staff see it: everything but the token hash.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct Automation {
    pub id: i64,
    pub name: String,
    pub description: String,
    /// `token_per_session`, `token_per_step` or `flat_fee` (our words; admin translates).
    pub pricing_type: String,
    /// Whole Rials.
    pub price_per_token: i64,
    pub demo_tokens: i64,
    /// `active` or `inactive`.
    pub status: String,
    pub is_listed: bool,
    pub health_status: String,
    pub last_health_at: Option<DateTime<Utc>>,
    pub provision_url: Option<String>,
    pub health_check_url: Option<String>,
    pub api_base_url: Option<String>,
    pub api_usage_url: Option<String>,
    pub api_kb_status_url: Option<String>,
    pub api_kb_reset_url: Option<String>,
    pub dashboard_url: Option<String>,
    pub has_service_token: bool,
    /// `****` + the token's last four characters; null without a token (or for a token
    /// issued before tails were stored: then `****` alone).
    pub service_token_masked: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// The body of create and update. On update every field is optional: absent stays as it is,
/// and for a URL `null` or `""` clears it. Nothing changes `is_listed` or health unless sent.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct AutomationInput {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// `token_per_session`, `token_per_step` or `flat_fee`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pricing_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub price_per_token: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub demo_tokens: Option<i64>,
    /// `active` or `inactive`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_listed: Option<bool>,
    #[serde(default, with = "nullable", skip_serializing_if = "Option::is_none")]
    pub provision_url: Option<Option<String>>,
    #[serde(default, with = "nullable", skip_serializing_if = "Option::is_none")]
    pub health_check_url: Option<Option<String>>,
    #[serde(default, with = "nullable", skip_serializing_if = "Option::is_none")]
    pub api_base_url: Option<Option<String>>,
    #[serde(default, with = "nullable", skip_serializing_if = "Option::is_none")]
    pub api_usage_url: Option<Option<String>>,
    #[serde(default, with = "nullable", skip_serializing_if = "Option::is_none")]
    pub api_kb_status_url: Option<Option<String>>,
    #[serde(default, with = "nullable", skip_serializing_if = "Option::is_none")]
    pub api_kb_reset_url: Option<Option<String>>,
    #[serde(default, with = "nullable", skip_serializing_if = "Option::is_none")]
    pub dashboard_url: Option<Option<String>>,
    /// Create only: a token the client chose (the wizard's, from admin's generate-token),
    /// [`service_token_is_well_formed`]; stored as its hash and tail like an issued one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_token: Option<Secret>,
}

/// The answer of `DELETE /internal/automations/{id}`: deleted when nobody has it (and nothing
/// else refers to it), otherwise unlisted, so its customers keep it and their tokens.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct AutomationDeleted {
    pub automation_id: i64,
    pub deleted: bool,
    pub unlisted: bool,
    /// Says which, for the dashboard's toast.
    pub message: String,
    /// The unlisted automation (absent when deleted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub automation: Option<Automation>,
}

/// A new service token, shown this once (only its hash and tail are kept); the previous one
/// stopped working when this was issued.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct IssuedServiceToken {
    pub automation_id: i64,
    pub service_token: Secret,
    pub service_token_masked: String,
    pub issued_at: DateTime<Utc>,
}

/// The answer of `DELETE /internal/automations/{id}/service-token`: the automation has no
/// token any more (consumption answers 401); it stays listed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct ServiceTokenRemoved {
    pub automation_id: i64,
    /// False when it had none (the call is idempotent).
    pub removed: bool,
    pub message: String,
}

/// `POST /internal/password-recheck` (auth): the acting staff member's own password.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct PasswordRecheck {
    pub password: Secret,
}

/// The password was right.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct PasswordRechecked {
    pub user_id: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absent_null_and_value_stay_apart() {
        let i: AutomationInput =
            serde_json::from_str(r#"{"api_base_url":null,"dashboard_url":"https://x.example"}"#)
                .unwrap_or_default();
        assert_eq!(i.api_base_url, Some(None));
        assert_eq!(i.dashboard_url, Some(Some("https://x.example".into())));
        assert_eq!(i.api_usage_url, None);
        let back = serde_json::to_value(&i).unwrap_or_default();
        assert_eq!(
            back,
            serde_json::json!({"api_base_url": null, "dashboard_url": "https://x.example"})
        );
    }

    #[test]
    fn secrets_are_not_printed_and_tokens_are_checked() {
        let s = Secret::new("zst_abcdefghijklmnopqrstuvwxyz0123456789");
        assert!(!format!("{s:?}").contains("abc"));
        assert_eq!(service_token_tail(s.expose()), "6789");
        assert_eq!(masked("6789"), "****6789");
        assert!(service_token_is_well_formed(s.expose()));
        assert!(!service_token_is_well_formed("short"));
        assert!(!service_token_is_well_formed(&"a b".repeat(20)));
        assert!(!service_token_is_well_formed(&"a".repeat(257)));
    }
}
