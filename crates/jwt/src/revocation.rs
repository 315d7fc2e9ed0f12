use std::{
    collections::HashMap,
    sync::{
        Arc, RwLock,
        atomic::{AtomicBool, Ordering},
    },
};

use chrono::Utc;
use uuid::Uuid;

use crate::Claims;

/// Sessions and users whose access tokens must be rejected before they expire. Kept in memory
/// in every instance and fed by `session.revoked` / `user.deactivated`, so a check costs a
/// hash lookup and no network call.
///
/// A fresh set is *not loaded*: it knows nothing of the revocations made before this instance
/// started, so the extractor refuses tokens (503) until the first full load from auth (or, in
/// auth, from its own database) has been applied and [`Revocations::mark_loaded`] called.
#[derive(Clone, Default)]
pub struct Revocations {
    inner: Arc<RwLock<Inner>>,
    loaded: Arc<AtomicBool>,
}

#[derive(Default)]
struct Inner {
    /// session id → unix time after which no token of the session can be valid anyway
    sessions: HashMap<Uuid, i64>,
    /// user id → unix time of deactivation: tokens issued at or before it are rejected
    users: HashMap<i64, i64>,
}

impl Revocations {
    pub fn new() -> Self {
        Self::default()
    }

    /// The first full load has been applied: tokens may be accepted from now on.
    pub fn mark_loaded(&self) {
        self.loaded.store(true, Ordering::SeqCst);
    }

    pub fn is_loaded(&self) -> bool {
        self.loaded.load(Ordering::SeqCst)
    }

    pub fn revoke_session(&self, session_id: Uuid, until_unix: i64) {
        if let Ok(mut inner) = self.inner.write() {
            let entry = inner.sessions.entry(session_id).or_insert(until_unix);
            *entry = (*entry).max(until_unix);
        }
    }

    pub fn deactivate_user(&self, user_id: i64, at_unix: i64) {
        if let Ok(mut inner) = self.inner.write() {
            let entry = inner.users.entry(user_id).or_insert(at_unix);
            *entry = (*entry).max(at_unix);
        }
    }

    /// A user reactivated by staff may log in again: tokens issued from now on are fine.
    pub fn reactivate_user(&self, user_id: i64) {
        if let Ok(mut inner) = self.inner.write() {
            inner.users.remove(&user_id);
        }
    }

    pub fn is_revoked(&self, claims: &Claims) -> bool {
        let Ok(inner) = self.inner.read() else {
            return true; // a poisoned lock: fail closed
        };
        if inner.sessions.contains_key(&claims.sid) {
            return true;
        }
        match claims.user_id().and_then(|id| inner.users.get(&id)) {
            Some(&at) => claims.iat <= at,
            None => false,
        }
    }

    /// Drops entries no live token can match any more (`max_token_age` = access TTL).
    pub fn purge_expired(&self, max_token_age_secs: i64) {
        let now = Utc::now().timestamp();
        if let Ok(mut inner) = self.inner.write() {
            inner.sessions.retain(|_, until| *until > now);
            inner.users.retain(|_, at| *at + max_token_age_secs > now);
        }
    }

    pub fn len(&self) -> usize {
        self.inner
            .read()
            .map(|i| i.sessions.len() + i.users.len())
            .unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
