//! The dashboard's daily rollup (`dashboard_daily`, docs/data-model.md): every
//! [`RUN_EVERY`], one replica (an advisory lock) writes the days closed since the last run,
//! computes the last few closed days again and folds in the rows that came late. Idempotent:
//! a run computes whole days from the raw rows and overwrites them, so running twice, or
//! after a crash, changes nothing. The readers are exact whether it ran or not (queries/stats.rs);
//! it makes them cheap. To rebuild everything (after a data repair that changed old rows in
//! place): `UPDATE dashboard_rollup_state SET closed_before = NULL`; the next run starts over
//! from the first day with data.

use chrono::Utc;
use diesel_async::{AsyncConnection, AsyncPgConnection};
use zimmer_config::Backoff;
use zimmer_db::pool::DbPool;

use crate::{
    domain::rollup::{RUN_EVERY, closed_before, recompute_from},
    queries::stats::{self, RollupRun},
};

/// Runs the rollup every [`RUN_EVERY`], the first time [`RUN_EVERY`] after the start (the
/// figures are exact without it; a restart loop must not rebuild anything, and a test that
/// back-dates rows it just wrote is not raced); after a failure, again after a growing pause
/// (5 s doubling, at most [`RUN_EVERY`]).
pub fn spawn(pool: DbPool) {
    tokio::spawn(async move {
        let mut backoff = Backoff::new(std::time::Duration::from_secs(5), RUN_EVERY);
        tokio::time::sleep(RUN_EVERY).await;
        loop {
            let pause = match run_once(&pool).await {
                Ok(run) => {
                    backoff.reset();
                    if let Some(run) = run {
                        tracing::debug!(days = run.days, "dashboard rollup");
                    }
                    RUN_EVERY
                }
                Err(e) => {
                    let pause = backoff.next_delay();
                    tracing::warn!(error = %e, retry_in = ?pause, "dashboard rollup failed");
                    pause
                }
            };
            tokio::time::sleep(pause).await;
        }
    });
}

/// One run on a pooled connection; `None` when another replica is at it.
pub async fn run_once(pool: &DbPool) -> anyhow::Result<Option<RollupRun>> {
    let mut conn = pool.get().await?;
    Ok(run_on(&mut conn).await?)
}

/// One run on `conn`, in one transaction (the benchmark and the tests call it directly).
/// Read committed on purpose: the state is read after the lock is taken, so it is the last
/// run's; the sums and the highest ids then come from the one snapshot of one statement.
pub async fn run_on(conn: &mut AsyncPgConnection) -> diesel::QueryResult<Option<RollupRun>> {
    conn.transaction(async |conn| {
        if !stats::try_rollup_lock(conn).await? {
            return Ok(None);
        }
        let prev = stats::rollup_state(conn).await?;
        let upto = closed_before(Utc::now(), prev.closed_before);
        let from = recompute_from(prev.closed_before);
        stats::roll_up(conn, from, upto, &prev).await.map(Some)
    })
    .await
}
