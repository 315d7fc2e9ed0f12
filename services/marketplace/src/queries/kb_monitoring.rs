//! KB monitoring: who to ask (an automation's customers, one user automation) and the
//! `kb_status_history` table (docs/panels.md "KB monitoring: status, reset, history").

use chrono::{DateTime, NaiveDate, Utc};
use diesel::{
    prelude::*,
    sql_types::{BigInt, Bool, Date, Jsonb, Nullable, Text, Timestamptz},
};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use zimmer_db::schema::{automations, kb_status_history, user_automations, users};

/// An automation as a KB status request needs it.
#[derive(Debug, Clone, Queryable)]
pub struct StatusTarget {
    pub name: String,
    pub kb_status_url: Option<String>,
    pub token_hash: Option<Vec<u8>>,
}

pub async fn status_target(
    conn: &mut AsyncPgConnection,
    automation_id: i64,
) -> QueryResult<Option<StatusTarget>> {
    automations::table
        .find(automation_id)
        .select((
            automations::name,
            automations::api_kb_status_url,
            automations::service_token_hash,
        ))
        .first(conn)
        .await
        .optional()
}

/// One customer of an automation.
#[derive(Debug, Clone, Queryable)]
pub struct Customer {
    pub user_automation_id: i64,
    pub user_id: i64,
    pub name: String,
}

/// The automation's user automations that are not canceled, with their owner's name, in the
/// order the status table lists them (user automation id ascending).
pub async fn customers(
    conn: &mut AsyncPgConnection,
    automation_id: i64,
) -> QueryResult<Vec<Customer>> {
    user_automations::table
        .inner_join(users::table)
        .filter(user_automations::automation_id.eq(automation_id))
        .filter(user_automations::status.ne("canceled"))
        .order(user_automations::id.asc())
        .select((user_automations::id, user_automations::user_id, users::name))
        .load(conn)
        .await
}

/// One user automation and its automation, as a reset needs them.
#[derive(Debug, Clone, Queryable)]
pub struct ResetTarget {
    pub user_automation_id: i64,
    pub user_id: i64,
    pub automation_id: i64,
    pub automation_name: String,
    pub kb_reset_url: Option<String>,
    pub token_hash: Option<Vec<u8>>,
}

pub async fn reset_target(
    conn: &mut AsyncPgConnection,
    user_automation_id: i64,
) -> QueryResult<Option<ResetTarget>> {
    user_automations::table
        .inner_join(automations::table)
        .filter(user_automations::id.eq(user_automation_id))
        .select((
            user_automations::id,
            user_automations::user_id,
            automations::id,
            automations::name,
            automations::api_kb_reset_url,
            automations::service_token_hash,
        ))
        .first(conn)
        .await
        .optional()
}

/// One history row to write.
#[derive(Debug, Clone)]
pub struct NewCheck {
    pub user_id: i64,
    pub user_automation_id: i64,
    pub automation_id: i64,
    pub kb_health: &'static str,
    pub backup_status: bool,
    pub supports_reset: bool,
    pub error_logs: serde_json::Value,
    pub checked_at: DateTime<Utc>,
}

pub async fn insert_checks(conn: &mut AsyncPgConnection, rows: &[NewCheck]) -> QueryResult<usize> {
    use kb_status_history as h;
    if rows.is_empty() {
        return Ok(0);
    }
    let values: Vec<_> = rows
        .iter()
        .map(|r| {
            (
                h::user_id.eq(r.user_id),
                h::user_automation_id.eq(r.user_automation_id),
                h::automation_id.eq(r.automation_id),
                h::kb_health.eq(r.kb_health),
                h::backup_status.eq(r.backup_status),
                h::supports_reset.eq(r.supports_reset),
                h::error_logs.eq(&r.error_logs),
                h::checked_at.eq(r.checked_at),
            )
        })
        .collect();
    diesel::insert_into(h::table)
        .values(values)
        .execute(conn)
        .await
}

/// The history filters; dates are already `[from, to)` instants.
#[derive(Debug, Clone, Default)]
pub struct HistoryFilter {
    pub automation_id: Option<i64>,
    pub user_id: Option<i64>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
}

