//! The backups page (README.md, "Backups"): list, stats, trigger, verify, cleanup. The work
//! itself is in [`crate::ops::backups`]; files are never served, rows show their name only.

use actix_web::{HttpResponse, http::StatusCode, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use zimmer_db::models::admin::{BackupLog, backup_status};
use zimmer_http::{ApiError, HttpResult, time_bound};

use super::one_of;
use crate::{
    AppState,
    ops::{Audit, audit_after, backups},
    queries,
    rbac::Staff,
};

#[derive(Debug, Serialize)]
pub struct BackupView {
    pub id: i64,
    pub backup_date: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub database_name: String,
    pub file_name: String,
    pub file_size: i64,
    pub checksum_sha256: Option<String>,
    pub status: String,
    pub error: Option<String>,
    pub storage_location: String,
    pub verified: bool,
    pub verified_at: Option<DateTime<Utc>>,
    pub verify_method: Option<String>,
    pub trigger: String,
    pub actor_id: Option<i64>,
    pub created_at: DateTime<Utc>,
}

impl From<BackupLog> for BackupView {
    fn from(b: BackupLog) -> Self {
        Self {
            id: b.id,
            backup_date: b.backup_date,
            finished_at: b.finished_at,
            database_name: b.database_name,
            file_name: b.file_name,
            file_size: b.file_size,
            checksum_sha256: b.checksum_sha256,
            status: b.status,
            error: b.error,
            storage_location: b.storage_location,
            verified: b.verified,
            verified_at: b.verified_at,
            verify_method: b.verify_method,
            trigger: b.trigger,
            actor_id: b.actor_id,
            created_at: b.created_at,
        }
    }
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    status_filter: Option<String>,
    from_date: Option<String>,
    to_date: Option<String>,
    limit: Option<i64>,
    page: Option<i64>,
}

fn db_error(e: impl Into<anyhow::Error>) -> ApiError {
    ApiError::internal(e)
}

/// A bare array, newest first (the page reads it so).
pub async fn list(
    _staff: Staff,
    state: web::Data<AppState>,
    q: web::Query<ListQuery>,
) -> HttpResult {
    if state.config.backups.dir.is_none() {
        return Ok(HttpResponse::Ok().json(Vec::<BackupView>::new()));
    }
    let status = one_of(
        "status_filter",
        q.status_filter.as_deref(),
        &[backup_status::SUCCESS, backup_status::FAILED],
    )?;
    let from = time_bound("from_date", q.from_date.as_deref(), false)?;
    let to = time_bound("to_date", q.to_date.as_deref(), true)?;
    let limit = q.limit.unwrap_or(50);
    if !(1..=100).contains(&limit) {
        return Err(ApiError::invalid("limit", "must be between 1 and 100"));
    }
    let page = q.page.unwrap_or(1);
    if page < 1 {
        return Err(ApiError::invalid("page", "must be 1 or more"));
    }
    let mut conn = state.platform.pool.get().await.map_err(db_error)?;
    let rows = queries::backups::list(
        &mut conn,
        &queries::backups::ListFilter {
            status,
            from,
            to,
            limit,
            offset: (page - 1).saturating_mul(limit),
        },
    )
    .await
    .map_err(db_error)?;
    let rows: Vec<BackupView> = rows.into_iter().map(BackupView::from).collect();
    Ok(HttpResponse::Ok().json(rows))
}

pub async fn stats(_staff: Staff, state: web::Data<AppState>) -> HttpResult {
    let rows = if state.config.backups.dir.is_none() {
        Vec::new()
    } else {
        let mut conn = state.platform.pool.get().await.map_err(db_error)?;
        queries::backups::finished(&mut conn)
            .await
            .map_err(db_error)?
    };
    let ok = |b: &&BackupLog| b.status == backup_status::SUCCESS;
    Ok(HttpResponse::Ok().json(json!({
        "total_backups": rows.len(),
        "successful_backups": rows.iter().filter(ok).count(),
        "failed_backups": rows.iter().filter(|b| b.status == backup_status::FAILED).count(),
        "verified_backups": rows.iter().filter(|b| b.verified).count(),
        "last_successful_backup": rows.iter().find(ok).map(|b| b.backup_date),
        "total_size_bytes": rows.iter().map(|b| b.file_size).sum::<i64>(),
    })))
}

fn off() -> ApiError {
    ApiError::unavailable("Backups are not configured on this server (BACKUP_DIR is not set)")
        .with_code("backups_off")
}

fn busy() -> ApiError {
    ApiError::conflict(
        "backup_running",
        "A backup job (run, verification or cleanup) is already running; try again when it has finished",
    )
}

/// Starts a run and answers when it ends, waiting at most `BACKUP_TRIGGER_WAIT_SECS`; a run
/// still going then answers 202 and finishes on its own.
pub async fn trigger(staff: Staff, state: web::Data<AppState>) -> HttpResult {
    let cfg = state.config.backups.clone();
    if cfg.dir.is_none() {
        return Err(off());
    }
    let pool = state.platform.pool.clone();
    let lock = backups::try_lock(&pool)
        .await
        .map_err(ApiError::internal)?
        .ok_or_else(busy)?;
    let row = backups::start(&pool, &cfg, "manual", Some(staff.id()))
        .await
        .map_err(ApiError::internal)?;
    let id = row.id;
    audit_after(
        &state,
        &staff,
        Audit::new("backup.trigger", "backup", Some(id), json!({})),
        None,
    )
    .await;
    // The run is a task of its own: a client that goes away does not cut it short.
    let job = tokio::spawn(backups::run(pool, cfg.clone(), row, lock));
    match tokio::time::timeout(cfg.trigger_wait, job).await {
        Err(_) => Ok(HttpResponse::Accepted().json(json!({
            "status": "success",
            "message": "started, still running",
            "backup_id": id,
        }))),
        Ok(Err(e)) => Err(ApiError::internal(e)),
        Ok(Ok(outcome)) => Ok(HttpResponse::Ok().json(json!({
            "status": if outcome.ok { "success" } else { "failed" },
            "message": outcome.message,
            "backup_id": outcome.backup_id,
        }))),
    }
}

/// Verifies one backup again (checksum, `pg_restore --list`, and a restore into the scratch
/// database when one is configured).
pub async fn verify(staff: Staff, state: web::Data<AppState>, path: web::Path<i64>) -> HttpResult {
    let id = path.into_inner();
    let cfg = state.config.backups.clone();
    let pool = state.platform.pool.clone();
    let row = {
        let mut conn = pool.get().await.map_err(db_error)?;
        queries::backups::find(&mut conn, id)
            .await
            .map_err(db_error)?
    };
    let row = row
        .filter(|r| r.status != backup_status::RUNNING)
        .ok_or_else(|| ApiError::not_found("No such backup"))?;
    if cfg.dir.is_none() {
        return Err(off());
    }
    if row.status != backup_status::SUCCESS {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "not_verifiable",
            "Only a successful backup can be verified",
        ));
    }
    let lock = backups::try_lock(&pool)
        .await
        .map_err(ApiError::internal)?
        .ok_or_else(busy)?;
    let job = tokio::spawn(async move {
        let result = backups::verify_and_record(&pool, &cfg, &row).await;
        lock.release().await;
        result
    });
    let result = job.await.map_err(ApiError::internal)?;
    audit_after(
        &state,
        &staff,
        Audit::new(
            "backup.verify",
            "backup",
            Some(id),
            json!({ "verified": result.is_ok() }),
        ),
        None,
    )
    .await;
    match result {
        Ok(v) => Ok(HttpResponse::Ok().json(json!({
            "message": format!("Backup verified ({})", v.method),
            "verified": true,
            "verify_method": v.method,
            "row_counts": v.row_counts,
        }))),
        Err(e) => Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "verification_failed",
            format!("Verification failed at {}", e.0),
        )),
    }
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CleanupQuery {
    retention_days: Option<String>,
}

