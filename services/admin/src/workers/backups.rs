//! The backup schedule (docs/operations.md "Backups"): one replica at a time makes the due run,
//! then cleans up.

use std::time::Duration;

use chrono::Utc;
use zimmer_db::pool::DbPool;

use crate::{
    config::BackupConfig,
    domain::backups::Schedule,
    ops::backups::{cleanup, run_inner, start, try_lock},
    queries,
};

/// The schedule: every minute, a replica that gets the lock makes a run when one is due (see
/// [`Schedule::due`]), then cleans up with `BACKUP_RETENTION_DAYS`. Off without `BACKUP_DIR`,
/// with `BACKUP_SCHEDULE_ENABLED=false`, or with `BACKUP_INTERVAL_HOURS=0` and no
/// `BACKUP_DAILY_AT`.
pub fn spawn_schedule(pool: DbPool, cfg: BackupConfig) {
    let (Some(_), Some(schedule)) = (&cfg.dir, cfg.schedule) else {
        return;
    };
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(60));
        loop {
            tick.tick().await;
            if let Err(e) = scheduled_once(&pool, &cfg, schedule).await {
                tracing::error!(error = %e, "scheduled backup");
            }
        }
    });
}

async fn scheduled_once(
    pool: &DbPool,
    cfg: &BackupConfig,
    schedule: Schedule,
) -> anyhow::Result<()> {
    let Some(lock) = try_lock(pool).await? else {
        return Ok(()); // another replica (or a manual run) is at it
    };
    let last = {
        let mut conn = pool.get().await?;
        queries::backups::last_started(&mut conn).await?
    };
    if !schedule.due(last, Utc::now()) {
        return Ok(());
    }
    let row = start(pool, cfg, "scheduled", None).await?;
    let outcome = run_inner(pool, cfg, &row).await;
    tracing::info!(
        backup_id = outcome.backup_id,
        ok = outcome.ok,
        "scheduled backup"
    );
    let cleaned = cleanup(pool, cfg, cfg.retention_days).await?;
    lock.release().await;
    if !cleaned.is_empty() {
        tracing::info!(count = cleaned.len(), "old backups removed");
    }
    Ok(())
}
