//! The catalogue cache in Redis: one key per query, all under a *generation* that any change
//! to an automation replaces, so one write invalidates every cached page at once (no key
//! scans). Readers read the generation before the database: a page computed from data older
//! than a change is stored under the old generation, which nobody reads any more. Entries also
//! expire (the configured TTL), which bounds staleness if an invalidation is lost while Redis
//! is unreachable. Redis down = no cache, never an error.
//!
//! In front of Redis, each process keeps the serialised answers in memory for a short while
//! (`pages`, `crate::local_cache`), so a hot catalogue costs no round trip at all; an
//! invalidation here forgets them too, and the customers' lists (`mine`: they show names,
//! pricing and health from the catalogue).

use std::time::Duration;

use aws_lc_rs::digest;
use serde::{Serialize, de::DeserializeOwned};
use zimmer_redis::Redis;

use crate::local_cache::{LocalCache, MineCache};

const GENERATION_KEY: &str = "marketplace:catalogue:generation";
/// Longer than any entry lives; if it expires, a new generation simply starts.
const GENERATION_TTL: Duration = Duration::from_secs(30 * 24 * 3600);

/// Distinct catalogue queries (pages, searches) one process keeps in memory.
const LOCAL_CAPACITY: usize = 512;

#[derive(Clone)]
pub struct CatalogueCache {
    redis: Redis,
    ttl: Duration,
    /// The serialised answers, by query, in this process.
    pub pages: LocalCache<String>,
    mine: MineCache,
}

impl CatalogueCache {
    pub fn new(redis: Redis, ttl: Duration, local_ttl: Duration, mine: MineCache) -> Self {
        Self {
            redis,
            ttl,
            pages: LocalCache::new(local_ttl, LOCAL_CAPACITY),
            mine,
        }
    }

    /// The current generation (made if there is none); `None` when Redis does not answer.
    pub async fn generation(&self) -> Option<String> {
        if let Some(g) = self.redis.get_json::<String>(GENERATION_KEY).await {
            return Some(g);
        }
        let fresh = uuid::Uuid::new_v4().simple().to_string();
        self.redis
            .set_json(GENERATION_KEY, &fresh, GENERATION_TTL)
            .await;
        // Read back: if Redis is down this is None and the caller skips the cache; if another
        // reader raced us, we use whichever generation won.
        self.redis.get_json::<String>(GENERATION_KEY).await
    }

    fn key(generation: &str, query: &str) -> String {
        let h = digest::digest(&digest::SHA256, query.as_bytes());
        let short: String = h.as_ref()[..12]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        format!("marketplace:catalogue:{generation}:{short}")
    }

    pub async fn get<T: DeserializeOwned>(&self, generation: &str, query: &str) -> Option<T> {
        self.redis.get_json(&Self::key(generation, query)).await
    }

    pub async fn put<T: Serialize>(&self, generation: &str, query: &str, value: &T) {
        self.redis
            .set_json(&Self::key(generation, query), value, self.ttl)
            .await;
    }

    /// After a committed change to any automation. Redis first: a reader that finds the
    /// memory forgotten must not then find the old generation in Redis.
    pub async fn invalidate(&self) {
        let fresh = uuid::Uuid::new_v4().simple().to_string();
        self.redis
            .set_json(GENERATION_KEY, &fresh, GENERATION_TTL)
            .await;
        self.pages.forget_all();
        self.mine.forget_all();
    }
}