/// Removes backups older than `retention_days` (1-365; default `BACKUP_RETENTION_DAYS`), files
/// and rows, never the newest successful one.
pub async fn cleanup(
    staff: Staff,
    state: web::Data<AppState>,
    q: web::Query<CleanupQuery>,
) -> HttpResult {
    let cfg = state.config.backups.clone();
    let days = match q.retention_days.as_deref().map(str::trim) {
        None | Some("") => cfg.retention_days,
        Some(raw) => raw
            .parse::<i64>()
            .ok()
            .filter(|d| (1..=365).contains(d))
            .ok_or_else(|| ApiError::invalid("retention_days", "must be between 1 and 365"))?,
    };
    if cfg.dir.is_none() {
        return Ok(HttpResponse::Ok().json(json!({
            "message": "Backups are not configured; nothing to clean up",
            "deleted_count": 0,
            "cleaned_files": [],
        })));
    }
    let pool = state.platform.pool.clone();
    let lock = backups::try_lock(&pool)
        .await
        .map_err(ApiError::internal)?
        .ok_or_else(busy)?;
    let cleaned = backups::cleanup(&pool, &cfg, days)
        .await
        .map_err(ApiError::internal)?;
    lock.release().await;
    audit_after(
        &state,
        &staff,
        Audit::new(
            "backup.cleanup",
            "backup",
            None::<i64>,
            json!({ "retention_days": days, "cleaned_files": cleaned }),
        ),
        None,
    )
    .await;
    Ok(HttpResponse::Ok().json(json!({
        "message": format!("{} backup(s) older than {days} days removed", cleaned.len()),
        "deleted_count": cleaned.len(),
        "cleaned_files": cleaned,
    })))
}
