//! HTTP handlers of support, and what several of them share.

pub mod input;
pub mod internal;
pub mod notifications;
pub mod stream;
pub mod tickets;

use std::time::Duration;

use serde::Deserialize;
use zimmer_http::{
    ApiError, PageQuery, Window,
    paging::{DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE},
};

use crate::AppState;

/// A per-user rate limit through Redis. Fails open when Redis is down: support must keep
/// working, and these limits only guard against floods, not against abuse of money.
pub async fn rate_limit(
    state: &AppState,
    key: &str,
    limit: u64,
    window: Duration,
) -> Result<(), ApiError> {
    if limit == 0 {
        return Ok(());
    }
    match state.platform.redis.rate_limit(key, limit, window).await {
        Ok(d) if !d.allowed => Err(ApiError::too_many_requests(d.retry_after)),
        Ok(_) => Ok(()),
        Err(e) => {
            tracing::warn!(error = %e, key, "rate limit unavailable; allowing");
            Ok(())
        }
    }
}

/// The paging of a list: `page`/`page_size` (docs/api.md) or `limit`/`offset` (what list UIs
/// often send). A query extractor of its own beside the list's filters, because serde's
/// `flatten` cannot read numbers from a query string.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListPaging {
    /// The page, from 1.
    #[serde(default)]
    pub page: Option<i64>,
    /// Items per page (default 20, at most 100).
    #[serde(default)]
    pub page_size: Option<i64>,
    /// Instead of paging: at most this many items (default 20, at most 100); wins over
    /// `page`/`page_size` when it or `offset` is sent.
    #[serde(default)]
    pub limit: Option<i64>,
    /// Instead of paging: items to skip.
    #[serde(default)]
    pub offset: Option<i64>,
}

impl ListPaging {
    /// `limit`/`offset` win when either is sent.
    pub fn window(&self) -> Window {
        match (self.limit, self.offset) {
            (None, None) => Window::of(&PageQuery {
                page: self.page,
                page_size: self.page_size,
            }),
            (limit, offset) => Window::at(
                limit.unwrap_or(DEFAULT_PAGE_SIZE).clamp(1, MAX_PAGE_SIZE),
                offset.unwrap_or(0).max(0),
            ),
        }
    }
}