/// The filter as SQL; its four parameters are bound as `$1..$4` by [`bind_filter`] (a null
/// parameter is no filter).
const WHERE: &str = "WHERE ($1::int8 IS NULL OR h.automation_id = $1) \
    AND ($2::int8 IS NULL OR h.user_id = $2) \
    AND ($3::timestamptz IS NULL OR h.checked_at >= $3) \
    AND ($4::timestamptz IS NULL OR h.checked_at < $4)";

macro_rules! bind_filter {
    ($query:expr, $f:expr) => {
        $query
            .bind::<Nullable<BigInt>, _>($f.automation_id)
            .bind::<Nullable<BigInt>, _>($f.user_id)
            .bind::<Nullable<Timestamptz>, _>($f.from)
            .bind::<Nullable<Timestamptz>, _>($f.to)
    };
}

#[derive(Debug, Clone, QueryableByName)]
pub struct HistoryRow {
    #[diesel(sql_type = BigInt)]
    pub id: i64,
    #[diesel(sql_type = BigInt)]
    pub user_id: i64,
    #[diesel(sql_type = Nullable<Text>)]
    pub user_name: Option<String>,
    #[diesel(sql_type = BigInt)]
    pub user_automation_id: i64,
    #[diesel(sql_type = BigInt)]
    pub automation_id: i64,
    #[diesel(sql_type = Nullable<Text>)]
    pub automation_name: Option<String>,
    #[diesel(sql_type = Text)]
    pub kb_health: String,
    #[diesel(sql_type = Bool)]
    pub backup_status: bool,
    #[diesel(sql_type = Jsonb)]
    pub error_logs: serde_json::Value,
    #[diesel(sql_type = Timestamptz)]
    pub checked_at: DateTime<Utc>,
}

/// A page of the history, newest first.
pub async fn history(
    conn: &mut AsyncPgConnection,
    f: &HistoryFilter,
    offset: i64,
    limit: i64,
) -> QueryResult<Vec<HistoryRow>> {
    let sql = format!(
        "SELECT h.id, h.user_id, u.name AS user_name, h.user_automation_id, h.automation_id, \
         a.name AS automation_name, h.kb_health, h.backup_status, h.error_logs, h.checked_at \
         FROM kb_status_history h \
         LEFT JOIN users u ON u.id = h.user_id \
         LEFT JOIN automations a ON a.id = h.automation_id \
         {WHERE} ORDER BY h.checked_at DESC, h.id DESC OFFSET $5 LIMIT $6"
    );
    bind_filter!(diesel::sql_query(sql), f)
        .bind::<BigInt, _>(offset)
        .bind::<BigInt, _>(limit)
        .load(conn)
        .await
}

#[derive(Debug, Clone, QueryableByName)]
pub struct HealthCount {
    #[diesel(sql_type = Text)]
    pub kb_health: String,
    #[diesel(sql_type = BigInt)]
    pub n: i64,
    #[diesel(sql_type = BigInt)]
    pub backed_up: i64,
}

/// Rows per `kb_health`, and how many of them have a backup.
pub async fn health_counts(
    conn: &mut AsyncPgConnection,
    f: &HistoryFilter,
) -> QueryResult<Vec<HealthCount>> {
    let sql = format!(
        "SELECT h.kb_health, count(*) AS n, count(*) FILTER (WHERE h.backup_status) AS backed_up \
         FROM kb_status_history h {WHERE} GROUP BY h.kb_health"
    );
    bind_filter!(diesel::sql_query(sql), f).load(conn).await
}

#[derive(Debug, Clone, QueryableByName)]
pub struct DayCount {
    #[diesel(sql_type = Date)]
    pub day: NaiveDate,
    #[diesel(sql_type = Text)]
    pub kb_health: String,
    #[diesel(sql_type = BigInt)]
    pub n: i64,
}

/// Rows per UTC day and `kb_health`.
pub async fn day_counts(
    conn: &mut AsyncPgConnection,
    f: &HistoryFilter,
) -> QueryResult<Vec<DayCount>> {
    let sql = format!(
        "SELECT (h.checked_at AT TIME ZONE 'UTC')::date AS day, h.kb_health, count(*) AS n \
         FROM kb_status_history h {WHERE} GROUP BY 1, 2"
    );
    bind_filter!(diesel::sql_query(sql), f).load(conn).await
}
