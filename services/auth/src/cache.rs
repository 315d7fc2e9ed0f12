//! `/api/me` answers kept in memory (issue 16: the user row was read from PostgreSQL on every
//! call; docs: README, "Performance").
//!
//! Correctness, in order of strength:
//! - keyed by the user id of the verified access token, and an entry is the JSON of the row
//!   read for that very id: it can never answer for another user. Revocation is untouched
//!   (the token is checked before the cache is looked at).
//! - every write to a user row in this process forgets that user after it commits
//!   (`forget`); a read that raced with such a write is not stored (`zimmer_http::local_cache`).
//! - `user.updated` / `user.deactivated` from any auth instance forget the user here too
//!   (a broadcast subscription, [`listen`]).
//! - an entry lives at most `USER_CACHE_TTL_MS` (1000 ms by default; 0 turns the cache off):
//!   the bound on staleness for a change another instance made without an event (email
//!   verified, 2FA switched) or an event missed while the broker was away.
//!
//! Bounded: at most `USER_CACHE_CAPACITY` (10,000) entries, expired ones dropped first.

use std::time::Duration;

use zimmer_events::{
    Broker, ConsumerHandle, Event,
    contracts::{UserDeactivated, UserUpdated},
};
use zimmer_http::local_cache::LocalCache;

/// The `/api/me` bodies, keyed by user id (the shared cache of `zimmer_http`: a read that
/// raced a write is not stored, entries live at most the TTL, the capacity bounds them).
pub type UserCache = LocalCache<i64>;

/// `USER_CACHE_TTL_MS` (1000) and `USER_CACHE_CAPACITY` (10,000) from the environment.
pub fn from_env() -> UserCache {
    let number = |name: &str, default: u64| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(default)
    };
    UserCache::new(
        Duration::from_millis(number("USER_CACHE_TTL_MS", 1000)),
        usize::try_from(number("USER_CACHE_CAPACITY", 10_000)).unwrap_or(10_000),
    )
}

/// Forgets users that any auth instance reports changed (`user.updated`, `user.deactivated`).
pub fn listen(cache: &UserCache, broker: &Broker) -> ConsumerHandle {
    let cache = cache.clone();
    zimmer_events::spawn_broadcast_listener(
        broker.clone(),
        vec![
            UserUpdated::NAME.to_owned(),
            UserDeactivated::NAME.to_owned(),
        ],
        move |event| {
            let user_id = event
                .data
                .get("user_id")
                .and_then(serde_json::Value::as_i64);
            match user_id {
                Some(id) => cache.forget(&id),
                None => tracing::warn!(event = %event.event_type, "user event without user_id"),
            }
        },
    )
}
