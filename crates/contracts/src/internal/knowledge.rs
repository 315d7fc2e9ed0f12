//! Internal API types: knowledge (see internal/mod.rs). The marketplace owns knowledge base
//! entries, KB templates and the fallback log (docs/panels.md "Knowledge base entries", "KB
//! templates", "Fallback log"); admin lists and changes them through these calls:
//!
//! - `GET  /internal/knowledge?client_id=&category=&offset=&limit=` → [`KnowledgeList`]
//! - `POST /internal/knowledge` [`NewKnowledgeEntry`] → 201 [`KnowledgeEntry`]
//! - `GET  /internal/kb-templates?automation_id=&category=&offset=&limit=` → [`TemplateList`]
//! - `POST /internal/kb-templates` [`TemplateInput`] → 201 [`KbTemplate`]
//! - `PUT  /internal/kb-templates/{id}` [`TemplateInput`] (full replace) → [`KbTemplate`]
//! - `DELETE /internal/kb-templates/{id}` → 204
//! - `GET  /internal/fallbacks?client_id=&offset=&limit=` → [`FallbackList`]
//! - `PUT  /internal/fallbacks/{id}` [`FallbackStatusChange`] → [`Fallback`]

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::List;

/// Paging of the internal lists: `offset` ≥ 0, `limit` 1–[`MAX_LIMIT`] (default
/// [`DEFAULT_LIMIT`]); the caller decides how many rows a page is.
pub const DEFAULT_LIMIT: i64 = 100;
pub const MAX_LIMIT: i64 = 500;

/// `?offset=&limit=` of the three lists below, read beside each list's own filters (a second
/// query extractor on the same query string), so the paging rule is stated once.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema, utoipa::IntoParams))]
#[cfg_attr(feature = "schema", into_params(parameter_in = Query))]
pub struct ListWindow {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<i64>,
}

impl ListWindow {
    /// `(offset, limit)` with the rule above applied: out-of-range values are clamped, not
    /// refused (the caller is our own admin service).
    pub fn bounds(&self) -> (i64, i64) {
        (
            self.offset.unwrap_or(0).max(0),
            self.limit.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT),
        )
    }
}

// ---------------------------------------------------------------- knowledge base entries

/// The query of `GET /internal/knowledge`: `client_id` exact, `category` a case-insensitive
/// substring; absent or blank filters are ignored.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema, utoipa::IntoParams))]
#[cfg_attr(feature = "schema", into_params(parameter_in = Query))]
pub struct KnowledgeQuery {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
}

/// `POST /internal/knowledge`: `client_id` must name an existing, not deleted account (404);
/// `category` 1–100 characters after trimming, `answer` 1–5,000, no control characters (422).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct NewKnowledgeEntry {
    pub client_id: i64,
    pub category: String,
    pub answer: String,
    /// The staff member who wrote it (admin's caller).
    #[serde(default)]
    pub created_by: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct KnowledgeEntry {
    pub id: i64,
    pub client_id: i64,
    /// The customer's name (null if unknown).
    #[serde(default)]
    pub client_name: Option<String>,
    pub category: String,
    pub answer: String,
    #[serde(default)]
    pub created_by: Option<i64>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Newest first; `total` counts every row matching the filters.
pub type KnowledgeList = List<KnowledgeEntry>;

// ---------------------------------------------------------------- KB templates

/// The query of `GET /internal/kb-templates`: `automation_id` exact, `category` a
/// case-insensitive substring.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema, utoipa::IntoParams))]
#[cfg_attr(feature = "schema", into_params(parameter_in = Query))]
pub struct TemplateQuery {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub automation_id: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
}

/// `POST /internal/kb-templates` and `PUT /internal/kb-templates/{id}` (a full replace of the
/// four fields): unknown automation → 404; `category` ≤ 100 characters, `""` or null = none;
/// `question` 1–500; `answer` 1–5,000 (422).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct TemplateInput {
    pub automation_id: i64,
    #[serde(default)]
    pub category: Option<String>,
    pub question: String,
    pub answer: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct KbTemplate {
    pub id: i64,
    pub automation_id: i64,
    pub category: Option<String>,
    pub question: String,
    pub answer: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

pub type TemplateList = List<KbTemplate>;

// ---------------------------------------------------------------- fallback log

/// The query of `GET /internal/fallbacks`: `client_id` is the customer (the fallback's
/// `user_id`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema, utoipa::IntoParams))]
#[cfg_attr(feature = "schema", into_params(parameter_in = Query))]
pub struct FallbackQuery {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<i64>,
}

/// Fallback statuses.
pub const FALLBACK_OPEN: &str = "open";
pub const FALLBACK_RESOLVED: &str = "resolved";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct Fallback {
    pub id: i64,
    pub user_automation_id: i64,
    pub user_id: i64,
    pub automation_id: i64,
    pub message: String,
    pub error_type: Option<String>,
    /// `open` or `resolved`.
    pub status: String,
    pub created_at: DateTime<Utc>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub resolved_by: Option<i64>,
}

/// Newest first.
pub type FallbackList = List<Fallback>;

/// `PUT /internal/fallbacks/{id}`: `resolved` resolves (records who and when), `open`
/// reopens; the same status again changes nothing. Unknown id → 404, another status → 422.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct FallbackStatusChange {
    pub status: String,
    /// The staff member (admin's caller).
    pub actor_id: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_window_defaults_and_clamps() {
        let window = |offset, limit| ListWindow { offset, limit }.bounds();
        assert_eq!(window(None, None), (0, DEFAULT_LIMIT));
        assert_eq!(window(Some(-3), Some(0)), (0, 1));
        assert_eq!(window(Some(40), Some(MAX_LIMIT + 1)), (40, MAX_LIMIT));
        assert_eq!(window(Some(7), Some(25)), (7, 25));
    }
}
