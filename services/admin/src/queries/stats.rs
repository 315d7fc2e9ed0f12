//! Dashboard aggregates and analytics series, computed by the database: one statement for the
//! whole dashboard (a CTE per panel, each one scan or index range), one per series. Days and
//! months are UTC (docs/api.md: timestamps are UTC).

use chrono::NaiveDate;
use diesel::{
    QueryResult, QueryableByName,
    sql_types::{Array, BigInt, Date, Integer, Jsonb, Text},
};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde::{Deserialize, Serialize};
use zimmer_db::models::billing::payment_status;

/// Everything the dashboard shows, revenue included (the handler drops it for non-managers).
#[derive(Debug, Clone, QueryableByName, Serialize, Deserialize)]
pub struct DashboardRow {
    #[diesel(sql_type = BigInt)]
    pub users_total: i64,
    #[diesel(sql_type = BigInt)]
    pub users_active: i64,
    #[diesel(sql_type = BigInt)]
    pub users_new_this_month: i64,
    #[diesel(sql_type = Jsonb)]
    pub users_by_role: serde_json::Value,
    #[diesel(sql_type = BigInt)]
    pub payments_total: i64,
    #[diesel(sql_type = Jsonb)]
    pub payments_by_status: serde_json::Value,
    #[diesel(sql_type = BigInt)]
    pub revenue_total: i64,
    #[diesel(sql_type = BigInt)]
    pub revenue_this_month: i64,
    #[diesel(sql_type = BigInt)]
    pub revenue_today: i64,
    #[diesel(sql_type = BigInt)]
    pub automations_total: i64,
    #[diesel(sql_type = BigInt)]
    pub automations_active: i64,
    #[diesel(sql_type = BigInt)]
    pub automations_listed: i64,
    #[diesel(sql_type = BigInt)]
    pub user_automations_total: i64,
    #[diesel(sql_type = BigInt)]
    pub user_automations_active: i64,
    #[diesel(sql_type = BigInt)]
    pub tokens_consumed_today: i64,
    #[diesel(sql_type = BigInt)]
    pub tokens_consumed_30d: i64,
    #[diesel(sql_type = BigInt)]
    pub tickets_open: i64,
    #[diesel(sql_type = Jsonb)]
    pub tickets_by_status: serde_json::Value,
}

/// Revenue is money actually received: succeeded payments, dated by `verified_at` (served by
/// the partial index `payments_succeeded_verified_idx`, index-only). Tokens consumed are the
/// consumption entries of the ledger, demo and paid together, by `(kind, created_at)`.
/// "Open" tickets are every status that still needs someone: open, pending, in_progress.
/// Payments by status count each status (`$1`, every status, zeros included) with an
/// index-only scan of `(status, created_at)`: about half the time of a `GROUP BY` over the
/// heap at 300k rows. MATERIALIZED: used twice, the per-status counts must run once.
pub const DASHBOARD_SQL: &str = r#"
WITH b AS (
    SELECT date_trunc('month', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS month_start,
           date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'   AS day_start
),
ur AS (
    SELECT role, count(*) AS n,
           count(*) FILTER (WHERE is_active) AS active,
           count(*) FILTER (WHERE created_at >= (SELECT month_start FROM b)) AS new_month
    FROM users WHERE deleted_at IS NULL GROUP BY role
),
u AS (
    SELECT coalesce(sum(n), 0)::bigint AS total,
           coalesce(sum(active), 0)::bigint AS active,
           coalesce(sum(new_month), 0)::bigint AS new_month,
           coalesce(jsonb_object_agg(role, n), '{}'::jsonb) AS by_role
    FROM ur
),
pc AS MATERIALIZED (
    SELECT s.status, (SELECT count(*) FROM payments WHERE payments.status = s.status) AS n
    FROM unnest($1::text[]) AS s (status)
),
p AS (
    SELECT coalesce(sum(n), 0)::bigint AS total,
           coalesce(jsonb_object_agg(status, n), '{}'::jsonb) AS by_status
    FROM pc
),
rev AS (
    SELECT coalesce(sum(amount), 0)::bigint AS total,
           coalesce(sum(amount) FILTER (WHERE verified_at >= (SELECT month_start FROM b)), 0)::bigint AS month,
           coalesce(sum(amount) FILTER (WHERE verified_at >= (SELECT day_start FROM b)), 0)::bigint AS today
    FROM payments
    WHERE status = 'succeeded' AND verified_at IS NOT NULL
),
a AS (
    SELECT count(*) AS total,
           count(*) FILTER (WHERE status = 'active') AS active,
           count(*) FILTER (WHERE status = 'active' AND is_listed) AS listed
    FROM automations
),
ua AS (
    SELECT count(*) AS total, count(*) FILTER (WHERE status = 'active') AS active
    FROM user_automations
),
tk AS (
    SELECT coalesce(-sum(delta + demo_delta) FILTER (WHERE created_at >= (SELECT day_start FROM b)), 0)::bigint AS today,
           coalesce(-sum(delta + demo_delta), 0)::bigint AS d30
    FROM token_ledger
    WHERE kind = 'consumption' AND created_at >= now() - interval '30 days'
),
t AS (
    SELECT coalesce(sum(n) FILTER (WHERE status IN ('open', 'pending', 'in_progress')), 0)::bigint AS open,
           coalesce(jsonb_object_agg(status, n), '{}'::jsonb) AS by_status
    FROM (SELECT status, count(*) AS n FROM tickets WHERE deleted_at IS NULL GROUP BY status) x
)
SELECT u.total AS users_total, u.active AS users_active, u.new_month AS users_new_this_month,
       u.by_role AS users_by_role,
       p.total AS payments_total, p.by_status AS payments_by_status,
       rev.total AS revenue_total, rev.month AS revenue_this_month, rev.today AS revenue_today,
       a.total AS automations_total, a.active AS automations_active, a.listed AS automations_listed,
       ua.total AS user_automations_total, ua.active AS user_automations_active,
       tk.today AS tokens_consumed_today, tk.d30 AS tokens_consumed_30d,
       t.open AS tickets_open, t.by_status AS tickets_by_status
FROM u, p, rev, a, ua, tk, t
"#;

pub async fn dashboard(conn: &mut AsyncPgConnection) -> QueryResult<DashboardRow> {
    diesel::sql_query(DASHBOARD_SQL)
        .bind::<Array<Text>, _>(payment_status::ALL.to_vec())
        .get_result(conn)
        .await
}

/// One day of a series; days without activity are present with zeros.
#[derive(Debug, Clone, QueryableByName, Serialize, Deserialize)]
pub struct DayPoint {
    #[diesel(sql_type = Date)]
    pub date: NaiveDate,
    /// Rials (revenue), tokens (usage) or accounts (signups).
    #[diesel(sql_type = BigInt)]
    pub value: i64,
    /// Payments (revenue), consumption entries (usage) or accounts (signups).
    #[diesel(sql_type = BigInt)]
    pub count: i64,
}

/// Which series.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Series {
    Revenue,
    Usage,
    Signups,
}

