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

/// What `/healthz` (liveness: background loops still running) and `/readyz` (readiness:
/// dependencies reachable) check.
#[derive(Clone, Default)]
pub struct Probes {
    pub(crate) liveness: Vec<Check>,
    pub(crate) readiness: Vec<Check>,
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
    pub fn alive_while(mut self, check: Check) -> Self {
        self.liveness.push(check);
        self
    }

    pub(crate) async fn run(checks: &[Check]) -> (bool, Value) {
        let results = futures_util::future::join_all(checks.iter().map(|c| async move {
            let outcome = tokio::time::timeout(Duration::from_secs(2), (c.run)())
                .await
                .unwrap_or_else(|_| Err("timed out".to_owned()));
            (c.name, outcome)
        }))
        .await;
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
