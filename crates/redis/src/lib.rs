//! A pooled Redis client for caches and rate limits. Redis is an accelerator, not a source of
//! truth: cache reads and writes are best effort (a failure is logged and treated as a miss),
//! while rate limits report the failure so each caller decides to fail open or closed.

use std::time::Duration;

use deadpool_redis::{Config, Pool, Runtime, Timeouts};
use redis::AsyncCommands;
use serde::{Serialize, de::DeserializeOwned};
use zimmer_config::Secret;

#[derive(Clone)]
pub struct Redis {
    pool: Pool,
    /// Prefix of every key, so tests (and several environments on one Redis) never collide.
    prefix: String,
}

pub type RedisError = redis::RedisError;

/// The result of one rate-limit check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateDecision {
    pub allowed: bool,
    pub count: u64,
    /// Seconds until the window resets.
    pub retry_after: u64,
}

impl Redis {
    pub fn connect(url: &Secret, prefix: impl Into<String>) -> Result<Self, String> {
        let mut cfg = Config::from_url(url.expose());
        let mut pool_cfg = deadpool_redis::PoolConfig::new(16);
        pool_cfg.timeouts = Timeouts {
            wait: Some(Duration::from_secs(2)),
            create: Some(Duration::from_secs(2)),
            recycle: Some(Duration::from_secs(2)),
        };
        cfg.pool = Some(pool_cfg);
        let pool = cfg
            .create_pool(Some(Runtime::Tokio1))
            .map_err(|e| format!("redis pool: {e}"))?;
        Ok(Self {
            pool,
            prefix: prefix.into(),
        })
    }

    pub fn key(&self, key: &str) -> String {
        format!("{}{}", self.prefix, key)
    }

    async fn conn(&self) -> Result<deadpool_redis::Connection, RedisError> {
        self.pool
            .get()
            .await
            .map_err(|e| RedisError::from((redis::ErrorKind::Io, "redis pool", e.to_string())))
    }

    pub async fn ping(&self) -> Result<(), String> {
        let mut conn = self.conn().await.map_err(|e| e.to_string())?;
        redis::cmd("PING")
            .query_async::<String>(&mut conn)
            .await
            .map(drop)
            .map_err(|e| e.to_string())
    }

    /// A cached value, or `None` on a miss or any Redis failure.
    pub async fn get_json<T: DeserializeOwned>(&self, key: &str) -> Option<T> {
        let result: Result<Option<String>, RedisError> = async {
            let mut conn = self.conn().await?;
            conn.get(self.key(key)).await
        }
        .await;
        match result {
            Ok(Some(raw)) => serde_json::from_str(&raw).ok(),
            Ok(None) => None,
            Err(e) => {
                tracing::warn!(error = %e, "cache read failed; treating as a miss");
                None
            }
        }
    }

    pub async fn set_json<T: Serialize>(&self, key: &str, value: &T, ttl: Duration) {
        let Ok(raw) = serde_json::to_string(value) else {
            return;
        };
        let result: Result<(), RedisError> = async {
            let mut conn = self.conn().await?;
            conn.set_ex(self.key(key), raw, ttl.as_secs().max(1)).await
        }
        .await;
        if let Err(e) = result {
            tracing::warn!(error = %e, "cache write failed");
        }
    }

    /// Deletes keys (cache invalidation). Best effort, like the cache itself.
    pub async fn delete(&self, keys: &[&str]) {
        let keys: Vec<String> = keys.iter().map(|k| self.key(k)).collect();
        let result: Result<(), RedisError> = async {
            let mut conn = self.conn().await?;
            conn.del(keys).await
        }
        .await;
        if let Err(e) = result {
            tracing::warn!(error = %e, "cache delete failed");
        }
    }

    /// Fixed-window counter: INCR and EXPIRE in one atomic transaction.
    pub async fn rate_limit(
        &self,
        key: &str,
        limit: u64,
        window: Duration,
    ) -> Result<RateDecision, RedisError> {
        let mut conn = self.conn().await?;
        let key = self.key(key);
        let (count, ttl): (u64, i64) = redis::pipe()
            .atomic()
            .incr(&key, 1u64)
            .cmd("EXPIRE")
            .arg(&key)
            .arg(window.as_secs().max(1))
            .arg("NX")
            .ignore()
            .ttl(&key)
            .query_async(&mut conn)
            .await?;
        Ok(RateDecision {
            allowed: count <= limit,
            count,
            retry_after: u64::try_from(ttl).unwrap_or(1).max(1),
        })
    }

    /// SET key NX with a TTL: true the first time, false while the key lives (replay guards).
    pub async fn set_once(&self, key: &str, ttl: Duration) -> Result<bool, RedisError> {
        let mut conn = self.conn().await?;
        let set: Option<String> = redis::cmd("SET")
            .arg(self.key(key))
            .arg(1)
            .arg("NX")
            .arg("EX")
            .arg(ttl.as_secs().max(1))
            .query_async(&mut conn)
            .await?;
        Ok(set.is_some())
    }

    /// Takes one back from a [`Self::rate_limit`] counter (an attempt that did not count after
    /// all), never below zero and keeping its window: a script, so it is atomic.
    pub async fn refund(&self, key: &str) -> Result<(), RedisError> {
        let mut conn = self.conn().await?;
        redis::cmd("EVAL")
            .arg(
                "local n = tonumber(redis.call('GET', KEYS[1]) or '0') \
                 if n > 0 then return redis.call('DECR', KEYS[1]) end return 0",
            )
            .arg(1)
            .arg(self.key(key))
            .query_async::<i64>(&mut conn)
            .await
            .map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client() -> Redis {
        let prefix = format!("test:{}:", uuid::Uuid::new_v4().simple());
        Redis::connect(&Secret::new("redis://127.0.0.1:6379"), prefix).unwrap()
    }

    #[tokio::test]
    async fn cache_round_trip_and_invalidation() {
        let r = client();
        assert_eq!(r.get_json::<Vec<i32>>("k").await, None);
        r.set_json("k", &vec![1, 2, 3], Duration::from_secs(10))
            .await;
        assert_eq!(r.get_json::<Vec<i32>>("k").await, Some(vec![1, 2, 3]));
        r.delete(&["k"]).await;
        assert_eq!(r.get_json::<Vec<i32>>("k").await, None);
    }

    #[tokio::test]
    async fn rate_limit_counts_within_a_window() {
        let r = client();
        for i in 1..=3 {
            let d = r
                .rate_limit("rl", 3, Duration::from_secs(60))
                .await
                .unwrap();
            assert!(d.allowed, "call {i}");
        }
        let d = r
            .rate_limit("rl", 3, Duration::from_secs(60))
            .await
            .unwrap();
        assert!(!d.allowed);
        assert!(d.retry_after >= 1 && d.retry_after <= 60);
    }

    #[tokio::test]
    async fn set_once_refuses_replays_and_down_redis_is_a_miss() {
        let r = client();
        assert!(r.set_once("otp", Duration::from_secs(30)).await.unwrap());
        assert!(!r.set_once("otp", Duration::from_secs(30)).await.unwrap());
        let down = Redis::connect(&Secret::new("redis://127.0.0.1:1"), "x:").unwrap();
        assert_eq!(down.get_json::<i32>("k").await, None);
        assert!(down.ping().await.is_err());
        assert!(
            down.rate_limit("k", 1, Duration::from_secs(1))
                .await
                .is_err()
        );
    }
}