impl Series {
    pub fn name(self) -> &'static str {
        match self {
            Self::Revenue => "revenue",
            Self::Usage => "usage",
            Self::Signups => "signups",
        }
    }

    /// The per-day aggregate; `$1` is the number of days (today included). Each reads one
    /// index range: the partial succeeded-payments index, `(kind, created_at)` of the
    /// ledger, `users (created_at)`.
    fn inner_sql(self) -> &'static str {
        match self {
            Self::Revenue => {
                "SELECT (verified_at AT TIME ZONE 'UTC')::date AS day, sum(amount) AS value, count(*) AS n \
                 FROM payments WHERE status = 'succeeded' AND verified_at >= (SELECT start FROM r) \
                 GROUP BY 1"
            }
            Self::Usage => {
                "SELECT (created_at AT TIME ZONE 'UTC')::date AS day, -sum(delta + demo_delta) AS value, count(*) AS n \
                 FROM token_ledger WHERE kind = 'consumption' AND created_at >= (SELECT start FROM r) \
                 GROUP BY 1"
            }
            Self::Signups => {
                "SELECT (created_at AT TIME ZONE 'UTC')::date AS day, count(*) AS value, count(*) AS n \
                 FROM users WHERE created_at >= (SELECT start FROM r) \
                 GROUP BY 1"
            }
        }
    }
}

pub async fn series(
    conn: &mut AsyncPgConnection,
    series: Series,
    days: i32,
) -> QueryResult<Vec<DayPoint>> {
    let sql = format!(
        "WITH r AS (SELECT ((now() AT TIME ZONE 'UTC')::date - ($1 - 1)) AS first_day, \
                           ((now() AT TIME ZONE 'UTC')::date - ($1 - 1))::timestamp AT TIME ZONE 'UTC' AS start), \
              agg AS ({inner}) \
         SELECT d::date AS date, coalesce(agg.value, 0)::bigint AS value, coalesce(agg.n, 0)::bigint AS count \
         FROM generate_series((SELECT first_day FROM r), (now() AT TIME ZONE 'UTC')::date, interval '1 day') AS d \
         LEFT JOIN agg ON agg.day = d::date \
         ORDER BY 1",
        inner = series.inner_sql()
    );
    diesel::sql_query(sql)
        .bind::<Integer, _>(days)
        .load(conn)
        .await
}

#[derive(Debug, QueryableByName)]
struct Total {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// Every token ever consumed (demo and paid), never negative.
pub async fn tokens_consumed_ever(conn: &mut AsyncPgConnection) -> QueryResult<i64> {
    let t: Total = diesel::sql_query(
        "SELECT greatest(coalesce(-sum(delta + demo_delta), 0), 0)::bigint AS n \
         FROM token_ledger WHERE kind = 'consumption'",
    )
    .get_result(conn)
    .await?;
    Ok(t.n)
}
