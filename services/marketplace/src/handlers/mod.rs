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

/// Bodies read by hand: malformed JSON is 400, the wrong shape 422, as for actix's own
/// extractor; an absent optional body is the default (the panel POSTs and PUTs without one).
pub use zimmer_http::{json_body, optional_json};
