//! Usage of tokens: consumption entries of the ledger. Days and months are UTC calendar days
//! and months.

use chrono::{DateTime, Utc};
use diesel::{
    prelude::*,
    sql_types::{BigInt, Integer, Text},
};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde::Serialize;
use zimmer_db::{FilterSome, schema::token_ledger};

/// One consumption as the customer sees it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct UsageRecord {
    pub id: i64,
    pub units: i64,
    pub demo_units: i64,
    pub paid_units: i64,
    pub usage_type: Option<String>,
    /// What the vendor reported with the usage (its `meta`), if anything.
    pub meta: serde_json::Value,
    pub tokens_remaining: i64,
    pub demo_tokens_remaining: i64,
    pub created_at: DateTime<Utc>,
}

type Row = (
    i64,
    i64,
    i64,
    i64,
    i64,
    Option<String>,
    serde_json::Value,
    DateTime<Utc>,
);

fn consumption_of(
    ua_id: i64,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
) -> token_ledger::BoxedQuery<'static, diesel::pg::Pg> {
    token_ledger::table
        .filter(token_ledger::user_automation_id.eq(ua_id))
        .filter(token_ledger::kind.eq("consumption"))
        .into_boxed()
        .filter_some(from, |f| token_ledger::created_at.ge(f))
        .filter_some(to, |t| token_ledger::created_at.lt(t))
}

/// A page of one user automation's usage, newest first, in `[from, to)`.
pub async fn history(
    conn: &mut AsyncPgConnection,
    ua_id: i64,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
    limit: i64,
    offset: i64,
) -> QueryResult<(Vec<UsageRecord>, i64)> {
    let rows = consumption_of(ua_id, from, to)
        .order((token_ledger::created_at.desc(), token_ledger::id.desc()))
        .select((
            token_ledger::id,
            token_ledger::delta,
            token_ledger::demo_delta,
            token_ledger::balance_after,
            token_ledger::demo_balance_after,
            token_ledger::usage_type,
            token_ledger::meta,
            token_ledger::created_at,
        ));
    let count = consumption_of(ua_id, from, to).count();
    let (rows, total): (Vec<Row>, i64) = zimmer_db::paged(conn, count, rows, offset, limit).await?;
    let items = rows
        .into_iter()
        .map(
            |(id, delta, demo_delta, balance_after, demo_after, usage_type, meta, created_at)| {
                UsageRecord {
                    id,
                    units: -(delta + demo_delta),
                    demo_units: -demo_delta,
                    paid_units: -delta,
                    usage_type,
                    meta: meta
                        .get("request_meta")
                        .cloned()
                        .unwrap_or(serde_json::Value::Null),
                    tokens_remaining: balance_after,
                    demo_tokens_remaining: demo_after,
                    created_at,
                }
            },
        )
        .collect();
    Ok((items, total))
}

#[derive(Debug, Serialize, QueryableByName, utoipa::ToSchema)]
pub struct DayUsage {
    #[diesel(sql_type = Text)]
    pub day: String,
    #[diesel(sql_type = BigInt)]
    pub tokens: i64,
    #[diesel(sql_type = BigInt)]
    pub sessions: i64,
}

