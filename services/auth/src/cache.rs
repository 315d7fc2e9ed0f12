//! `/api/me` answers kept in memory (issue 16: the user row was read from PostgreSQL on every
//! call; docs: README, "Performance").
//!
//! Correctness, in order of strength:
//! - keyed by the user id of the verified access token, and an entry is the JSON of the row
//!   read for that very id: it can never answer for another user. Revocation is untouched
//!   (the token is checked before the cache is looked at).
//! - every write to a user row in this process forgets that user after it commits
//!   (`forget`); a read that raced with such a write is not stored (the epoch check below).
//! - `user.updated` / `user.deactivated` from any auth instance forget the user here too
//!   (a broadcast subscription, [`UserCache::listen`]).
//! - an entry lives at most `USER_CACHE_TTL_MS` (1000 ms by default; 0 turns the cache off):
//!   the bound on staleness for a change another instance made without an event (email
//!   verified, 2FA switched) or an event missed while the broker was away.
//!
//! Bounded: at most `USER_CACHE_CAPACITY` (10,000) entries, expired ones dropped first.

use std::{
    collections::HashMap,
    sync::{Arc, PoisonError, RwLock},
    time::{Duration, Instant},
};

use actix_web::web::Bytes;
use zimmer_events::{
    Broker, ConsumerHandle, Event,
    contracts::{UserDeactivated, UserUpdated},
};

struct Entry {
    body: Bytes,
    stored: Instant,
}

struct Inner {
    entries: HashMap<i64, Entry>,
    /// Bumped by every `forget`: a read that started before a write may not store its
    /// (possibly older) answer after that write forgot the user.
    epoch: u64,
}

#[derive(Clone)]
pub struct UserCache {
    inner: Arc<RwLock<Inner>>,
    ttl: Duration,
    capacity: usize,
}

/// What a reader notes before reading the row, to hand back to [`UserCache::store`].
#[derive(Clone, Copy, Debug)]
pub struct Ticket(u64);

impl UserCache {
    pub fn new(ttl: Duration, capacity: usize) -> Self {
        Self {
            inner: Arc::new(RwLock::new(Inner {
                entries: HashMap::new(),
                epoch: 0,
            })),
            ttl,
            capacity,
        }
    }

    /// `USER_CACHE_TTL_MS` (1000) and `USER_CACHE_CAPACITY` (10,000) from the environment.
    pub fn from_env() -> Self {
        let number = |name: &str, default: u64| {
            std::env::var(name)
                .ok()
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(default)
        };
        Self::new(
            Duration::from_millis(number("USER_CACHE_TTL_MS", 1000)),
            usize::try_from(number("USER_CACHE_CAPACITY", 10_000)).unwrap_or(10_000),
        )
    }

    fn enabled(&self) -> bool {
        !self.ttl.is_zero() && self.capacity > 0
    }

    /// The stored answer for `user_id` if it is younger than the TTL.
    pub fn get(&self, user_id: i64) -> Option<Bytes> {
        if !self.enabled() {
            return None;
        }
        let inner = self.inner.read().unwrap_or_else(PoisonError::into_inner);
        inner
            .entries
            .get(&user_id)
            .filter(|e| e.stored.elapsed() < self.ttl)
            .map(|e| e.body.clone())
    }

    /// Taken before reading the row from the database.
    pub fn ticket(&self) -> Ticket {
        Ticket(
            self.inner
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .epoch,
        )
    }

    /// Stores the answer read for `user_id`, unless a write forgot anyone since `ticket`.
    pub fn store(&self, user_id: i64, body: Bytes, ticket: Ticket) {
        if !self.enabled() {
            return;
        }
        let mut inner = self.inner.write().unwrap_or_else(PoisonError::into_inner);
        if inner.epoch != ticket.0 {
            return;
        }
        if inner.entries.len() >= self.capacity && !inner.entries.contains_key(&user_id) {
            let ttl = self.ttl;
            inner.entries.retain(|_, e| e.stored.elapsed() < ttl);
            if inner.entries.len() >= self.capacity {
                inner.entries.clear();
            }
        }
        inner.entries.insert(
            user_id,
            Entry {
                body,
                stored: Instant::now(),
            },
        );
    }

    /// Called after a write to `user_id`'s row has committed.
    pub fn forget(&self, user_id: i64) {
        let mut inner = self.inner.write().unwrap_or_else(PoisonError::into_inner);
        inner.epoch = inner.epoch.wrapping_add(1);
        inner.entries.remove(&user_id);
    }

    /// Forgets users that any auth instance reports changed (`user.updated`,
    /// `user.deactivated`).
    pub fn listen(&self, broker: &Broker) -> ConsumerHandle {
        let cache = self.clone();
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
                    Some(id) => cache.forget(id),
                    None => tracing::warn!(event = %event.event_type, "user event without user_id"),
                }
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache() -> UserCache {
        UserCache::new(Duration::from_secs(60), 2)
    }

    #[test]
    fn stores_and_answers_per_user() {
        let c = cache();
        c.store(1, Bytes::from_static(b"one"), c.ticket());
        c.store(2, Bytes::from_static(b"two"), c.ticket());
        assert_eq!(c.get(1).as_deref(), Some(&b"one"[..]));
        assert_eq!(c.get(2).as_deref(), Some(&b"two"[..]));
        assert_eq!(c.get(3), None);
    }

    #[test]
    fn a_read_that_raced_a_write_is_not_stored() {
        let c = cache();
        let before_write = c.ticket();
        c.forget(1);
        c.store(1, Bytes::from_static(b"old"), before_write);
        assert_eq!(c.get(1), None);
        c.store(1, Bytes::from_static(b"new"), c.ticket());
        assert_eq!(c.get(1).as_deref(), Some(&b"new"[..]));
        c.forget(1);
        assert_eq!(c.get(1), None);
    }

    #[test]
    fn expires_and_stays_bounded() {
        let c = UserCache::new(Duration::from_millis(1), 2);
        c.store(1, Bytes::from_static(b"one"), c.ticket());
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(c.get(1), None);
        let c = cache();
        for id in 1..=5 {
            c.store(id, Bytes::from_static(b"x"), c.ticket());
        }
        assert!(c.inner.read().unwrap().entries.len() <= 2);
        assert!(c.get(5).is_some());
    }

    #[test]
    fn zero_ttl_turns_it_off() {
        let c = UserCache::new(Duration::ZERO, 10);
        c.store(1, Bytes::from_static(b"one"), c.ticket());
        assert_eq!(c.get(1), None);
    }
}
