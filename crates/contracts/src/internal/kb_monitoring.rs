//! Internal API types: KB monitoring (see internal/mod.rs), owned by the marketplace and called
//! by admin (docs/panels.md "KB monitoring: status, reset, history").
//!
//! - `GET  /internal/kb/status?automation_id=` → [`KbStatusReport`]
//! - `POST /internal/kb/reset/{user_automation_id}` → [`KbResetAnswer`]
//! - `GET  /internal/kb/history?automation_id=&user_id=&from_date=&to_date=&page=&limit=` →
//!   `[KbHistoryItem]` (a bare array, newest first)
//! - `GET  /internal/kb/history/stats?automation_id=&user_id=&from_date=&to_date=` →
//!   [`KbHistoryStats`]
//! - `GET  /internal/kb/history/chart-data?automation_id=&user_id=&days=` → [`KbChart`]

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The knowledge base state of every customer of one automation, as its vendor reported it
/// just now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct KbStatusReport {
    pub automation_id: i64,
    pub automation_name: String,
    pub total_users: i64,
    /// In the order the dashboard shows them (user automation id ascending); a reset by
    /// position refers to this order.
    pub kb_statuses: Vec<KbStatusRow>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct KbStatusRow {
    pub user_id: i64,
    pub user_automation_id: i64,
    /// The customer's name.
    pub name: String,
    /// healthy, warning, problematic or error.
    pub kb_health: String,
    pub last_updated: DateTime<Utc>,
    pub backup_status: bool,
    /// Always an array (empty when the vendor reported none).
    pub error_logs: Vec<String>,
    pub supports_reset: bool,
}

/// What a reset of one customer's knowledge base did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct KbResetAnswer {
    pub message: String,
    pub user_automation_id: i64,
    pub automation_id: i64,
    pub automation_name: String,
    /// The vendor's `status`, when it gave one.
    pub reset_status: Option<String>,
}

/// One row of `kb_status_history`, named.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct KbHistoryItem {
    pub id: i64,
    pub user_id: i64,
    pub user_name: Option<String>,
    pub user_automation_id: i64,
    pub automation_id: i64,
    pub automation_name: Option<String>,
    pub kb_health: String,
    pub backup_status: bool,
    pub error_logs: Option<Vec<String>>,
    /// When the check was made (`checked_at`).
    pub timestamp: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct KbHistoryStats {
    pub total_records: i64,
    pub healthy_count: i64,
    pub warning_count: i64,
    /// Problematic and error rows.
    pub problematic_count: i64,
    /// Rows whose `backup_status` is true.
    pub backup_count: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct KbChart {
    /// One point per UTC day, oldest first, zero-filled.
    pub chart_data: Vec<KbChartPoint>,
    pub date_range: KbDateRange,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct KbChartPoint {
    /// YYYY-MM-DD (UTC).
    pub date: String,
    pub healthy: i64,
    pub warning: i64,
    /// Problematic and error rows, as in [`KbHistoryStats`].
    pub problematic: i64,
    pub total: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct KbDateRange {
    /// YYYY-MM-DD, the first day charted.
    pub start_date: String,
    /// YYYY-MM-DD, today (UTC).
    pub end_date: String,
}
