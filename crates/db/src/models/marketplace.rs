//! Rows of the marketplace service's tables (schema.rs). Owned by that service: only it writes them.

use chrono::{DateTime, Utc};
use diesel::prelude::*;

use crate::schema::{automations, token_ledger, user_automations};

/// An automation of the catalogue, as stored (the service token only as its SHA-256).
#[derive(Debug, Clone, Queryable, Selectable, Identifiable)]
#[diesel(table_name = automations)]
#[diesel(check_for_backend(diesel::pg::Pg))]
pub struct Automation {
    pub id: i64,
    pub name: String,
    pub description: String,
    pub pricing_type: String,
    pub price_per_token: i64,
    pub demo_tokens: i64,
    pub status: String,
    pub is_listed: bool,
    pub health_status: String,
    pub last_health_at: Option<DateTime<Utc>>,
    pub provision_url: Option<String>,
    pub health_check_url: Option<String>,
    pub service_token_hash: Option<Vec<u8>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub api_base_url: Option<String>,
    pub api_usage_url: Option<String>,
    pub api_kb_status_url: Option<String>,
    pub api_kb_reset_url: Option<String>,
    pub dashboard_url: Option<String>,
    /// The token's last four characters (for `service_token_masked`), set with the hash.
    pub service_token_tail: Option<String>,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = automations)]
pub struct NewAutomation<'a> {
    pub name: &'a str,
    pub description: &'a str,
    pub pricing_type: &'a str,
    pub price_per_token: i64,
    pub demo_tokens: i64,
    pub status: &'a str,
    pub is_listed: bool,
    pub provision_url: Option<&'a str>,
    pub health_check_url: Option<&'a str>,
    pub api_base_url: Option<&'a str>,
    pub api_usage_url: Option<&'a str>,
    pub api_kb_status_url: Option<&'a str>,
    pub api_kb_reset_url: Option<&'a str>,
    pub dashboard_url: Option<&'a str>,
    pub service_token_hash: Option<&'a [u8]>,
    pub service_token_tail: Option<&'a str>,
}

/// A partial update: `None` leaves the column alone; `Some(None)` clears a nullable one.
#[derive(Debug, Default, AsChangeset)]
#[diesel(table_name = automations)]
pub struct AutomationChanges {
    pub name: Option<String>,
    pub description: Option<String>,
    pub pricing_type: Option<String>,
    pub price_per_token: Option<i64>,
    pub demo_tokens: Option<i64>,
    pub status: Option<String>,
    pub is_listed: Option<bool>,
    pub provision_url: Option<Option<String>>,
    pub health_check_url: Option<Option<String>>,
    pub api_base_url: Option<Option<String>>,
    pub api_usage_url: Option<Option<String>>,
    pub api_kb_status_url: Option<Option<String>>,
    pub api_kb_reset_url: Option<Option<String>>,
    pub dashboard_url: Option<Option<String>>,
    pub updated_at: Option<DateTime<Utc>>,
}

/// One customer's automation with its balances (caches of the ledger).
#[derive(Debug, Clone, Queryable, Selectable, Identifiable)]
#[diesel(table_name = user_automations)]
#[diesel(check_for_backend(diesel::pg::Pg))]
pub struct UserAutomation {
    pub id: i64,
    pub user_id: i64,
    pub automation_id: i64,
    /// Legacy plaintext from before bot tokens were sealed; the marketplace re-seals such
    /// rows and clears this column. Never written with a value any more.
    pub telegram_bot_token: Option<String>,
    /// The bot token sealed with AES-256-GCM (`zimmer-sealing`), bound to this row's id.
    pub telegram_bot_token_sealed: Option<Vec<u8>>,
    /// HMAC-SHA256 of the token: what "one bot, one automation" is checked on (unique).
    pub telegram_bot_token_hash: Option<Vec<u8>>,
    pub tokens_remaining: i64,
    pub demo_tokens: i64,
    pub is_demo_active: bool,
    pub demo_expired: bool,
    pub status: String,
    pub integration_status: String,
    pub provisioned_at: Option<DateTime<Utc>>,
    pub low_alert_sent: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// One append-only ledger entry.
#[derive(Debug, Clone, Queryable, Selectable, Identifiable)]
#[diesel(table_name = token_ledger)]
#[diesel(check_for_backend(diesel::pg::Pg))]
pub struct LedgerEntry {
    pub id: i64,
    pub user_automation_id: i64,
    pub kind: String,
    pub delta: i64,
    pub demo_delta: i64,
    pub balance_after: i64,
    pub demo_balance_after: i64,
    pub source_key: String,
    pub usage_type: Option<String>,
    pub meta: serde_json::Value,
    pub actor_id: Option<i64>,
    pub reason: Option<String>,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = token_ledger)]
pub struct NewLedgerEntry<'a> {
    pub user_automation_id: i64,
    pub kind: &'a str,
    pub delta: i64,
    pub demo_delta: i64,
    pub balance_after: i64,
    pub demo_balance_after: i64,
    pub source_key: &'a str,
    pub usage_type: Option<&'a str>,
    pub meta: &'a serde_json::Value,
    pub actor_id: Option<i64>,
    pub reason: Option<&'a str>,
}
