//! HTTP handlers of admin and what several of them share: paging, dates in filters. A change
//! goes through [`crate::ops`] (call the owner, write the audit entry).

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

use std::ops::Deref;

use actix_web::{FromRequest, HttpRequest, HttpResponse, dev::Payload, http::StatusCode, web};
use futures_util::future::LocalBoxFuture;
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use zimmer_http::{ApiError, HttpResult, PageQuery};

/// A list's query string: the list's own filters `F` (reached through `Deref`) and its paging
/// fields `P` ([`Paging`] or [`PageOnly`]), each read from the whole query string as
/// `web::Query` reads it (its errors too). Two structs rather than `#[serde(flatten)]`: the
/// query string deserializer cannot flatten numbers.
#[derive(Debug)]
pub struct Listing<F, P = Paging> {
    pub filter: F,
    pub paging: P,
}

impl<F> Listing<F> {
    /// The rows to answer; `whole` without any paging parameter (see [`list_page`]).
    pub fn page(&self, whole: i64) -> ListPage {
        self.paging.rows(whole)
    }
}

impl<F, P> Deref for Listing<F, P> {
    type Target = F;

    fn deref(&self) -> &F {
        &self.filter
    }
}

impl<F, P> FromRequest for Listing<F, P>
where
    F: DeserializeOwned + 'static,
    P: DeserializeOwned + 'static,
{
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let filter = web::Query::<F>::extract(&req).await?.into_inner();
            let paging = web::Query::<P>::extract(&req).await?.into_inner();
            Ok(Self { filter, paging })
        })
    }
}

/// The paging fields of a dashboard list's query (see [`list_page`]).
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Paging {
    /// The page, from 1; without any paging parameter the list answers its newest 500 rows.
    pub page: Option<i64>,
    /// Rows per page (default 20, at most 100).
    pub page_size: Option<i64>,
    /// Instead of paging: at most this many rows (at most 100), wins over `page`.
    pub limit: Option<i64>,
    /// Rows to skip.
    pub offset: Option<i64>,
}

impl Paging {
    /// The rows to answer; `whole` without any paging parameter.
    pub fn rows(&self, whole: i64) -> ListPage {
        list_page(self.page, self.page_size, self.limit, self.offset, whole)
    }
}

/// `page` and `page_size` only, for the lists that page as every other API (no `limit`).
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageOnly {
    /// The page, from 1.
    pub page: Option<i64>,
    /// Rows per page (default 20, at most 100).
    pub page_size: Option<i64>,
}

impl PageOnly {
    pub fn query(&self) -> PageQuery {
        PageQuery {
            page: self.page,
            page_size: self.page_size,
        }
    }
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

/// `v` as JSON, to send or to shape: our types always serialize, so a failure is a bug (500).
pub fn to_json<T: Serialize>(v: &T) -> Result<serde_json::Value, ApiError> {
    serde_json::to_value(v).map_err(ApiError::internal)
}

/// A list answer both our clients and the admin dashboard read: `items` (ours) and the same
/// array under the dashboard's `key` (`payments`, `tickets`, ...), with `total` and
/// `total_count` (the whole count), `page` and `page_size`.
pub fn listed<T: Serialize>(key: &str, items: Vec<T>, total: i64, p: &ListPage) -> HttpResult {
    listed_as(key, items, total, (p.page, p.page_size))
}

/// [`listed`] of a page the owner cut: its `(page, page_size)`.
pub fn listed_as<T: Serialize>(
    key: &str,
    items: Vec<T>,
    total: i64,
    (page, page_size): (i64, i64),
) -> HttpResult {
    let items = to_json(&items)?;
    let mut body = serde_json::Map::new();
    body.insert(key.to_owned(), items.clone());
    body.insert("items".to_owned(), items);
    body.insert("total".to_owned(), total.into());
    body.insert("total_count".to_owned(), total.into());
    body.insert("page".to_owned(), page.into());
    body.insert("page_size".to_owned(), page_size.into());
    Ok(HttpResponse::Ok().json(body))
}

/// The newest rows a dashboard list answers without paging (README.md).
pub const WHOLE_LIST: i64 = 500;

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

/// An id in an admin path: digits only, anything else is 404 (docs/panels.md, general rules).
pub fn path_digits(raw: &str) -> Result<u64, ApiError> {
    if raw.is_empty() || !raw.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ApiError::not_found("Not found"));
    }
    // All digits but too large for any row: no such row either.
    raw.parse::<u64>()
        .map_err(|_| ApiError::not_found("Not found"))
}

/// [`path_digits`] as a row id.
pub fn path_id(raw: &str) -> Result<i64, ApiError> {
    i64::try_from(path_digits(raw)?).map_err(|_| ApiError::not_found("Not found"))
}

/// An id filter of a query: blank is none (the dashboard may send `?client_id=`), else a
/// positive whole number (422).
pub fn query_id(field: &'static str, raw: Option<&str>) -> Result<Option<i64>, ApiError> {
    match raw.map(str::trim).filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(s) => s
            .parse::<i64>()
            .ok()
            .filter(|id| *id > 0)
            .map(Some)
            .ok_or_else(|| ApiError::invalid(field, "must be a positive id")),
    }
}

/// The row a look-up found, or 404 with `detail` ("User not found").
pub fn found<T>(row: Option<T>, detail: &'static str) -> Result<T, ApiError> {
    row.ok_or_else(|| ApiError::not_found(detail))
}

/// The one view a list's view maker made of one item (`views(vec![item])`): one in is one
/// out, so none is a bug (500).
pub fn only_view<T>(mut views: Vec<T>, what: &str) -> Result<T, ApiError> {
    views
        .pop()
        .ok_or_else(|| ApiError::internal(anyhow::anyhow!("{what} view lost")))
}

/// 422 for a body that is JSON but not an object.
pub fn not_an_object() -> ApiError {
    ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_error",
        "The request body must be a JSON object",
    )
}

/// The staff member's own access token (already verified by the staff guard), passed to the
/// owner so that it checks the actor itself (see [`crate::ops::OwnerCall::acting`]).
pub fn acting_token(req: &HttpRequest) -> Result<&str, ApiError> {
    zimmer_jwt::bearer_token(req).ok_or_else(|| ApiError::unauthorized("Authentication required"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The date filters of every list (`zimmer_http::time_bound`).
    #[test]
    fn dates_in_filters() {
        let parse_time = zimmer_http::time_bound;
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
