//! Rows of the admin service's tables (schema.rs). Owned by that service: only it writes them.

use chrono::{DateTime, NaiveDate, Utc};
use diesel::prelude::*;

use crate::schema::{admin_audit_log, backup_logs, openai_keys};

/// OpenAI key statuses (the `openai_keys_status_check` constraint).
pub mod key_status {
    pub const ACTIVE: &str = "active";
    pub const DISABLED: &str = "disabled";
    pub const EXHAUSTED: &str = "exhausted";
    /// OpenAI refused the key (401/403 on a test); staff fix or replace it.
    pub const ERROR: &str = "error";
    pub const ALL: [&str; 4] = [ACTIVE, DISABLED, EXHAUSTED, ERROR];
}

/// An OpenAI API key. `key_ciphertext` is AES-256-GCM `nonce || ciphertext+tag`; the plaintext
/// never reaches the database and `key_tail` (last 4 characters) is all the API shows.
#[derive(Debug, Clone, Queryable, QueryableByName, Selectable, Identifiable)]
#[diesel(table_name = openai_keys)]
#[diesel(check_for_backend(diesel::pg::Pg))]
pub struct OpenAiKey {
    pub id: i64,
    pub alias: String,
    pub key_ciphertext: Vec<u8>,
    pub key_tail: String,
    pub status: String,
    pub daily_limit: Option<i64>,
    pub used_today: i64,
    pub usage_date: NaiveDate,
    pub last_used_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Null only for keys stored before keys belonged to an automation (never leased).
    pub automation_id: Option<i64>,
    pub rpm_limit: Option<i64>,
    /// Requests counted since `minute_window_start`; an older window reads as 0.
    pub used_requests_minute: i64,
    pub minute_window_start: DateTime<Utc>,
    pub failure_count: i64,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = openai_keys)]
pub struct NewOpenAiKey<'a> {
    pub alias: &'a str,
    pub key_ciphertext: &'a [u8],
    pub key_tail: &'a str,
    pub status: &'a str,
    pub daily_limit: Option<i64>,
    pub automation_id: Option<i64>,
    pub rpm_limit: Option<i64>,
}

/// One staff action. Append-only.
#[derive(Debug, Clone, Queryable, Selectable, Identifiable)]
#[diesel(table_name = admin_audit_log)]
#[diesel(check_for_backend(diesel::pg::Pg))]
pub struct AuditEntry {
    pub id: i64,
    pub actor_id: i64,
    pub action: String,
    pub target_type: String,
    pub target_id: Option<String>,
    pub details: serde_json::Value,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = admin_audit_log)]
pub struct NewAuditEntry<'a> {
    pub actor_id: i64,
    pub action: &'a str,
    pub target_type: &'a str,
    pub target_id: Option<&'a str>,
    pub details: &'a serde_json::Value,
}

/// Backup run statuses (the `backup_logs_status_check` constraint).
pub mod backup_status {
    pub const RUNNING: &str = "running";
    pub const SUCCESS: &str = "success";
    pub const FAILED: &str = "failed";
}

/// One PostgreSQL backup run (a `pg_dump` custom-format archive in `BACKUP_DIR`).
/// `file_path` is relative to that directory and never shown.
#[derive(Debug, Clone, Queryable, Selectable, Identifiable)]
#[diesel(table_name = backup_logs)]
#[diesel(check_for_backend(diesel::pg::Pg))]
pub struct BackupLog {
    pub id: i64,
    pub backup_date: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub database_name: String,
    pub file_name: String,
    pub file_path: String,
    pub file_size: i64,
    pub checksum_sha256: Option<String>,
    pub status: String,
    pub error: Option<String>,
    pub storage_location: String,
    pub verified: bool,
    pub verified_at: Option<DateTime<Utc>>,
    pub verify_method: Option<String>,
    pub trigger: String,
    pub actor_id: Option<i64>,
    pub created_at: DateTime<Utc>,
}

/// A run as it starts (`running`).
#[derive(Debug, Insertable)]
#[diesel(table_name = backup_logs)]
pub struct NewBackupLog<'a> {
    pub database_name: &'a str,
    pub file_name: &'a str,
    pub file_path: &'a str,
    pub trigger: &'a str,
    pub actor_id: Option<i64>,
}
