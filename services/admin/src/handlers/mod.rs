//! HTTP handlers of admin and what several of them share: paging, dates in filters. A change
//! goes through [`crate::ops`] (call the owner, write the audit entry).

/// The [`ListPage`] of a list query with the usual `page`, `page_size`, `limit` and `offset`
/// fields (see [`list_page`]).
macro_rules! paged {
    ($query:expr, $whole:expr) => {
        $crate::handlers::list_page(
            $query.page,
            $query.page_size,
            $query.limit,
            $query.offset,
            $whole,
        )
    };
}

pub mod audit;
pub mod automations;
pub mod backups;
pub mod broadcast;
pub mod dashboard;
pub mod discounts;
pub mod fallbacks;
pub mod kb_monitoring;
pub mod keys;
pub mod knowledge;
pub mod payments;
pub mod system;
pub mod tickets;
pub mod tokens;
pub mod user_automations;
pub mod users;

use actix_web::HttpResponse;
use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use zimmer_http::{ApiError, HttpResult, PageQuery};

// The change shape lives in ops/; re-exported because every handler module uses it.
pub use crate::ops::{
    Audit, OwnerCall, STATS_CACHE_KEY, audit_after, call_owner, invalidate_stats,
};

pub fn page(page: Option<i64>, page_size: Option<i64>) -> PageQuery {
    PageQuery { page, page_size }
}

/// The rows one list call answers. The admin dashboard (README.md, "admin dashboard") has no
/// paging: a list call without any paging parameter answers the newest `whole` rows at once;
/// with `page`/`page_size` or `limit`/`offset` it pages as every other list (at most 100).
#[derive(Debug, Clone, Copy)]
pub struct ListPage {
    pub offset: i64,
    pub limit: i64,
    pub page: i64,
    pub page_size: i64,
}

pub fn list_page(
    page: Option<i64>,
    page_size: Option<i64>,
    limit: Option<i64>,
    offset: Option<i64>,
    whole: i64,
) -> ListPage {
    if let Some(limit) = limit {
        let q = PageQuery {
            page: None,
            page_size: Some(limit),
        };
        let offset = offset.unwrap_or(0).max(0);
        let size = q.page_size();
        return ListPage {
            offset,
            limit: size,
            page: offset / size + 1,
            page_size: size,
        };
    }
    if page.is_none() && page_size.is_none() && offset.is_none() {
        return ListPage {
            offset: 0,
            limit: whole,
            page: 1,
            page_size: whole,
        };
    }
    let q = PageQuery { page, page_size };
    ListPage {
        offset: offset.map_or_else(|| q.offset(), |o| o.max(0)),
        limit: q.limit(),
        page: q.page(),
        page_size: q.page_size(),
    }
}

/// A list answer both our clients and the admin dashboard read: `items` (ours) and the same
/// array under the dashboard's `key` (`payments`, `tickets`, ...), with `total` and
/// `total_count` (the whole count), `page` and `page_size`.
pub fn listed<T: Serialize>(key: &str, items: Vec<T>, total: i64, p: &ListPage) -> HttpResult {
    let items = serde_json::to_value(items).map_err(ApiError::internal)?;
    let mut body = serde_json::Map::new();
    body.insert(key.to_owned(), items.clone());
    body.insert("items".to_owned(), items);
    body.insert("total".to_owned(), total.into());
    body.insert("total_count".to_owned(), total.into());
    body.insert("page".to_owned(), p.page.into());
    body.insert("page_size".to_owned(), p.page_size.into());
    Ok(HttpResponse::Ok().json(body))
}

/// The newest rows a dashboard list answers without paging (README.md).
pub const WHOLE_LIST: i64 = 500;

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

/// The fields of `body` named in `keep` (those it has), for an audit entry.
pub fn picked(
    body: &serde_json::Value,
    keep: &[&str],
) -> serde_json::Map<String, serde_json::Value> {
    let mut out = serde_json::Map::new();
    if let Some(map) = body.as_object() {
        for k in keep {
            if let Some(v) = map.get(*k) {
                out.insert((*k).to_owned(), v.clone());
            }
        }
    }
    out
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
    fn lists_without_paging_answer_the_whole_list() {
        let p = list_page(None, None, None, None, 500);
        assert_eq!((p.offset, p.limit), (0, 500));
        let p = list_page(Some(2), Some(10), None, None, 500);
        assert_eq!((p.offset, p.limit, p.page), (10, 10, 2));
        let p = list_page(None, None, Some(1000), Some(30), 500);
        assert_eq!((p.offset, p.limit), (30, 100));
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
