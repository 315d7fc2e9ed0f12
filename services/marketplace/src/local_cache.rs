//! The marketplace's in-memory answers (issue 16: the catalogue cost two Redis round trips per
//! request and a customer's list one database query): the shared [`LocalCache`] of
//! `zimmer_http` (its correctness rules are documented there), with the TTLs
//! `CATALOGUE_LOCAL_TTL_MS` and `USER_AUTOMATIONS_CACHE_TTL_MS` (1000 ms by default; 0 turns
//! the cache off). Docs: docs/architecture.md "Caches", README "Performance".

use actix_web::{HttpResponse, http::header::ContentType, web::Bytes};
pub use zimmer_http::local_cache::LocalCache;

/// A 200 with a body that is already JSON.
pub fn json_ok(body: Bytes) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(ContentType::json())
        .body(body)
}

/// A customer's list: their user id and whether only the active ones.
pub type MineKey = (i64, bool);

/// The customers' lists (`GET /api/user/automations[/active]`), keyed by user id.
pub type MineCache = LocalCache<MineKey>;

/// After a committed change to one customer's automations (both lists).
pub fn forget_user(mine: &MineCache, user_id: i64) {
    mine.forget(&(user_id, false));
    mine.forget(&(user_id, true));
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::time::Duration;

    use super::*;

    #[test]
    fn forget_user_drops_both_lists_of_that_user_only() {
        let mine: MineCache = LocalCache::new(Duration::from_secs(60), 10);
        for key in [(1, false), (1, true), (2, false)] {
            let t = mine.ticket();
            mine.store(key, Bytes::from_static(b"x"), t);
        }
        forget_user(&mine, 1);
        assert!(mine.get(&(1, false)).is_none());
        assert!(mine.get(&(1, true)).is_none());
        assert!(mine.get(&(2, false)).is_some());
    }
}
