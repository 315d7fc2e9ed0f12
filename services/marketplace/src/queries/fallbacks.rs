//! The fallback log (`fallback_logs`).

use chrono::{DateTime, Utc};
use diesel::{pg::Pg, prelude::*};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use zimmer_db::{FilterSome, schema::fallback_logs};
use zimmer_events::contracts::internal::knowledge::{FALLBACK_RESOLVED, Fallback};

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = fallback_logs)]
#[diesel(check_for_backend(Pg))]
pub struct FallbackRow {
    pub id: i64,
    pub user_automation_id: i64,
    pub user_id: i64,
    pub automation_id: i64,
    pub message: String,
    pub error_type: Option<String>,
    pub status: String,
    pub created_at: DateTime<Utc>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub resolved_by: Option<i64>,
}

impl From<FallbackRow> for Fallback {
    fn from(f: FallbackRow) -> Self {
        Self {
            id: f.id,
            user_automation_id: f.user_automation_id,
            user_id: f.user_id,
            automation_id: f.automation_id,
            message: f.message,
            error_type: f.error_type,
            status: f.status,
            created_at: f.created_at,
            resolved_at: f.resolved_at,
            resolved_by: f.resolved_by,
        }
    }
}

/// What a new report stores.
#[derive(Debug, Insertable)]
#[diesel(table_name = fallback_logs)]
pub struct NewFallback<'a> {
    pub user_automation_id: i64,
    pub user_id: i64,
    pub automation_id: i64,
    pub message: &'a str,
    pub error_type: Option<&'a str>,
    pub idempotency_key: Option<&'a str>,
}

fn filtered(client_id: Option<i64>) -> fallback_logs::BoxedQuery<'static, Pg> {
    fallback_logs::table
        .into_boxed()
        .filter_some(client_id, |c| fallback_logs::user_id.eq(c))
}

/// A page, newest first; and the whole count.
pub async fn list(
    conn: &mut AsyncPgConnection,
    client_id: Option<i64>,
    offset: i64,
    limit: i64,
) -> QueryResult<(Vec<FallbackRow>, i64)> {
    let rows = filtered(client_id)
        .order((fallback_logs::created_at.desc(), fallback_logs::id.desc()))
        .select(FallbackRow::as_select());
    zimmer_db::paged(conn, filtered(client_id).count(), rows, offset, limit).await
}

/// Inserts a report; `None` when its idempotency key was already used by this automation.
pub async fn insert(
    conn: &mut AsyncPgConnection,
    new: &NewFallback<'_>,
) -> QueryResult<Option<FallbackRow>> {
    diesel::insert_into(fallback_logs::table)
        .values(new)
        .on_conflict((fallback_logs::automation_id, fallback_logs::idempotency_key))
        .do_nothing()
        .returning(FallbackRow::as_returning())
        .get_result(conn)
        .await
        .optional()
}

/// The report an automation stored under `key`.
pub async fn by_key(
    conn: &mut AsyncPgConnection,
    automation_id: i64,
    key: &str,
) -> QueryResult<Option<FallbackRow>> {
    fallback_logs::table
        .filter(fallback_logs::automation_id.eq(automation_id))
        .filter(fallback_logs::idempotency_key.eq(key))
        .select(FallbackRow::as_select())
        .first(conn)
        .await
        .optional()
}

/// Sets the status: resolving records who and when, reopening clears both. A fallback
/// already in that status is left as it is. `None` when there is no such fallback.
pub async fn set_status(
    conn: &mut AsyncPgConnection,
    id: i64,
    status: &str,
    actor_id: i64,
) -> QueryResult<Option<FallbackRow>> {
    let resolved = status == FALLBACK_RESOLVED;
    let changed = diesel::update(
        fallback_logs::table
            .filter(fallback_logs::id.eq(id))
            .filter(fallback_logs::status.ne(status)),
    )
    .set((
        fallback_logs::status.eq(status),
        fallback_logs::resolved_at.eq(resolved.then(Utc::now)),
        fallback_logs::resolved_by.eq(resolved.then_some(actor_id)),
    ))
    .returning(FallbackRow::as_returning())
    .get_result(conn)
    .await
    .optional()?;
    match changed {
        Some(row) => Ok(Some(row)),
        None => fallback_logs::table
            .find(id)
            .select(FallbackRow::as_select())
            .first(conn)
            .await
            .optional(),
    }
}
