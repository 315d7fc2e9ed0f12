//! The dashboard and analytics figures with the daily rollup equal a from-scratch count over
//! the raw rows: before any run, after a run, with rows that came late for a closed day, and
//! after the next run folds them in.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::Utc;
use zimmer_admin::domain::rollup::closed_before;

use crate::{
    common,
    stats::{Base, base},
};

use common::{With, World};
use diesel::{QueryableByName, sql_types::Jsonb};
use diesel_async::RunQueryDsl;
use serde_json::Value;
use zimmer_jwt::Role;

/// Redis down: every request computes (no cache between the steps of a test).
const NO_CACHE: &[(&str, &str)] = &[("REDIS_URL", "redis://127.0.0.1:1")];

/// [`base`], then rows over many days: today, yesterday, days in the 30-day window, its
/// edges, months back.
async fn seed(w: &World) -> i64 {
    let Base { c1, a1, ua1, ua2 } = base(w).await;
    let (c4, _) = w.user("c4@example.com", Role::Customer).await;
    let (c5, _) = w.user("c5@example.com", Role::Customer).await;
    w.user("support@example.com", Role::SupportStaff).await;
    w.update_user(c5, "created_at = now() - interval '5 days'")
        .await;
    w.update_user(c4, "deleted_at = now(), is_active = false")
        .await;
    w.sql(&format!(
        "UPDATE user_automations SET created_at = now() - interval '50 days' WHERE id = {ua2}"
    ))
    .await;
    let mut payments = Vec::new();
    for (i, (amount, status, ago)) in [
        (100_000, "succeeded", "0 days"),
        (200_000, "succeeded", "1 day"),
        (300_000, "succeeded", "3 days"),
        (400_000, "succeeded", "20 days"),
        (500_000, "succeeded", "45 days"),
        (600_000, "succeeded", "100 days"),
        (9_000, "failed", "0 days"),
        (9_000, "pending", "2 days"),
        (9_000, "canceled", "40 days"),
        (9_000, "expired", "8 days"),
        (9_000, "needs_review", "1 day"),
    ]
    .into_iter()
    .enumerate()
    {
        let verified = if status == "succeeded" {
            format!("now() - interval '{ago}'")
        } else {
            "NULL".to_owned()
        };
        payments.push(format!(
            "({c1}, {a1}, {ua1}, {amount}, {tokens}, '{status}', {verified}, now() - interval '{ago}', 'A{i}')",
            tokens = amount / 1000
        ));
    }
    w.sql(&format!(
        "INSERT INTO payments (user_id, automation_id, user_automation_id, amount, \
         tokens_purchased, status, verified_at, created_at, authority) VALUES {}",
        payments.join(", ")
    ))
    .await;
    let mut ledger = Vec::new();
    for (i, (paid, demo, ago)) in [
        (-3, -2, "0 days"),
        (-4, 0, "0 days"),
        (-5, 0, "1 day"),
        (-6, -1, "2 days"),
        (-7, 0, "10 days"),
        (-8, 0, "29 days 12 hours"),
        (-50, 0, "30 days 12 hours"),
        (-60, 0, "40 days"),
        (-70, 0, "200 days"),
    ]
    .into_iter()
    .enumerate()
    {
        ledger.push(format!(
            "({ua1}, 'consumption', {paid}, {demo}, 0, 0, 'usage:seed:{i}', now() - interval '{ago}')"
        ));
    }
    ledger.push(format!(
        "({ua1}, 'purchase', 100, 0, 100, 0, 'payment:seed', now() - interval '3 days')"
    ));
    w.sql(&format!(
        "INSERT INTO token_ledger (user_automation_id, kind, delta, demo_delta, balance_after, \
         demo_balance_after, source_key, created_at) VALUES {}",
        ledger.join(", ")
    ))
    .await;
    w.sql(&format!(
        "INSERT INTO tickets (user_id, title, description, status, deleted_at) VALUES \
         ({c1}, 't', 'd', 'open', now())"
    ))
    .await;
    ua1
}

#[derive(QueryableByName)]
struct J {
    #[diesel(sql_type = Jsonb)]
    j: Value,
}

