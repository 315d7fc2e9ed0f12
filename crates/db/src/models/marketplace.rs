//! Rows of the marketplace service's tables (schema.rs). Owned by that service: only it writes them.

use chrono::{DateTime, Utc};
use diesel::prelude::*;

use zimmer_contracts::internal::automations as contract;

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

/// The row as staff see it, in the marketplace's internal API and the admin's own reads alike:
/// everything but the token hash; the token as `****` + its tail.
impl From<Automation> for contract::Automation {
    fn from(a: Automation) -> Self {
        let has_service_token = a.service_token_hash.is_some();
        let service_token_masked = has_service_token
            .then(|| contract::masked(a.service_token_tail.as_deref().unwrap_or_default()));
        Self {
            id: a.id,
            name: a.name,
            description: a.description,
            pricing_type: a.pricing_type,
            price_per_token: a.price_per_token,
            demo_tokens: a.demo_tokens,
            status: a.status,
            is_listed: a.is_listed,
            health_status: a.health_status,
            last_health_at: a.last_health_at,
            provision_url: a.provision_url,
            health_check_url: a.health_check_url,
            api_base_url: a.api_base_url,
            api_usage_url: a.api_usage_url,
            api_kb_status_url: a.api_kb_status_url,
            api_kb_reset_url: a.api_kb_reset_url,
            dashboard_url: a.dashboard_url,
            has_service_token,
            service_token_masked,
            created_at: a.created_at,
            updated_at: a.updated_at,
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn row(hash: Option<Vec<u8>>, tail: Option<&str>) -> Automation {
        let now = Utc::now();
        Automation {
            id: 7,
            name: "Bot".into(),
            description: String::new(),
            pricing_type: "flat_fee".into(),
            price_per_token: 5,
            demo_tokens: 0,
            status: "active".into(),
            is_listed: true,
            health_status: "unknown".into(),
            last_health_at: None,
            provision_url: None,
            health_check_url: None,
            service_token_hash: hash,
            created_at: now,
            updated_at: now,
            api_base_url: None,
            api_usage_url: None,
            api_kb_status_url: None,
            api_kb_reset_url: None,
            dashboard_url: None,
            service_token_tail: tail.map(str::to_owned),
        }
    }

    #[test]
    fn staff_see_the_token_only_as_its_masked_tail() {
        let with = contract::Automation::from(row(Some(vec![1; 32]), Some("WXYZ")));
        assert!(with.has_service_token);
        assert_eq!(with.service_token_masked.as_deref(), Some("****WXYZ"));
        // A token issued before tails were stored.
        let old = contract::Automation::from(row(Some(vec![1; 32]), None));
        assert_eq!(old.service_token_masked.as_deref(), Some("****"));
        let without = contract::Automation::from(row(None, Some("WXYZ")));
        assert!(!without.has_service_token);
        assert_eq!(without.service_token_masked, None);
    }
}