/// The last `days` UTC days up to today, oldest first, zero-filled. `sessions` counts
/// consume calls.
pub async fn per_day(
    conn: &mut AsyncPgConnection,
    user_id: i64,
    days: i32,
) -> QueryResult<Vec<DayUsage>> {
    // The ledger is range-scanned per user automation on (user_automation_id, created_at).
    diesel::sql_query(
        "WITH bounds AS (
             SELECT (now() AT TIME ZONE 'UTC')::date - ($2 - 1) AS first_day
         ),
         days AS (
             SELECT generate_series(b.first_day, (now() AT TIME ZONE 'UTC')::date, interval '1 day')::date AS day
             FROM bounds b
         ),
         used AS (
             SELECT (l.created_at AT TIME ZONE 'UTC')::date AS day,
                    SUM(-(l.delta + l.demo_delta))::bigint AS tokens,
                    COUNT(*)::bigint AS sessions
             FROM token_ledger l
             JOIN user_automations ua ON ua.id = l.user_automation_id
             CROSS JOIN bounds b
             WHERE ua.user_id = $1
               AND l.kind = 'consumption'
               AND l.created_at >= (b.first_day::timestamp AT TIME ZONE 'UTC')
             GROUP BY 1
         )
         SELECT to_char(d.day, 'YYYY-MM-DD') AS day,
                COALESCE(u.tokens, 0)::bigint AS tokens,
                COALESCE(u.sessions, 0)::bigint AS sessions
         FROM days d LEFT JOIN used u ON u.day = d.day
         ORDER BY d.day",
    )
    .bind::<BigInt, _>(user_id)
    .bind::<Integer, _>(days)
    .load(conn)
    .await
}

#[derive(Debug, Serialize, QueryableByName, utoipa::ToSchema)]
pub struct MonthUsage {
    #[diesel(sql_type = Text)]
    pub month: String,
    #[diesel(sql_type = BigInt)]
    pub value: i64,
}

/// Tokens used in each of the last `months` UTC months (this one included), oldest first.
pub async fn per_month(
    conn: &mut AsyncPgConnection,
    user_id: i64,
    months: i32,
) -> QueryResult<Vec<MonthUsage>> {
    diesel::sql_query(
        "WITH bounds AS (
             SELECT (date_trunc('month', now() AT TIME ZONE 'UTC') - make_interval(months => $2 - 1)) AS first_month
         ),
         months AS (
             SELECT generate_series(b.first_month, date_trunc('month', now() AT TIME ZONE 'UTC'), interval '1 month') AS month
             FROM bounds b
         ),
         used AS (
             SELECT date_trunc('month', l.created_at AT TIME ZONE 'UTC') AS month,
                    SUM(-(l.delta + l.demo_delta))::bigint AS value
             FROM token_ledger l
             JOIN user_automations ua ON ua.id = l.user_automation_id
             CROSS JOIN bounds b
             WHERE ua.user_id = $1
               AND l.kind = 'consumption'
               AND l.created_at >= (b.first_month AT TIME ZONE 'UTC')
             GROUP BY 1
         )
         SELECT to_char(m.month, 'YYYY-MM') AS month, COALESCE(u.value, 0)::bigint AS value
         FROM months m LEFT JOIN used u ON u.month = m.month
         ORDER BY m.month",
    )
    .bind::<BigInt, _>(user_id)
    .bind::<Integer, _>(months)
    .load(conn)
    .await
}

#[derive(Debug, Serialize, QueryableByName, utoipa::ToSchema)]
pub struct Share {
    #[diesel(sql_type = Text)]
    pub name: String,
    #[diesel(sql_type = BigInt)]
    pub value: i64,
}

/// Tokens used per automation since `since` (all time when `None`); automations without use
/// are left out (a pie chart of zeros says nothing).
pub async fn distribution(
    conn: &mut AsyncPgConnection,
    user_id: i64,
    since: Option<DateTime<Utc>>,
) -> QueryResult<Vec<Share>> {
    diesel::sql_query(
        "SELECT a.name AS name, SUM(-(l.delta + l.demo_delta))::bigint AS value
         FROM user_automations ua
         JOIN automations a ON a.id = ua.automation_id
         JOIN token_ledger l ON l.user_automation_id = ua.id AND l.kind = 'consumption'
         WHERE ua.user_id = $1 AND ($2::timestamptz IS NULL OR l.created_at >= $2)
         GROUP BY a.id, a.name
         HAVING SUM(-(l.delta + l.demo_delta)) > 0
         ORDER BY value DESC, a.name",
    )
    .bind::<BigInt, _>(user_id)
    .bind::<diesel::sql_types::Nullable<diesel::sql_types::Timestamptz>, _>(since)
    .load(conn)
    .await
}
