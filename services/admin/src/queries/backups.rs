//! The backup log (`backup_logs`, admin's own table).

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use zimmer_db::{
    FilterSome,
    models::admin::{BackupLog, NewBackupLog, backup_status},
    schema::backup_logs,
};

pub async fn insert(
    conn: &mut AsyncPgConnection,
    new: &NewBackupLog<'_>,
) -> QueryResult<BackupLog> {
    diesel::insert_into(backup_logs::table)
        .values(new)
        .returning(BackupLog::as_returning())
        .get_result(conn)
        .await
}

pub async fn find(conn: &mut AsyncPgConnection, id: i64) -> QueryResult<Option<BackupLog>> {
    backup_logs::table
        .find(id)
        .select(BackupLog::as_select())
        .first(conn)
        .await
        .optional()
}

/// Runs left `running` by a process that died mid-run. Only called while holding the backup
/// lock, so no run is really in progress.
pub async fn fail_interrupted(conn: &mut AsyncPgConnection) -> QueryResult<usize> {
    diesel::update(backup_logs::table.filter(backup_logs::status.eq(backup_status::RUNNING)))
        .set((
            backup_logs::status.eq(backup_status::FAILED),
            backup_logs::error.eq("interrupted (the service stopped during the run)"),
            backup_logs::finished_at.eq(diesel::dsl::now),
        ))
        .execute(conn)
        .await
}

pub async fn finish_success(
    conn: &mut AsyncPgConnection,
    id: i64,
    size: i64,
    sha256: &str,
) -> QueryResult<usize> {
    diesel::update(backup_logs::table.find(id))
        .set((
            backup_logs::status.eq(backup_status::SUCCESS),
            backup_logs::file_size.eq(size),
            backup_logs::checksum_sha256.eq(sha256),
            backup_logs::finished_at.eq(diesel::dsl::now),
        ))
        .execute(conn)
        .await
}

pub async fn finish_failed(
    conn: &mut AsyncPgConnection,
    id: i64,
    error: &str,
) -> QueryResult<usize> {
    diesel::update(backup_logs::table.find(id))
        .set((
            backup_logs::status.eq(backup_status::FAILED),
            backup_logs::error.eq(error),
            backup_logs::finished_at.eq(diesel::dsl::now),
        ))
        .execute(conn)
        .await
}

pub async fn mark_verified(
    conn: &mut AsyncPgConnection,
    id: i64,
    method: &str,
) -> QueryResult<usize> {
    diesel::update(backup_logs::table.find(id))
        .set((
            backup_logs::verified.eq(true),
            backup_logs::verified_at.eq(diesel::dsl::now),
            backup_logs::verify_method.eq(method),
            backup_logs::error.eq(None::<String>),
        ))
        .execute(conn)
        .await
}

/// A failed verification leaves `verified` as it was and says why.
pub async fn note_error(conn: &mut AsyncPgConnection, id: i64, error: &str) -> QueryResult<usize> {
    diesel::update(backup_logs::table.find(id))
        .set(backup_logs::error.eq(error))
        .execute(conn)
        .await
}

pub struct ListFilter {
    pub status: Option<String>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    pub limit: i64,
    pub offset: i64,
}

/// Finished runs, newest first.
pub async fn list(conn: &mut AsyncPgConnection, f: &ListFilter) -> QueryResult<Vec<BackupLog>> {
    backup_logs::table
        .filter(backup_logs::status.ne(backup_status::RUNNING))
        .select(BackupLog::as_select())
        .into_boxed()
        .filter_some(f.status.clone(), |s| backup_logs::status.eq(s))
        .filter_some(f.from, |from| backup_logs::backup_date.ge(from))
        .filter_some(f.to, |to| backup_logs::backup_date.lt(to))
        .order((backup_logs::backup_date.desc(), backup_logs::id.desc()))
        .limit(f.limit)
        .offset(f.offset)
        .load(conn)
        .await
}

/// Every finished run (the stats are over the rows kept, a few hundred at most).
pub async fn finished(conn: &mut AsyncPgConnection) -> QueryResult<Vec<BackupLog>> {
    backup_logs::table
        .filter(backup_logs::status.ne(backup_status::RUNNING))
        .select(BackupLog::as_select())
        .order(backup_logs::backup_date.desc())
        .load(conn)
        .await
}

/// When the last run started (any outcome), for the schedule.
pub async fn last_started(conn: &mut AsyncPgConnection) -> QueryResult<Option<DateTime<Utc>>> {
    backup_logs::table
        .select(diesel::dsl::max(backup_logs::backup_date))
        .first(conn)
        .await
}

/// Finished runs started before `before`, except the newest successful one (never removed).
pub async fn older_than(
    conn: &mut AsyncPgConnection,
    before: DateTime<Utc>,
) -> QueryResult<Vec<BackupLog>> {
    let newest_ok: Option<i64> = backup_logs::table
        .filter(backup_logs::status.eq(backup_status::SUCCESS))
        .order((backup_logs::backup_date.desc(), backup_logs::id.desc()))
        .select(backup_logs::id)
        .first(conn)
        .await
        .optional()?;
    backup_logs::table
        .filter(backup_logs::status.ne(backup_status::RUNNING))
        .filter(backup_logs::backup_date.lt(before))
        .filter(backup_logs::id.ne(newest_ok.unwrap_or(0)))
        .select(BackupLog::as_select())
        .order(backup_logs::backup_date.asc())
        .load(conn)
        .await
}

pub async fn delete(conn: &mut AsyncPgConnection, id: i64) -> QueryResult<usize> {
    diesel::delete(backup_logs::table.find(id))
        .execute(conn)
        .await
}
