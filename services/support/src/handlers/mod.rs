//! HTTP handlers of support, and what several of them share.

pub mod input;
pub mod internal;
pub mod notifications;
pub mod stream;
pub mod tickets;

use std::time::Duration;

use zimmer_http::ApiError;

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
