//! Answers kept in this process's memory, already serialised to JSON, for the hot reads
//! (auth's `/api/me`, marketplace's catalogue and customer lists; docs/architecture.md
//! "Caches", README "Performance").
//!
//! Correctness, in order of strength:
//! - an entry is the exact body computed for its key (e.g. the user id of the verified access
//!   token): it can never answer for another key. Authentication and revocation run before
//!   the cache is looked at.
//! - a change committed through this process forgets the entries it affects after the commit
//!   ([`LocalCache::forget`], [`LocalCache::forget_all`]); a read that raced with such a change
//!   is not stored (the epoch check below), so this process shows its own changes at once.
//! - an entry lives at most its TTL (each service's setting; 0 turns the cache off): the bound
//!   on staleness for a change made by another instance or a background job.
//!
//! Bounded in size: at the capacity, expired entries are dropped first, then everything.

use std::{
    borrow::Borrow,
    collections::HashMap,
    hash::Hash,
    sync::{Arc, PoisonError, RwLock},
    time::{Duration, Instant},
};

use actix_web::web::Bytes;

struct Entry {
    body: Bytes,
    stored: Instant,
}

struct Inner<K> {
    entries: HashMap<K, Entry>,
    /// Bumped by every forget: a read that started before a change may not store its
    /// (possibly older) answer after that change.
    epoch: u64,
}

pub struct LocalCache<K> {
    inner: Arc<RwLock<Inner<K>>>,
    ttl: Duration,
    capacity: usize,
}

impl<K> Clone for LocalCache<K> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
            ttl: self.ttl,
            capacity: self.capacity,
        }
    }
}

/// What a reader notes before reading the data, to hand back to [`LocalCache::store`].
#[derive(Clone, Copy, Debug)]
pub struct Ticket(u64);

impl<K: Eq + Hash> LocalCache<K> {
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

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    fn enabled(&self) -> bool {
        !self.ttl.is_zero() && self.capacity > 0
    }

    /// The stored body for `key` if it is younger than the TTL.
    pub fn get<Q>(&self, key: &Q) -> Option<Bytes>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        if !self.enabled() {
            return None;
        }
        let inner = self.inner.read().unwrap_or_else(PoisonError::into_inner);
        inner
            .entries
            .get(key)
            .filter(|e| e.stored.elapsed() < self.ttl)
            .map(|e| e.body.clone())
    }

    /// Taken before reading the data (Redis or the database).
    pub fn ticket(&self) -> Ticket {
        Ticket(
            self.inner
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .epoch,
        )
    }

    /// Stores the body read for `key`, unless something was forgotten since `ticket`.
    pub fn store(&self, key: K, body: Bytes, ticket: Ticket) {
        if !self.enabled() {
            return;
        }
        let mut inner = self.inner.write().unwrap_or_else(PoisonError::into_inner);
        if inner.epoch != ticket.0 {
            return;
        }
        if inner.entries.len() >= self.capacity && !inner.entries.contains_key(&key) {
            let ttl = self.ttl;
            inner.entries.retain(|_, e| e.stored.elapsed() < ttl);
            if inner.entries.len() >= self.capacity {
                inner.entries.clear();
            }
        }
        inner.entries.insert(
            key,
            Entry {
                body,
                stored: Instant::now(),
            },
        );
    }

    /// After a committed change to what `key` shows.
    pub fn forget<Q>(&self, key: &Q)
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let mut inner = self.inner.write().unwrap_or_else(PoisonError::into_inner);
        inner.epoch = inner.epoch.wrapping_add(1);
        inner.entries.remove(key);
    }

    /// After a committed change that may show in any entry.
    pub fn forget_all(&self) {
        let mut inner = self.inner.write().unwrap_or_else(PoisonError::into_inner);
        inner.epoch = inner.epoch.wrapping_add(1);
        inner.entries.clear();
    }

    pub fn len(&self) -> usize {
        self.inner
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .entries
            .len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn cache(ttl_ms: u64, capacity: usize) -> LocalCache<String> {
        LocalCache::new(Duration::from_millis(ttl_ms), capacity)
    }

    #[test]
    fn stores_and_answers_within_the_ttl() {
        let c = cache(60_000, 10);
        let t = c.ticket();
        c.store("a".to_owned(), Bytes::from_static(b"1"), t);
        c.store("b".to_owned(), Bytes::from_static(b"2"), c.ticket());
        assert_eq!(c.get("a").unwrap(), Bytes::from_static(b"1"));
        assert_eq!(c.get("b").unwrap(), Bytes::from_static(b"2"));
        assert!(c.get("c").is_none());
    }

    #[test]
    fn a_read_that_raced_with_a_forget_is_not_stored() {
        let c = cache(60_000, 10);
        let t = c.ticket();
        c.forget_all();
        c.store("a".to_owned(), Bytes::from_static(b"old"), t);
        assert!(c.get("a").is_none());
        let t = c.ticket();
        c.forget("x");
        c.store("b".to_owned(), Bytes::from_static(b"old"), t);
        assert!(c.get("b").is_none(), "any forget refuses older reads");
        c.store("b".to_owned(), Bytes::from_static(b"new"), c.ticket());
        assert_eq!(c.get("b").unwrap(), Bytes::from_static(b"new"));
        c.forget("b");
        assert!(c.get("b").is_none());
    }

    #[test]
    fn expired_entries_are_not_answered_and_zero_ttl_is_off() {
        let c = cache(1, 10);
        let t = c.ticket();
        c.store("a".to_owned(), Bytes::from_static(b"1"), t);
        std::thread::sleep(Duration::from_millis(5));
        assert!(c.get("a").is_none());
        let off = cache(0, 10);
        let t = off.ticket();
        off.store("a".to_owned(), Bytes::from_static(b"1"), t);
        assert!(off.get("a").is_none());
        assert!(off.is_empty());
    }

    #[test]
    fn the_capacity_bounds_the_entries() {
        let c = cache(60_000, 3);
        for i in 0..10 {
            let t = c.ticket();
            c.store(format!("k{i}"), Bytes::from_static(b"x"), t);
            assert!(c.len() <= 3);
        }
        assert!(c.get("k9").is_some());
    }
}
