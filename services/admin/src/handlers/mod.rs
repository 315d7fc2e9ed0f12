//! HTTP handlers of admin and what several of them share: paging, dates in filters, the audit
//! entry after a call to another service, cache invalidation.

pub mod audit;
pub mod automations;
pub mod broadcast;
pub mod dashboard;
pub mod discounts;
pub mod keys;
pub mod openapi;
pub mod payments;
pub mod system;
pub mod tickets;
pub mod tokens;
pub mod user_automations;
pub mod users;

use chrono::{DateTime, NaiveDate, Utc};
use zimmer_db::models::admin::NewAuditEntry;
use zimmer_http::{ApiError, PageQuery};

use crate::{AppState, queries, rbac::Staff};

/// The Redis key of the cached dashboard stats.
pub const STATS_CACHE_KEY: &str = "admin:stats:dashboard:v1";

pub fn page(page: Option<i64>, page_size: Option<i64>) -> PageQuery {
    PageQuery { page, page_size }
}

/// A date filter: `2026-11-25` (the start of that UTC day, or with `end` the start of the next
/// day, so `to` includes the whole day) or an RFC 3339 instant.
pub fn parse_time(
    field: &'static str,
    raw: Option<&str>,
    end: bool,
) -> Result<Option<DateTime<Utc>>, ApiError> {
    let Some(raw) = raw.map(str::trim).filter(|s| !s.is_empty()) else {
        return Ok(None);
    };
    if let Ok(t) = DateTime::parse_from_rfc3339(raw) {
        return Ok(Some(t.with_timezone(&Utc)));
    }
    let day = NaiveDate::parse_from_str(raw, "%Y-%m-%d")
        .map_err(|_| ApiError::invalid(field, "must be a date (YYYY-MM-DD) or an RFC 3339 time"))?;
    let day = if end {
        day.succ_opt().unwrap_or(day)
    } else {
        day
    };
    Ok(day.and_hms_opt(0, 0, 0).map(|t| t.and_utc()))
}

/// A trimmed, non-empty search text of at most 100 characters.
pub fn search_text(raw: Option<&str>) -> Result<Option<String>, ApiError> {
    match raw.map(str::trim).filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(s) if s.chars().count() > 100 => Err(ApiError::invalid("search", "is too long")),
        Some(s) => Ok(Some(s.to_owned())),
    }
}

/// One of `allowed`, or a 422 naming them.
pub fn one_of(
    field: &'static str,
    raw: Option<&str>,
    allowed: &[&str],
) -> Result<Option<String>, ApiError> {
    match raw.map(str::trim).filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(v) if allowed.contains(&v) => Ok(Some(v.to_owned())),
        Some(_) => Err(ApiError::invalid(
            field,
            format!("must be one of {}", allowed.join(", ")),
        )),
    }
}

/// What an action did, for the audit log.
pub struct Audit<'a> {
    pub action: &'a str,
    pub target_type: &'a str,
    pub target_id: Option<String>,
    pub details: serde_json::Value,
}

/// Records an action another service carried out for `staff` (after its call succeeded).
/// With an idempotency key, a retried request is recorded once. The change has happened
/// by now: a failure to write the entry must not turn it into an error the dashboard would
/// retry, so it is logged (with the whole entry, the fallback trail) instead of returned.
pub async fn audit_after(
    state: &AppState,
    staff: &Staff,
    audit: Audit<'_>,
    idempotency_key: Option<&str>,
) {
    let entry = NewAuditEntry {
        actor_id: staff.id(),
        action: audit.action,
        target_type: audit.target_type,
        target_id: audit.target_id.as_deref(),
        details: &audit.details,
    };
    let result = async {
        let mut conn = state.platform.pool.get().await?;
        match idempotency_key {
            Some(key) => queries::audit::record_once(&mut conn, &entry, key)
                .await
                .map(drop)?,
            None => queries::audit::record(&mut conn, &entry).await?,
        }
        Ok::<_, ApiError>(())
    }
    .await;
    if let Err(e) = result {
        tracing::error!(
            error = %e,
            actor_id = entry.actor_id,
            action = entry.action,
            target_type = entry.target_type,
            target_id = ?entry.target_id,
            details = %entry.details,
            "audit entry could not be written"
        );
    }
}

/// Drops the cached dashboard after an action that changes its numbers.
pub async fn invalidate_stats(state: &AppState) {
    state.platform.redis.delete(&[STATS_CACHE_KEY]).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_in_filters() {
        let from = parse_time("from", Some("2026-11-25"), false).ok().flatten();
        let to = parse_time("to", Some("2026-11-25"), true).ok().flatten();
        assert_eq!(
            from.map(|t| t.to_rfc3339()).as_deref(),
            Some("2026-11-25T00:00:00+00:00")
        );
        assert_eq!(
            to.map(|t| t.to_rfc3339()).as_deref(),
            Some("2026-11-26T00:00:00+00:00")
        );
        assert!(parse_time("from", Some("yesterday"), false).is_err());
        assert!(matches!(parse_time("from", Some(" "), false), Ok(None)));
        let t = parse_time("from", Some("2026-11-25T10:00:00+03:30"), false)
            .ok()
            .flatten();
        assert_eq!(
            t.map(|t| t.to_rfc3339()).as_deref(),
            Some("2026-11-25T06:30:00+00:00")
        );
    }

    #[test]
    fn enumerations_and_search() {
        assert!(one_of("status", Some("x"), &["a", "b"]).is_err());
        assert_eq!(
            one_of("status", Some(" a "), &["a"])
                .ok()
                .flatten()
                .as_deref(),
            Some("a")
        );
        assert!(search_text(Some(&"x".repeat(101))).is_err());
    }
}
