//! OpenAI keys (admin's own table). Only ciphertexts and the last four characters are stored.

use chrono::{DateTime, Utc};
use diesel::{
    QueryResult,
    prelude::*,
    sql_types::{BigInt, Text},
};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use zimmer_db::{
    FilterSome,
    models::admin::{NewOpenAiKey, OpenAiKey, key_status},
    schema::{automations, openai_keys},
};

/// Filters of the key list (`GET /list?automation_id=&status=`).
#[derive(Debug, Clone, Default)]
pub struct KeyFilter {
    pub automation_id: Option<i64>,
    pub status: Option<String>,
}

/// Oldest first (the dashboard's table order), at most `limit`.
pub async fn list(
    conn: &mut AsyncPgConnection,
    filter: &KeyFilter,
    limit: i64,
) -> QueryResult<Vec<OpenAiKey>> {
    openai_keys::table
        .into_boxed()
        .filter_some(filter.automation_id, |a| openai_keys::automation_id.eq(a))
        .filter_some(filter.status.clone(), |s| openai_keys::status.eq(s))
        .select(OpenAiKey::as_select())
        .order(openai_keys::id)
        .limit(limit)
        .load(conn)
        .await
}

pub async fn get(conn: &mut AsyncPgConnection, id: i64) -> QueryResult<Option<OpenAiKey>> {
    openai_keys::table
        .find(id)
        .select(OpenAiKey::as_select())
        .first(conn)
        .await
        .optional()
}

pub async fn automation_exists(conn: &mut AsyncPgConnection, id: i64) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(automations::table.find(id)))
        .get_result(conn)
        .await
}

pub async fn insert(
    conn: &mut AsyncPgConnection,
    new: &NewOpenAiKey<'_>,
) -> QueryResult<OpenAiKey> {
    diesel::insert_into(openai_keys::table)
        .values(new)
        .returning(OpenAiKey::as_returning())
        .get_result(conn)
        .await
}

/// A partial update: `None` leaves the column alone; `Some(None)` clears a limit.
#[derive(Debug, Default, AsChangeset)]
#[diesel(table_name = openai_keys)]
pub struct KeyChanges {
    pub alias: Option<String>,
    pub status: Option<String>,
    pub daily_limit: Option<Option<i64>>,
    pub rpm_limit: Option<Option<i64>>,
    pub key_ciphertext: Option<Vec<u8>>,
    pub key_tail: Option<String>,
    pub updated_at: Option<DateTime<Utc>>,
}

pub async fn update(
    conn: &mut AsyncPgConnection,
    id: i64,
    changes: &KeyChanges,
) -> QueryResult<Option<OpenAiKey>> {
    diesel::update(openai_keys::table.find(id))
        .set(changes)
        .returning(OpenAiKey::as_returning())
        .get_result(conn)
        .await
        .optional()
}

pub async fn delete(conn: &mut AsyncPgConnection, id: i64) -> QueryResult<Option<OpenAiKey>> {
    diesel::delete(openai_keys::table.find(id))
        .returning(OpenAiKey::as_returning())
        .get_result(conn)
        .await
        .optional()
}

/// OpenAI refused the key (401/403 on a test): status `error`, one more failure.
pub async fn record_refusal(
    conn: &mut AsyncPgConnection,
    id: i64,
) -> QueryResult<Option<OpenAiKey>> {
    diesel::update(openai_keys::table.find(id))
        .set((
            openai_keys::status.eq(key_status::ERROR),
            openai_keys::failure_count.eq(openai_keys::failure_count + 1),
            openai_keys::updated_at.eq(diesel::dsl::now),
        ))
        .returning(OpenAiKey::as_returning())
        .get_result(conn)
        .await
        .optional()
}

/// A key marked `error` that passes a test works again: back to `active` (a disabled or
/// exhausted key keeps its status).
pub async fn clear_error(conn: &mut AsyncPgConnection, id: i64) -> QueryResult<usize> {
    diesel::update(
        openai_keys::table
            .find(id)
            .filter(openai_keys::status.eq(key_status::ERROR)),
    )
    .set((
        openai_keys::status.eq(key_status::ACTIVE),
        openai_keys::updated_at.eq(diesel::dsl::now),
    ))
    .execute(conn)
    .await
}

/// Picks a key of `automation_id` that may take one more request of `tokens` tokens and counts
/// it, in one statement (docs/panels.md "Counted when used"):
/// - usable: `active`, or `exhausted` on an earlier UTC day (the cap was that day's);
/// - under `rpm_limit` in the current minute (a count from an earlier minute reads as 0);
/// - `used_today` (0 when from an earlier UTC day) plus `tokens` within `daily_limit`;
/// - the least recently used such key; its row is locked, PostgreSQL re-checks the conditions
///   on the newest row version after the lock, and the counts are computed in the UPDATE from
///   that version, so concurrent leases never exceed a limit nor lose a count;
/// - reaching the daily cap marks it `exhausted`.
///
/// `None`: no key may take the request now.
pub async fn lease(
    conn: &mut AsyncPgConnection,
    automation_id: i64,
    tokens: i64,
) -> QueryResult<Option<OpenAiKey>> {
    diesel::sql_query(LEASE_SQL)
        .bind::<BigInt, _>(automation_id)
        .bind::<BigInt, _>(tokens)
        .bind::<Text, _>(key_status::ACTIVE)
        .bind::<Text, _>(key_status::EXHAUSTED)
        .get_result::<OpenAiKey>(conn)
        .await
        .optional()
}

const LEASE_SQL: &str = r#"
WITH clock AS (
    SELECT (now() AT TIME ZONE 'UTC')::date AS today, date_trunc('minute', now()) AS minute
),
pick AS (
    SELECT k.id
    FROM openai_keys k, clock c
    WHERE k.automation_id = $1
      AND (k.status = $3 OR (k.status = $4 AND k.usage_date < c.today))
      AND (k.rpm_limit IS NULL OR k.minute_window_start < c.minute
           OR k.used_requests_minute < k.rpm_limit)
      AND (k.daily_limit IS NULL
           OR (CASE WHEN k.usage_date = c.today THEN k.used_today ELSE 0 END) + $2 <= k.daily_limit)
    ORDER BY k.last_used_at ASC NULLS FIRST, k.id
    LIMIT 1
    FOR UPDATE OF k
)
UPDATE openai_keys k
SET used_today = (CASE WHEN k.usage_date = c.today THEN k.used_today ELSE 0 END) + $2,
    usage_date = c.today,
    used_requests_minute = CASE WHEN k.minute_window_start < c.minute THEN 1
                                ELSE k.used_requests_minute + 1 END,
    minute_window_start = CASE WHEN k.minute_window_start < c.minute THEN c.minute
                               ELSE k.minute_window_start END,
    status = CASE WHEN k.daily_limit IS NOT NULL
                   AND (CASE WHEN k.usage_date = c.today THEN k.used_today ELSE 0 END) + $2
                       >= k.daily_limit
                  THEN $4 ELSE $3 END,
    last_used_at = now(),
    updated_at = now()
FROM pick p, clock c
WHERE k.id = p.id
RETURNING k.*
"#;

/// How many keys of an automation could ever be leased (active, or exhausted: tomorrow).
pub async fn leasable_count(conn: &mut AsyncPgConnection, automation_id: i64) -> QueryResult<i64> {
    openai_keys::table
        .filter(openai_keys::automation_id.eq(automation_id))
        .filter(openai_keys::status.eq_any([key_status::ACTIVE, key_status::EXHAUSTED]))
        .count()
        .get_result(conn)
        .await
}
