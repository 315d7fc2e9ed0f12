use std::{future::Future, pin::Pin, sync::Arc, time::Duration};

use serde_json::{Map, Value, json};

type CheckFuture = Pin<Box<dyn Future<Output = Result<(), String>> + Send>>;

/// One named health check.
#[derive(Clone)]
pub struct Check {
    name: &'static str,
    run: Arc<dyn Fn() -> CheckFuture + Send + Sync>,
}

impl Check {
    pub fn new<F, Fut>(name: &'static str, f: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), String>> + Send + 'static,
    {
        Self {
            name,
            run: Arc::new(move || Box::pin(f())),
        }
    }

    pub fn database(pool: zimmer_db::DbPool) -> Self {
        Self::new("database", move || {
            let pool = pool.clone();
            async move {
                use diesel_async::RunQueryDsl;
                let mut conn = pool.get().await.map_err(|e| e.to_string())?;
                diesel::sql_query("SELECT 1")
                    .execute(&mut conn)
                    .await
                    .map(drop)
                    .map_err(|e| e.to_string())
            }
        })
    }
}

#[derive(diesel::QueryableByName)]
struct Backlog {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pending: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    oldest_secs: i64,
}

impl Check {
    /// `outbox`: fails (as a degraded dependency) when an event of `producer` has waited for
    /// the broker longer than `max_age`: writes still succeed, their events are late.
    pub fn outbox_backlog(pool: zimmer_db::DbPool, producer: String, max_age: Duration) -> Self {
        Self::new("outbox", move || {
            let pool = pool.clone();
            let producer = producer.clone();
            async move {
                use diesel_async::RunQueryDsl;
                let mut conn = pool.get().await.map_err(|e| e.to_string())?;
                let b: Backlog = diesel::sql_query(
                    "SELECT count(*)::bigint AS pending, \
                            COALESCE(EXTRACT(EPOCH FROM now() - min(created_at)), 0)::bigint AS oldest_secs \
                       FROM outbox WHERE producer = $1 AND published_at IS NULL",
                )
                .bind::<diesel::sql_types::Text, _>(producer)
                .get_result(&mut conn)
                .await
                .map_err(|e| e.to_string())?;
                if u64::try_from(b.oldest_secs).unwrap_or(0) > max_age.as_secs() {
                    Err(format!(
                        "{} events waiting for the broker, the oldest for {} s",
                        b.pending, b.oldest_secs
                    ))
                } else {
                    Ok(())
                }
            }
        })
    }
}

/// What `/healthz` and `/readyz` check.
///
/// - liveness (`/healthz`): the process and its essential background loops; a failure means
///   "restart me".
/// - readiness (`/readyz` status): what this instance cannot serve without (its database, its
///   verification keys, its first revocation load, not draining); a failure means "send me no
///   traffic".
/// - degraded (`/readyz` body and the `dependency_up` metric only): what the instance works
///   around (broker: the outbox keeps writes; Redis: caches are bypassed; the outbox backlog).
///   They never fail readiness, or a broker restart would take every instance out at once.
#[derive(Clone, Default)]
pub struct Probes {
    pub(crate) liveness: Vec<Check>,
    pub(crate) readiness: Vec<Check>,
    pub(crate) degraded: Vec<Check>,
    pub(crate) pool: Option<zimmer_db::DbPool>,
}

impl Probes {
    pub fn new() -> Self {
        Self::default()
    }
    /// Readiness includes the database; `/metrics` reports the pool.
    pub fn with_pool(mut self, pool: zimmer_db::DbPool) -> Self {
        self.readiness.push(Check::database(pool.clone()));
        self.pool = Some(pool);
        self
    }
    pub fn ready_when(mut self, check: Check) -> Self {
        self.readiness.push(check);
        self
    }
    /// A dependency reported in `/readyz`'s body and metrics but not in its status.
    pub fn degraded_unless(mut self, check: Check) -> Self {
        self.degraded.push(check);
        self
    }
    pub fn alive_while(mut self, check: Check) -> Self {
        self.liveness.push(check);
        self
    }

    /// `/readyz`: (ready, body). The body lists every check in `checks` (essential and
    /// degraded alike, "ok" or the error) and the failing optional ones in `degraded`;
    /// `status` is `ready`, `degraded` (still ready) or `not_ready`.
    pub async fn readiness(&self) -> (bool, Value, Vec<(&'static str, bool)>) {
        let (essential, optional) = futures_util::future::join(
            Self::results(&self.readiness),
            Self::results(&self.degraded),
        )
        .await;
        let ready = essential.iter().all(|(_, r)| r.is_ok());
        let mut checks = Map::new();
        let mut degraded = Map::new();
        let mut up = Vec::new();
        for (name, outcome) in essential.iter().chain(optional.iter()) {
            up.push((*name, outcome.is_ok()));
            checks.insert(
                (*name).to_owned(),
                match outcome {
                    Ok(()) => json!("ok"),
                    Err(e) => json!(e),
                },
            );
        }
        for (name, outcome) in &optional {
            if let Err(e) = outcome {
                degraded.insert((*name).to_owned(), json!(e));
            }
        }
        let status = if !ready {
            "not_ready"
        } else if degraded.is_empty() {
            "ready"
        } else {
            "degraded"
        };
        let body = json!({ "status": status, "checks": checks, "degraded": degraded });
        (ready, body, up)
    }

    async fn results(checks: &[Check]) -> Vec<(&'static str, Result<(), String>)> {
        futures_util::future::join_all(checks.iter().map(|c| async move {
            let outcome = tokio::time::timeout(Duration::from_secs(2), (c.run)())
                .await
                .unwrap_or_else(|_| Err("timed out".to_owned()));
            (c.name, outcome)
        }))
        .await
    }

    pub(crate) async fn run(checks: &[Check]) -> (bool, Value) {
        let results = Self::results(checks).await;
        let mut ok = true;
        let mut map = Map::new();
        for (name, outcome) in results {
            let v = match outcome {
                Ok(()) => json!("ok"),
                Err(e) => {
                    ok = false;
                    json!(e)
                }
            };
            map.insert(name.to_owned(), v);
        }
        (ok, Value::Object(map))
    }
}
