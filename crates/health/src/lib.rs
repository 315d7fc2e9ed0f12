//! A named health check: the one type that background loops (outbox relay, consumers,
//! workers) and the HTTP probes share. Kept apart from the HTTP crate so that crates without a
//! web server (events) need not depend on actix-web.

use std::{future::Future, pin::Pin, sync::Arc, time::Duration};

/// What a check returns: `Err` holds a human-readable reason.
pub type CheckFuture = Pin<Box<dyn Future<Output = Result<(), String>> + Send>>;

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

    /// A check of an in-memory condition (a loop still running, keys loaded): fails with
    /// `reason` while `ok` answers false. No I/O: the flag is read when the probe runs.
    pub fn flag(
        name: &'static str,
        reason: &'static str,
        ok: impl Fn() -> bool + Send + Sync + 'static,
    ) -> Self {
        Self::new(name, move || {
            std::future::ready(if ok() { Ok(()) } else { Err(reason.to_owned()) })
        })
    }

    /// The name shown in the probe's body and metrics.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Runs the check once: `Err` carries the reason it failed.
    pub fn run(&self) -> CheckFuture {
        (self.run)()
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
