//! HTTP handlers of the marketplace and the views several of them share.

pub mod catalogue;
pub mod consume;
pub mod fallbacks;
pub mod internal;
pub mod kb_monitoring;
pub mod knowledge;
pub mod mine;
pub mod usage;

use chrono::{DateTime, Utc};
use serde::Serialize;
use zimmer_db::models::marketplace::UserAutomation;
use zimmer_http::ApiError;

use crate::{domain::bot_token::BotTokenVault, queries::catalogue::CatalogueItem};

/// A customer's automation in full (`{user_automation: …}` of docs/panels.md).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct UserAutomationView {
    pub id: i64,
    pub automation_id: i64,
    pub automation: CatalogueItem,
    pub name: String,
    pub description: String,
    /// Paid tokens left.
    pub tokens_remaining: i64,
    /// Demo tokens left.
    pub demo_tokens: i64,
    /// What can still be spent (paid + active demo).
    pub total_tokens: i64,
    pub is_demo_active: bool,
    pub demo_expired: bool,
    pub status: String,
    pub integration_status: String,
    pub provisioned_at: Option<DateTime<Utc>>,
    /// Masked: the bot id and the last 4 characters only.
    pub telegram_bot_token: Option<String>,
    pub created_at: DateTime<Utc>,
}

impl UserAutomationView {
    pub fn new(ua: UserAutomation, automation: CatalogueItem, vault: &BotTokenVault) -> Self {
        let total = crate::domain::ledger::balances(&ua).total();
        let telegram_bot_token = vault.masked(&ua);
        Self {
            id: ua.id,
            automation_id: ua.automation_id,
            name: automation.name.clone(),
            description: automation.description.clone(),
            automation,
            tokens_remaining: ua.tokens_remaining,
            demo_tokens: ua.demo_tokens,
            total_tokens: total,
            is_demo_active: ua.is_demo_active,
            demo_expired: ua.demo_expired,
            status: ua.status,
            integration_status: ua.integration_status,
            provisioned_at: ua.provisioned_at,
            telegram_bot_token,
            created_at: ua.created_at,
        }
    }
}

/// A JSON body that may be absent (the panel POSTs and PUTs without one): empty → default.
/// Malformed JSON is 400, the wrong shape 422, as for actix's own extractor.
pub fn optional_json<T: serde::de::DeserializeOwned + Default>(raw: &[u8]) -> Result<T, ApiError> {
    if raw.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    json_body(raw)
}

pub fn json_body<T: serde::de::DeserializeOwned>(raw: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(raw).map_err(|e| {
        if e.is_data() {
            let msg = e.to_string();
            let msg = msg.rfind(" at line ").map_or(msg.as_str(), |i| &msg[..i]);
            ApiError::new(
                actix_web::http::StatusCode::UNPROCESSABLE_ENTITY,
                "validation_error",
                format!("Invalid request body: {msg}"),
            )
        } else {
            ApiError::bad_request("Malformed JSON body")
        }
    })
}
