//! Internal API types: OpenAI keys (see internal/mod.rs), owned by admin and called by the
//! service that runs an automation's OpenAI calls (docs/panels.md "OpenAI keys: per-automation
//! limits and test"; the decision is under "Counted when used").
//!
//! - `POST /internal/openai-keys/lease` [`LeaseRequest`] → [`LeaseGrant`] (200), or 404 when the
//!   automation has no usable key, 429 when every usable key is at its per-minute or daily limit.

use serde::{Deserialize, Serialize};

/// One request about to be sent to OpenAI for `automation_id`, costing up to `tokens` tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct LeaseRequest {
    pub automation_id: i64,
    /// Tokens counted against the key's daily cap now (the caller's upper bound, e.g. the
    /// prompt plus `max_tokens`); 0 counts only the request.
    #[serde(default)]
    pub tokens: i64,
}

/// The key to use for that one request, already counted. `api_key` is the plaintext: only
/// over the internal network, never logged, never stored by the caller.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct LeaseGrant {
    pub key_id: i64,
    pub automation_id: i64,
    pub alias: String,
    pub api_key: String,
    pub rpm_limit: Option<i64>,
    /// Requests counted in the current minute, this one included.
    pub used_requests_minute: i64,
    pub daily_token_limit: Option<i64>,
    /// Tokens counted today (UTC), this request's included.
    pub used_tokens_today: i64,
    /// `active`, or `exhausted` when this request reached the daily cap.
    pub status: String,
}

impl std::fmt::Debug for LeaseGrant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LeaseGrant")
            .field("key_id", &self.key_id)
            .field("automation_id", &self.automation_id)
            .field("alias", &self.alias)
            .field("api_key", &"***")
            .field("status", &self.status)
            .finish_non_exhaustive()
    }
}
