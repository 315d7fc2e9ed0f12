//! Internal API types: staff token adjustments (see internal/mod.rs), owned by the marketplace
//! (the ledger) and called by admin (`POST /api/admin/tokens/adjust`).
//!
//! - `POST /internal/tokens/adjust` [`AdjustRequest`] → [`AdjustAnswer`]: 201 when applied, 200
//!   (`Idempotent-Replayed: true`) with the first call's answer when the key was applied
//!   before; 409 when the key was used for something else or the balance would go below zero;
//!   403 `self_adjustment` when the actor owns the user automation.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// An adjustment of a paid balance by staff member `actor_id`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct AdjustRequest {
    pub user_automation_id: i64,
    /// Tokens to add (negative: remove); never zero.
    pub delta: i64,
    pub reason: String,
    /// One adjustment per key (1 to 200 visible ASCII characters): a repeat answers the first
    /// one's result.
    pub idempotency_key: String,
    pub actor_id: i64,
}

/// The adjustment as its ledger entry records it (so a replay answers the same).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct AdjustAnswer {
    pub ledger_id: i64,
    pub user_automation_id: i64,
    pub delta: i64,
    /// The paid balance after the adjustment.
    pub tokens_remaining: i64,
    pub demo_tokens: i64,
    pub reason: Option<String>,
    pub actor_id: Option<i64>,
    pub created_at: DateTime<Utc>,
}
