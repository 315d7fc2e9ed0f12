//! HTTP handlers of admin and what several of them share: paging, dates in filters, the audit
//! entry after a call to another service, cache invalidation.

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
pub mod keys;
pub mod openapi;
pub mod payments;
pub mod system;
pub mod tickets;
pub mod tokens;
pub mod user_automations;
pub mod users;

use std::borrow::Cow;

use actix_web::HttpResponse;
use chrono::{DateTime, NaiveDate, Utc};
use reqwest::Method;
use serde::Serialize;
use zimmer_db::models::admin::NewAuditEntry;
use zimmer_http::{ApiError, HttpResult, PageQuery};

use crate::{
    AppState,
    clients::{Reply, Service},
    queries,
    rbac::Staff,
};

/// The Redis key of the cached dashboard stats.
pub const STATS_CACHE_KEY: &str = "admin:stats:dashboard:v1";

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

/// What an action did, for the audit log.
pub struct Audit<'a> {
    pub action: &'a str,
    pub target_type: &'a str,
    pub target_id: Option<String>,
    pub details: serde_json::Value,
}

impl<'a> Audit<'a> {
    pub fn new(
        action: &'a str,
        target_type: &'a str,
        target_id: Option<impl ToString>,
        details: serde_json::Value,
    ) -> Self {
        Self {
            action,
            target_type,
            target_id: target_id.map(|id| id.to_string()),
            details,
        }
    }
}

/// A call to the owner's internal API that changes its data, made for a staff member by
/// [`call_owner`].
pub struct OwnerCall<'a> {
    service: Service,
    method: Method,
    path: &'a str,
    body: Option<Cow<'a, serde_json::Value>>,
    acting_token: Option<&'a str>,
    idempotency_key: Option<&'a str>,
    changes_stats: bool,
}

impl<'a> OwnerCall<'a> {
    pub fn new(service: Service, method: Method, path: &'a str) -> Self {
        Self {
            service,
            method,
            path,
            body: None,
            acting_token: None,
            idempotency_key: None,
            changes_stats: false,
        }
    }

    /// The JSON body (none: no body, as a `DELETE`).
    pub fn body(mut self, body: &'a serde_json::Value) -> Self {
        self.body = Some(Cow::Borrowed(body));
        self
    }

    /// [`OwnerCall::body`], made for this call.
    pub fn json(mut self, body: serde_json::Value) -> Self {
        self.body = Some(Cow::Owned(body));
        self
    }

    /// Sent with the staff member's own access token (see [`Upstreams::send_acting`]).
    ///
    /// [`Upstreams::send_acting`]: crate::clients::Upstreams::send_acting
    pub fn acting(mut self, token: &'a str) -> Self {
        self.acting_token = Some(token);
        self
    }

    /// A retried request (same key) is audited once.
    pub fn idempotent(mut self, key: &'a str) -> Self {
        self.idempotency_key = Some(key);
        self
    }

    /// The change moves the dashboard's numbers: the cached stats are dropped after it.
    pub fn changes_stats(mut self) -> Self {
        self.changes_stats = true;
        self
    }
}

/// The shape every admin change has: call the owner (its refusal mapped for the admin caller
/// by [`crate::clients`] and returned as is), then write the audit entry `audit` makes from
/// its answer (see [`audit_after`]), then drop the cached stats if asked. The owner's answer
/// is returned for the handler to shape.
pub async fn call_owner<'a>(
    state: &AppState,
    staff: &Staff,
    call: OwnerCall<'_>,
    audit: impl FnOnce(&Reply) -> Audit<'a>,
) -> Result<Reply, ApiError> {
    let reply = state
        .upstreams
        .call_as(
            call.service,
            call.method,
            call.path,
            &[],
            call.body.as_deref(),
            call.acting_token,
        )
        .await?;
    audit_after(state, staff, audit(&reply), call.idempotency_key).await;
    if call.changes_stats {
        invalidate_stats(state).await;
    }
    Ok(reply)
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