/// The dashboard's figures counted from scratch over the raw rows (what the statement did
/// before the rollup).
async fn from_scratch(w: &World) -> Value {
    let mut conn = w.ctx.db.connect().await;
    let sql = "
        WITH b AS (
            SELECT date_trunc('month', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS month_start,
                   date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS day_start
        )
        SELECT jsonb_build_object(
          'users', jsonb_build_object(
             'total', (SELECT count(*) FROM users WHERE deleted_at IS NULL),
             'active', (SELECT count(*) FROM users WHERE deleted_at IS NULL AND is_active),
             'new_this_month', (SELECT count(*) FROM users, b
                                WHERE deleted_at IS NULL AND created_at >= b.month_start),
             'by_role', (SELECT jsonb_object_agg(role, n) FROM (
                           SELECT role, count(*) AS n FROM users WHERE deleted_at IS NULL
                           GROUP BY role) x)),
          'payments', jsonb_build_object(
             'total', (SELECT count(*) FROM payments),
             'by_status', (SELECT jsonb_object_agg(s, (SELECT count(*) FROM payments WHERE status = s))
                           FROM unnest(ARRAY['pending', 'verifying', 'succeeded', 'failed',
                                             'canceled', 'expired', 'needs_review']) AS s)),
          'revenue', jsonb_build_object(
             'total', (SELECT coalesce(sum(amount), 0) FROM payments WHERE status = 'succeeded'),
             'this_month', (SELECT coalesce(sum(amount), 0) FROM payments, b
                            WHERE status = 'succeeded' AND verified_at >= b.month_start),
             'today', (SELECT coalesce(sum(amount), 0) FROM payments, b
                       WHERE status = 'succeeded' AND verified_at >= b.day_start)),
          'user_automations', jsonb_build_object(
             'total', (SELECT count(*) FROM user_automations),
             'active', (SELECT count(*) FROM user_automations WHERE status = 'active')),
          'tokens', jsonb_build_object(
             'consumed_today', (SELECT coalesce(-sum(delta + demo_delta), 0) FROM token_ledger, b
                                WHERE kind = 'consumption' AND created_at >= b.day_start),
             'consumed_30d', (SELECT coalesce(-sum(delta + demo_delta), 0) FROM token_ledger
                              WHERE kind = 'consumption' AND created_at >= now() - interval '30 days')),
          'tickets', jsonb_build_object(
             'open', (SELECT count(*) FROM tickets WHERE deleted_at IS NULL
                      AND status IN ('open', 'pending', 'in_progress')),
             'by_status', (SELECT jsonb_object_agg(status, n) FROM (
                             SELECT status, count(*) AS n FROM tickets WHERE deleted_at IS NULL
                             GROUP BY status) x))
        ) AS j";
    diesel::sql_query(sql)
        .get_result::<J>(&mut conn)
        .await
        .unwrap()
        .j
}

/// One series counted from scratch: `[date, value, count]` per UTC day, oldest first.
async fn series_from_scratch(w: &World, metric: &str, days: i32) -> Value {
    let (table, ts, value, filter) = match metric {
        "revenue" => ("payments", "verified_at", "amount", "status = 'succeeded'"),
        "usage" => (
            "token_ledger",
            "created_at",
            "-(delta + demo_delta)",
            "kind = 'consumption'",
        ),
        _ => ("users", "created_at", "1", "TRUE"),
    };
    let sql = format!(
        "SELECT coalesce(jsonb_agg(jsonb_build_array(d::date, \
                  (SELECT coalesce(sum({value}), 0) FROM {table} \
                   WHERE {filter} AND ({ts} AT TIME ZONE 'UTC')::date = d::date), \
                  (SELECT count(*) FROM {table} \
                   WHERE {filter} AND ({ts} AT TIME ZONE 'UTC')::date = d::date)) ORDER BY d), '[]') AS j \
         FROM generate_series((now() AT TIME ZONE 'UTC')::date - {back}, \
                              (now() AT TIME ZONE 'UTC')::date, interval '1 day') AS d",
        back = days - 1
    );
    let mut conn = w.ctx.db.connect().await;
    diesel::sql_query(sql)
        .get_result::<J>(&mut conn)
        .await
        .unwrap()
        .j
}

/// Every figure of the dashboard and of the three series equals its count from scratch.
async fn assert_exact(w: &World, manager: &str, when: &str) {
    let expected = from_scratch(w).await;
    let got = w.json("/api/admin/dashboard/stats", manager).await;
    for (panel, fields) in expected.as_object().unwrap() {
        for (field, want) in fields.as_object().unwrap() {
            assert_eq!(
                &got[panel][field], want,
                "{when}: {panel}.{field} (got {got})"
            );
        }
    }
    for metric in ["revenue", "usage", "signups"] {
        let days = 500;
        let want = series_from_scratch(w, metric, days).await;
        let got = w
            .json(&format!("/api/admin/analytics/{metric}?days=366"), manager)
            .await;
        let points = got["points"].as_array().unwrap();
        let want = want.as_array().unwrap();
        let want = &want[want.len() - points.len()..];
        for (p, w) in points.iter().zip(want) {
            assert_eq!(p["date"], w[0], "{when}: {metric}");
            assert_eq!(p["value"], w[1], "{when}: {metric} on {}", w[0]);
            assert_eq!(p["count"], w[2], "{when}: {metric} on {}", w[0]);
        }
    }
}

async fn roll_up(w: &World) -> zimmer_admin::queries::stats::RollupRun {
    let mut conn = w.ctx.db.connect().await;
    zimmer_admin::workers::rollup::run_on(&mut conn)
        .await
        .unwrap()
        .expect("the rollup lock is free")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn figures_with_the_rollup_equal_a_count_from_scratch() {
    let w = World::start_with(With::NONE, NO_CACHE).await;
    let ua = seed(&w).await;
    let (_, manager) = w.user("boss@example.com", Role::Manager).await;

    // Never rolled up: every figure from the raw rows.
    assert_exact(&w, &manager, "before any run").await;

    // A run writes every closed day since the first row (the account made 400 days back),
    // zeros included, up to the first day not closed: today, or yesterday in the hour after
    // midnight UTC (so 400 days, or 399 then).
    let first_open_at_start = closed_before(Utc::now(), None);
    let run = roll_up(&w).await;
    let first_open_at_end = closed_before(Utc::now(), None);
    w.assert_count(
        &format!(
            "SELECT count(*) AS n FROM dashboard_rollup_state \
             WHERE closed_before IN ('{first_open_at_start}', '{first_open_at_end}')"
        ),
        1,
    )
    .await;
    let closed_days = w
        .count(
            "SELECT (closed_before - (SELECT (min(created_at) AT TIME ZONE 'UTC')::date \
                                      FROM users))::bigint AS n \
             FROM dashboard_rollup_state",
        )
        .await;
    assert!((399..=400).contains(&closed_days), "{closed_days}");
    assert_eq!(run.days, closed_days, "{run:?}");
    assert_eq!(
        w.count(
            "SELECT sum(tokens_consumed)::bigint AS n FROM dashboard_daily \
             WHERE day < (SELECT closed_before FROM dashboard_rollup_state)"
        )
        .await,
        w.count(
            "SELECT (-sum(delta + demo_delta))::bigint AS n FROM token_ledger \
             WHERE kind = 'consumption' \
             AND created_at < (SELECT closed_before FROM dashboard_rollup_state)::timestamp \
                              AT TIME ZONE 'UTC'"
        )
        .await
    );
    assert_exact(&w, &manager, "after a run").await;

    // Rows that come late for closed days (a back-dated consumption, payment, account, user
    // automation): counted at once, before any run folds them in.
    w.sql(&format!(
        "INSERT INTO token_ledger (user_automation_id, kind, delta, demo_delta, balance_after, \
         demo_balance_after, source_key, created_at) VALUES \
         ({ua}, 'consumption', -11, -1, 0, 0, 'usage:late:1', now() - interval '10 days'), \
         ({ua}, 'consumption', -13, 0, 0, 0, 'usage:late:2', now() - interval '300 days')"
    ))
    .await;
    w.sql(&format!(
        "INSERT INTO payments (user_id, automation_id, user_automation_id, amount, \
         tokens_purchased, status, verified_at, created_at, authority) \
         SELECT user_id, automation_id, id, 777000, 777, 'succeeded', \
                now() - interval '3 days', now() - interval '3 days', 'late' \
         FROM user_automations WHERE id = {ua}"
    ))
    .await;
    let (late_user, _) = w.user("late@example.com", Role::Customer).await;
    w.update_user(late_user, "created_at = now() - interval '6 days'")
        .await;
    w.sql(&format!(
        "INSERT INTO user_automations (user_id, automation_id, created_at) \
         SELECT {late_user}, automation_id, now() - interval '6 days' \
         FROM user_automations WHERE id = {ua}"
    ))
    .await;
    assert_exact(&w, &manager, "late rows, not rolled up yet").await;

    // The next run computes those days again and moves past the late rows' ids.
    let before = w
        .count("SELECT ledger_max_id AS n FROM dashboard_rollup_state")
        .await;
    let run = roll_up(&w).await;
    assert!(run.ledger_max_id > before, "{run:?}");
    w.assert_count(
        "SELECT tokens_consumed AS n FROM dashboard_daily \
         WHERE day = ((now() - interval '300 days') AT TIME ZONE 'UTC')::date",
        13,
    )
    .await;
    assert_exact(&w, &manager, "after the late rows were folded in").await;

    // Idempotent: running again changes no figure.
    let sums = "SELECT sum(tokens_consumed + consumption_entries + revenue + payments_succeeded \
                + signups + payments_created + user_automations_created)::bigint AS n \
                FROM dashboard_daily";
    let once = w.count(sums).await;
    roll_up(&w).await;
    w.assert_count(sums, once).await;
    assert_exact(&w, &manager, "after a second run").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_run_at_a_time() {
    let w = World::start_with(With::NONE, NO_CACHE).await;
    seed(&w).await;
    let mut holder = w.ctx.db.connect().await;
    // Another replica holds the lock (a session lock on the same key stands for it).
    diesel::sql_query("SELECT pg_advisory_lock(x'7a696d6d65727275'::bigint)")
        .execute(&mut holder)
        .await
        .unwrap();
    let mut conn = w.ctx.db.connect().await;
    let run = zimmer_admin::workers::rollup::run_on(&mut conn)
        .await
        .unwrap();
    assert!(run.is_none(), "{run:?}");
    w.assert_count("SELECT count(*) AS n FROM dashboard_daily", 0)
        .await;
    // Unlock explicitly: dropping the connection frees the lock only when the backend has
    // exited, which can come after the next statement (a flaky race otherwise).
    diesel::sql_query("SELECT pg_advisory_unlock(x'7a696d6d65727275'::bigint)")
        .execute(&mut holder)
        .await
        .unwrap();
    drop(holder);
    let run = zimmer_admin::workers::rollup::run_on(&mut conn)
        .await
        .unwrap();
    assert!(run.is_some());
}
