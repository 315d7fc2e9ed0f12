//! Dashboard aggregates and analytics series, computed by the database. Days and months are
//! UTC (docs/api.md: timestamps are UTC).
//!
//! Sums over time (tokens consumed, revenue, signups) come from the daily rollup
//! (`dashboard_daily`, written by `workers::rollup`) for closed days, and from the raw rows
//! for the rest: the days from `closed_before` on (today at least) and the rows that came late
//! for a closed day (an id above the rollup's). Every figure is exact whatever the rollup's
//! state (never run, behind, just run): the rollup only makes it cheaper. The one row a closed
//! day can miss, and for how long, is described in `domain::rollup`. The rollup's state and
//! the figures are read in one snapshot (a REPEATABLE READ, read-only transaction): a run
//! committing in between would otherwise count a late row twice or not at all.

use chrono::NaiveDate;
use diesel::{
    QueryResult, QueryableByName,
    pg::Pg,
    query_builder::{BoxedSqlQuery, SqlQuery},
    sql_types::{Array, BigInt, Date, Integer, Jsonb, Nullable, Text},
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

/// How far the rollup goes (the row of `dashboard_rollup_state`; its default when absent:
/// nothing rolled up, every figure from the raw rows).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, QueryableByName)]
pub struct RollupState {
    /// Every day before it has its `dashboard_daily` row; `None`: none yet.
    #[diesel(sql_type = Nullable<Date>)]
    pub closed_before: Option<NaiveDate>,
    /// The highest id of each source the rollup saw: above it, a row is not in the rollup.
    #[diesel(sql_type = BigInt)]
    pub ledger_max_id: i64,
    #[diesel(sql_type = BigInt)]
    pub payments_max_id: i64,
    #[diesel(sql_type = BigInt)]
    pub users_max_id: i64,
    #[diesel(sql_type = BigInt)]
    pub user_automations_max_id: i64,
}

pub async fn rollup_state(conn: &mut AsyncPgConnection) -> QueryResult<RollupState> {
    use diesel::OptionalExtension;
    Ok(diesel::sql_query(
        "SELECT closed_before, ledger_max_id, payments_max_id, users_max_id, \
                user_automations_max_id FROM dashboard_rollup_state",
    )
    .get_result(conn)
    .await
    .optional()?
    .unwrap_or_default())
}

// SQL fragments shared by the statements below. Written inline (not as a CTE) so that the
// planner sees their values: `now()` is estimated at planning, the binds are known.

/// Today's start (UTC).
macro_rules! day_start {
    () => {
        "(date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC')"
    };
}
/// This month's start (UTC).
macro_rules! month_start {
    () => {
        "(date_trunc('month', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC')"
    };
}
/// The start of the rolling 30-day window.
macro_rules! d30_start {
    () => {
        "(now() - interval '30 days')"
    };
}
/// The first whole UTC day in the 30-day window (the partial day before it is read raw).
macro_rules! d30_full {
    () => {
        "((date_trunc('day', (now() - interval '30 days') AT TIME ZONE 'UTC') + interval '1 day') AT TIME ZONE 'UTC')"
    };
}
/// `closed_before` ($2) as a date; -infinity when nothing is rolled up.
macro_rules! w_day {
    () => {
        "coalesce($2::date, '-infinity'::date)"
    };
}
/// `closed_before` ($2) as a timestamp: the raw rows from here on are not in the rollup.
macro_rules! w_ts {
    () => {
        "(coalesce($2::date, '-infinity'::date)::timestamp AT TIME ZONE 'UTC')"
    };
}

/// The dashboard in one statement, a CTE per panel. Binds: `$1` every payment status, `$2`
/// `closed_before`, `$3`..`$6` the highest ledger, payment, user and user-automation ids of
/// the rollup ([`RollupState`]).
///
/// Revenue is money actually received: succeeded payments, dated by `verified_at` (the
/// partial index `payments_succeeded_verified_idx`, index-only). Tokens consumed are the
/// consumption entries of the ledger, demo and paid together (the partial index
/// `token_ledger_consumption_created_idx`). Both are: closed days from `dashboard_daily`,
/// plus the raw rows from `closed_before` on, plus the late rows of closed days (an id range
/// of the primary key, normally empty). The 30-day window is rolling: its first, partial day
/// is read raw.
///
/// Counts of current states (statuses and roles change, so they cannot be summed by day):
/// every account, payment and user automation ever is the rollup's per-day creations plus
/// the raw rows since (none is ever deleted: accounts are soft-deleted, money and balances
/// are kept); from it the query subtracts the minority, read from small partial indexes
/// (deleted and deactivated accounts, staff by role, user automations not active). A
/// succeeded payment stays succeeded, so their count is the revenue's; each other payment
/// status is an index-only count of `(status, created_at)` except `failed`, the rest.
/// "Open" tickets are every status that still needs someone: open, pending, in_progress.
/// MATERIALIZED: used twice, the per-status counts must run once.
pub const DASHBOARD_SQL: &str = concat!(
    r#"
WITH u_n AS (
    SELECT (SELECT coalesce(sum(signups), 0) FROM dashboard_daily WHERE day < "#,
    w_day!(),
    r#")
         + (SELECT count(*) FROM users WHERE created_at >= "#,
    w_ts!(),
    r#")
         + (SELECT count(*) FROM users WHERE id > $5 AND created_at < "#,
    w_ts!(),
    r#")
         - (SELECT count(*) FROM users WHERE deleted_at IS NOT NULL) AS total,
           (SELECT count(*) FROM users WHERE NOT is_active AND deleted_at IS NULL) AS inactive,
           (SELECT count(*) FROM users WHERE deleted_at IS NULL AND created_at >= "#,
    month_start!(),
    r#") AS new_month
),
u_staff AS (
    SELECT role, count(*) AS n FROM users
    WHERE role <> 'customer' AND deleted_at IS NULL GROUP BY role
),
ur AS (
    SELECT role, n FROM u_staff
    UNION ALL
    SELECT 'customer', (SELECT total FROM u_n) - (SELECT coalesce(sum(n), 0) FROM u_staff)
),
u AS (
    SELECT u_n.total::bigint AS total, (u_n.total - u_n.inactive)::bigint AS active,
           u_n.new_month::bigint AS new_month,
           (SELECT coalesce(jsonb_object_agg(role, n::bigint) FILTER (WHERE n > 0), '{}'::jsonb)
            FROM ur) AS by_role
    FROM u_n
),
rev_raw AS (
    SELECT verified_at, amount FROM payments
    WHERE status = 'succeeded' AND verified_at >= "#,
    w_ts!(),
    r#"
    UNION ALL
    SELECT verified_at, amount FROM payments
    WHERE id > $4 AND status = 'succeeded' AND verified_at < "#,
    w_ts!(),
    r#"
),
rev_live AS (
    SELECT count(*) AS n, coalesce(sum(amount), 0) AS total,
           coalesce(sum(amount) FILTER (WHERE verified_at >= "#,
    month_start!(),
    r#"), 0) AS month,
           coalesce(sum(amount) FILTER (WHERE verified_at >= "#,
    day_start!(),
    r#"), 0) AS today
    FROM rev_raw
),
rev_days AS (
    SELECT coalesce(sum(payments_succeeded), 0) AS n, coalesce(sum(payments_created), 0) AS created,
           coalesce(sum(revenue), 0) AS total,
           coalesce(sum(revenue) FILTER (WHERE day >= ("#,
    month_start!(),
    r#" AT TIME ZONE 'UTC')::date), 0) AS month,
           coalesce(sum(revenue) FILTER (WHERE day >= (now() AT TIME ZONE 'UTC')::date), 0) AS today
    FROM dashboard_daily WHERE day < "#,
    w_day!(),
    r#"
),
rev AS (
    SELECT (l.total + d.total)::bigint AS total, (l.month + d.month)::bigint AS month,
           (l.today + d.today)::bigint AS today
    FROM rev_live l, rev_days d
),
p_n AS (
    SELECT d.created
         + (SELECT count(*) FROM payments WHERE created_at >= "#,
    w_ts!(),
    r#")
         + (SELECT count(*) FROM payments WHERE id > $4 AND created_at < "#,
    w_ts!(),
    r#") AS total,
           l.n + d.n
         + (SELECT count(*) FROM payments WHERE status = 'succeeded' AND verified_at IS NULL)
           AS succeeded
    FROM rev_live l, rev_days d
),
pc AS MATERIALIZED (
    SELECT s.status, (SELECT count(*) FROM payments WHERE payments.status = s.status) AS n
    FROM unnest($1::text[]) AS s (status)
    WHERE s.status NOT IN ('succeeded', 'failed')
),
p AS (
    SELECT p_n.total::bigint AS total,
           (SELECT jsonb_object_agg(status, n::bigint) FROM (
               SELECT status, n FROM pc
               UNION ALL SELECT 'succeeded', p_n.succeeded
               UNION ALL SELECT 'failed', p_n.total - p_n.succeeded - (SELECT coalesce(sum(n), 0) FROM pc)
           ) x) AS by_status
    FROM p_n
),
a AS (
    SELECT count(*) AS total,
           count(*) FILTER (WHERE status = 'active') AS active,
           count(*) FILTER (WHERE status = 'active' AND is_listed) AS listed
    FROM automations
),
ua_n AS (
    SELECT (SELECT coalesce(sum(user_automations_created), 0) FROM dashboard_daily WHERE day < "#,
    w_day!(),
    r#")
         + (SELECT count(*) FROM user_automations WHERE created_at >= "#,
    w_ts!(),
    r#")
         + (SELECT count(*) FROM user_automations WHERE id > $6 AND created_at < "#,
    w_ts!(),
    r#") AS total
),
ua AS (
    SELECT total::bigint AS total,
           (total - (SELECT count(*) FROM user_automations WHERE status <> 'active'))::bigint AS active
    FROM ua_n
),
tk_raw AS (
    SELECT created_at, delta + demo_delta AS d FROM token_ledger
    WHERE kind = 'consumption' AND created_at >= "#,
    d30_start!(),
    " AND created_at < ",
    d30_full!(),
    r#"
    UNION ALL
    SELECT created_at, delta + demo_delta FROM token_ledger
    WHERE kind = 'consumption' AND created_at >= greatest("#,
    w_ts!(),
    ", ",
    d30_full!(),
    r#")
    UNION ALL
    SELECT created_at, delta + demo_delta FROM token_ledger
    WHERE id > $3 AND kind = 'consumption' AND created_at >= "#,
    d30_full!(),
    " AND created_at < ",
    w_ts!(),
    r#"
),
tk_live AS (
    SELECT coalesce(-sum(d) FILTER (WHERE created_at >= "#,
    day_start!(),
    r#"), 0) AS today,
           coalesce(-sum(d), 0) AS d30
    FROM tk_raw
),
tk_days AS (
    SELECT coalesce(sum(tokens_consumed) FILTER (WHERE day >= (now() AT TIME ZONE 'UTC')::date), 0) AS today,
           coalesce(sum(tokens_consumed), 0) AS d30
    FROM dashboard_daily
    WHERE day >= ("#,
    d30_full!(),
    " AT TIME ZONE 'UTC')::date AND day < ",
    w_day!(),
    r#"
),
tk AS (
    SELECT (l.today + d.today)::bigint AS today, (l.d30 + d.d30)::bigint AS d30
    FROM tk_live l, tk_days d
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
"#
);

/// [`DASHBOARD_SQL`] after `prefix` (`EXPLAIN …` for the benchmark), bound to `st`.
pub fn dashboard_query(prefix: &str, st: &RollupState) -> BoxedSqlQuery<'static, Pg, SqlQuery> {
    diesel::sql_query(format!("{prefix}{DASHBOARD_SQL}"))
        .into_boxed()
        .bind::<Array<Text>, _>(payment_status::ALL.to_vec())
        .bind::<Nullable<Date>, _>(st.closed_before)
        .bind::<BigInt, _>(st.ledger_max_id)
        .bind::<BigInt, _>(st.payments_max_id)
        .bind::<BigInt, _>(st.users_max_id)
        .bind::<BigInt, _>(st.user_automations_max_id)
}

/// The dashboard's figures, exact (see the module comment).
pub async fn dashboard(conn: &mut AsyncPgConnection) -> QueryResult<DashboardRow> {
    conn.build_transaction()
        .repeatable_read()
        .read_only()
        .run(async |conn| {
            let st = rollup_state(conn).await?;
            dashboard_query("", &st).get_result(conn).await
        })
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

/// What a series sums: raw rows of one table, and the matching `dashboard_daily` columns.
struct Source {
    table: &'static str,
    /// The row's timestamp, which decides its UTC day.
    ts: &'static str,
    /// What one row adds to `value`.
    value: &'static str,
    /// Which rows count (besides the time range).
    filter: &'static str,
    /// The rollup's columns for `value` and `count`.
    rolled_value: &'static str,
    rolled_count: &'static str,
}

impl Series {
    pub fn name(self) -> &'static str {
        match self {
            Self::Revenue => "revenue",
            Self::Usage => "usage",
            Self::Signups => "signups",
        }
    }

    /// The raw rows read the partial succeeded-payments index, the partial consumption index
    /// of the ledger, `users (created_at)`; the late rows a primary-key range.
    fn source(self) -> Source {
        match self {
            Self::Revenue => Source {
                table: "payments",
                ts: "verified_at",
                value: "amount",
                filter: "status = 'succeeded'",
                rolled_value: "revenue",
                rolled_count: "payments_succeeded",
            },
            Self::Usage => Source {
                table: "token_ledger",
                ts: "created_at",
                value: "-(delta + demo_delta)",
                filter: "kind = 'consumption'",
                rolled_value: "tokens_consumed",
                rolled_count: "consumption_entries",
            },
            Self::Signups => Source {
                table: "users",
                ts: "created_at",
                value: "1",
                filter: "TRUE",
                rolled_value: "signups",
                rolled_count: "signups",
            },
        }
    }

    /// The rollup's highest id of this series' table.
    fn max_id(self, st: &RollupState) -> i64 {
        match self {
            Self::Revenue => st.payments_max_id,
            Self::Usage => st.ledger_max_id,
            Self::Signups => st.users_max_id,
        }
    }

    /// The per-day series; `$1` is the number of days (today included), `$2` and `$3` the
    /// rollup's `closed_before` and highest id of the table.
    fn sql(self) -> String {
        let Source {
            table,
            ts,
            value,
            filter,
            rolled_value,
            rolled_count,
        } = self.source();
        let first_day = "((now() AT TIME ZONE 'UTC')::date - ($1 - 1))";
        let start = "(((now() AT TIME ZONE 'UTC')::date - ($1 - 1))::timestamp AT TIME ZONE 'UTC')";
        let (w_day, w_ts) = (w_day!(), w_ts!());
        format!(
            "WITH raw AS ( \
                 SELECT {ts} AS ts, {value} AS v FROM {table} \
                 WHERE {filter} AND {ts} >= greatest({start}, {w_ts}) \
                 UNION ALL \
                 SELECT {ts}, {value} FROM {table} \
                 WHERE id > $3 AND {filter} AND {ts} >= {start} AND {ts} < {w_ts} \
             ), \
             agg AS ( \
                 SELECT (ts AT TIME ZONE 'UTC')::date AS day, sum(v) AS value, count(*) AS n \
                 FROM raw GROUP BY 1 \
                 UNION ALL \
                 SELECT day, {rolled_value} AS value, {rolled_count} AS n FROM dashboard_daily \
                 WHERE day >= {first_day} AND day < {w_day} \
             ) \
             SELECT d::date AS date, coalesce(sum(agg.value), 0)::bigint AS value, \
                    coalesce(sum(agg.n), 0)::bigint AS count \
             FROM generate_series({first_day}, (now() AT TIME ZONE 'UTC')::date, interval '1 day') AS d \
             LEFT JOIN agg ON agg.day = d::date \
             GROUP BY 1 ORDER BY 1"
        )
    }
}

/// One point per UTC day of the last `days` (today included, last), zeros included; the same
/// figures as the dashboard (the rollup for closed days, raw rows for the rest).
pub async fn series(
    conn: &mut AsyncPgConnection,
    series: Series,
    days: i32,
) -> QueryResult<Vec<DayPoint>> {
    let sql = series.sql();
    conn.build_transaction()
        .repeatable_read()
        .read_only()
        .run(async |conn| {
            let st = rollup_state(conn).await?;
            diesel::sql_query(sql)
                .bind::<Integer, _>(days)
                .bind::<Nullable<Date>, _>(st.closed_before)
                .bind::<BigInt, _>(series.max_id(&st))
                .load(conn)
                .await
        })
        .await
}

#[derive(Debug, QueryableByName)]
struct Total {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// Every token ever consumed (demo and paid), never negative: closed days from the rollup,
/// the rest raw (as the dashboard).
pub async fn tokens_consumed_ever(conn: &mut AsyncPgConnection) -> QueryResult<i64> {
    let sql = concat!(
        "SELECT greatest((SELECT coalesce(sum(tokens_consumed), 0) FROM dashboard_daily WHERE day < ",
        w_day!(),
        ") - (SELECT coalesce(sum(delta + demo_delta), 0) FROM token_ledger \
              WHERE kind = 'consumption' AND created_at >= ",
        w_ts!(),
        ") - (SELECT coalesce(sum(delta + demo_delta), 0) FROM token_ledger \
              WHERE id > $1 AND kind = 'consumption' AND created_at < ",
        w_ts!(),
        "), 0)::bigint AS n"
    );
    conn.build_transaction()
        .repeatable_read()
        .read_only()
        .run(async |conn| {
            let st = rollup_state(conn).await?;
            let t: Total = diesel::sql_query(sql)
                .bind::<BigInt, _>(st.ledger_max_id)
                .bind::<Nullable<Date>, _>(st.closed_before)
                .get_result(conn)
                .await?;
            Ok(t.n)
        })
        .await
}

/// The advisory lock key of the rollup ("zimmerru"): one run at a time across replicas.
const ROLLUP_LOCK_KEY: i64 = 0x7a69_6d6d_6572_7275;

#[derive(Debug, QueryableByName)]
struct Locked {
    #[diesel(sql_type = diesel::sql_types::Bool)]
    locked: bool,
}

/// Takes the rollup's lock for the caller's transaction; false when another run holds it.
pub async fn try_rollup_lock(conn: &mut AsyncPgConnection) -> QueryResult<bool> {
    let got: Locked = diesel::sql_query("SELECT pg_try_advisory_xact_lock($1) AS locked")
        .bind::<BigInt, _>(ROLLUP_LOCK_KEY)
        .get_result(conn)
        .await?;
    Ok(got.locked)
}

/// What one run wrote.
#[derive(Debug, Clone, Copy, QueryableByName)]
pub struct RollupRun {
    /// `dashboard_daily` rows written (inserted or computed again).
    #[diesel(sql_type = BigInt)]
    pub days: i64,
    #[diesel(sql_type = BigInt)]
    pub ledger_max_id: i64,
    #[diesel(sql_type = BigInt)]
    pub payments_max_id: i64,
    #[diesel(sql_type = BigInt)]
    pub users_max_id: i64,
    #[diesel(sql_type = BigInt)]
    pub user_automations_max_id: i64,
}

/// One statement, so that the sums and the highest ids come from one snapshot: computes the
/// days from `$1` (NULL: from the first day with data) to `$2` (`closed_before`, excluded),
/// plus the days of the rows that came late since the last run (ids above `$3`..`$6`),
/// writes them into `dashboard_daily` (days without activity too, as zeros) and moves the
/// state to `$2` and the highest ids. Each day is an index range of each source.
const ROLLUP_SQL: &str = r#"
WITH mx AS (
    SELECT (SELECT coalesce(max(id), 0) FROM token_ledger) AS ledger,
           (SELECT coalesce(max(id), 0) FROM payments) AS payments,
           (SELECT coalesce(max(id), 0) FROM users) AS users,
           (SELECT coalesce(max(id), 0) FROM user_automations) AS user_automations
),
first AS (
    SELECT coalesce($1::date, (least(
        (SELECT min(created_at) FROM token_ledger WHERE kind = 'consumption'),
        (SELECT min(verified_at) FROM payments WHERE status = 'succeeded'),
        (SELECT min(created_at) FROM payments),
        (SELECT min(created_at) FROM users),
        (SELECT min(created_at) FROM user_automations)) AT TIME ZONE 'UTC')::date) AS day
),
days AS (
    SELECT first.day + i AS day FROM first, generate_series(0, $2::date - first.day - 1) AS i
    UNION
    SELECT (created_at AT TIME ZONE 'UTC')::date FROM token_ledger
    WHERE $1::date IS NOT NULL AND id > $3 AND kind = 'consumption'
      AND created_at < $2::date::timestamp AT TIME ZONE 'UTC'
    UNION
    SELECT (verified_at AT TIME ZONE 'UTC')::date FROM payments
    WHERE $1::date IS NOT NULL AND id > $4 AND status = 'succeeded'
      AND verified_at < $2::date::timestamp AT TIME ZONE 'UTC'
    UNION
    SELECT (created_at AT TIME ZONE 'UTC')::date FROM payments
    WHERE $1::date IS NOT NULL AND id > $4
      AND created_at < $2::date::timestamp AT TIME ZONE 'UTC'
    UNION
    SELECT (created_at AT TIME ZONE 'UTC')::date FROM users
    WHERE $1::date IS NOT NULL AND id > $5
      AND created_at < $2::date::timestamp AT TIME ZONE 'UTC'
    UNION
    SELECT (created_at AT TIME ZONE 'UTC')::date FROM user_automations
    WHERE $1::date IS NOT NULL AND id > $6
      AND created_at < $2::date::timestamp AT TIME ZONE 'UTC'
),
up AS (
    INSERT INTO dashboard_daily AS dd (day, tokens_consumed, consumption_entries, revenue,
                                       payments_succeeded, signups, payments_created,
                                       user_automations_created, computed_at)
    SELECT days.day, l.tokens, l.entries, p.revenue, p.n, u.n, pc.n, ua.n, now()
    FROM days
    CROSS JOIN LATERAL (
        SELECT coalesce(-sum(delta + demo_delta), 0)::bigint AS tokens, count(*) AS entries
        FROM token_ledger
        WHERE kind = 'consumption'
          AND created_at >= days.day::timestamp AT TIME ZONE 'UTC'
          AND created_at < (days.day + 1)::timestamp AT TIME ZONE 'UTC') l
    CROSS JOIN LATERAL (
        SELECT coalesce(sum(amount), 0)::bigint AS revenue, count(*) AS n
        FROM payments
        WHERE status = 'succeeded'
          AND verified_at >= days.day::timestamp AT TIME ZONE 'UTC'
          AND verified_at < (days.day + 1)::timestamp AT TIME ZONE 'UTC') p
    CROSS JOIN LATERAL (
        SELECT count(*) AS n
        FROM users
        WHERE created_at >= days.day::timestamp AT TIME ZONE 'UTC'
          AND created_at < (days.day + 1)::timestamp AT TIME ZONE 'UTC') u
    CROSS JOIN LATERAL (
        SELECT count(*) AS n
        FROM payments
        WHERE created_at >= days.day::timestamp AT TIME ZONE 'UTC'
          AND created_at < (days.day + 1)::timestamp AT TIME ZONE 'UTC') pc
    CROSS JOIN LATERAL (
        SELECT count(*) AS n
        FROM user_automations
        WHERE created_at >= days.day::timestamp AT TIME ZONE 'UTC'
          AND created_at < (days.day + 1)::timestamp AT TIME ZONE 'UTC') ua
    ON CONFLICT (day) DO UPDATE SET
        tokens_consumed = excluded.tokens_consumed,
        consumption_entries = excluded.consumption_entries,
        revenue = excluded.revenue,
        payments_succeeded = excluded.payments_succeeded,
        signups = excluded.signups,
        payments_created = excluded.payments_created,
        user_automations_created = excluded.user_automations_created,
        computed_at = excluded.computed_at
    RETURNING 1
),
st AS (
    INSERT INTO dashboard_rollup_state AS s (id, closed_before, ledger_max_id, payments_max_id,
                                             users_max_id, user_automations_max_id, computed_at)
    SELECT TRUE, $2::date, mx.ledger, mx.payments, mx.users, mx.user_automations, now() FROM mx
    ON CONFLICT (id) DO UPDATE SET
        closed_before = excluded.closed_before,
        ledger_max_id = excluded.ledger_max_id,
        payments_max_id = excluded.payments_max_id,
        users_max_id = excluded.users_max_id,
        user_automations_max_id = excluded.user_automations_max_id,
        computed_at = excluded.computed_at
    RETURNING 1
)
SELECT (SELECT count(*) FROM up) AS days, mx.ledger AS ledger_max_id,
       mx.payments AS payments_max_id, mx.users AS users_max_id,
       mx.user_automations AS user_automations_max_id
FROM mx, (SELECT count(*) FROM st) AS written
"#;

/// Rolls up the days from `from` (`None`: from the first day with data) to `closed_before`
/// (excluded), and the days of the rows that came late since `prev`. Call it in a transaction
/// holding [`try_rollup_lock`].
pub async fn roll_up(
    conn: &mut AsyncPgConnection,
    from: Option<NaiveDate>,
    closed_before: NaiveDate,
    prev: &RollupState,
) -> QueryResult<RollupRun> {
    diesel::sql_query(ROLLUP_SQL)
        .bind::<Nullable<Date>, _>(from)
        .bind::<Date, _>(closed_before)
        .bind::<BigInt, _>(prev.ledger_max_id)
        .bind::<BigInt, _>(prev.payments_max_id)
        .bind::<BigInt, _>(prev.users_max_id)
        .bind::<BigInt, _>(prev.user_automations_max_id)
        .get_result(conn)
        .await
}
