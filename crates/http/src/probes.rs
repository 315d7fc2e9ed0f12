use std::time::Duration;

// Moved to zimmer-health (no actix) and re-exported from this crate, so callers keep
// writing `zimmer_http::Check`.
pub use zimmer_health::Check;

use serde_json::{Map, Value, json};

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
            let outcome = tokio::time::timeout(Duration::from_secs(2), c.run())
                .await
                .unwrap_or_else(|_| Err("timed out".to_owned()));
            (c.name(), outcome)
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
