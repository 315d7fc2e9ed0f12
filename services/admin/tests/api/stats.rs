//! Dashboard stats and analytics: computed by the database, revenue only for managers, cached
//! briefly in Redis.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use common::{With, World};
use reqwest::StatusCode;
use zimmer_jwt::Role;

/// What both dashboard suites start from (dashboard_rollup.rs too): customers c1, c2 (signed
/// up 400 days ago, so "new this month" is not everyone) and c3 (deactivated); c1's active
/// user automation ua1 of a1, c2's paused ua2; tickets open, in progress, pending, closed.
pub(crate) struct Base {
    pub c1: i64,
    pub a1: i64,
    pub ua1: i64,
    pub ua2: i64,
}

pub(crate) async fn base(w: &World) -> Base {
    let (c1, _) = w.user("c1@example.com", Role::Customer).await;
    let (c2, _) = w.user("c2@example.com", Role::Customer).await;
    let (c3, _) = w.user("c3@example.com", Role::Customer).await;
    w.update_user(c3, "is_active = false").await;
    w.update_user(c2, "created_at = now() - interval '400 days'")
        .await;
    let (a1, ua1) = w.automation_for(c1, "Listed bot", 100).await;
    let (_, ua2) = w.automation_for(c2, "Hidden bot", 0).await;
    w.sql(&format!(
        "UPDATE user_automations SET status = 'paused' WHERE id = {ua2}"
    ))
    .await;
    w.sql(&format!(
        "INSERT INTO tickets (user_id, title, description, status) VALUES \
         ({c1}, 't', 'd', 'open'), ({c1}, 't', 'd', 'in_progress'), \
         ({c2}, 't', 'd', 'pending'), ({c2}, 't', 'd', 'closed')"
    ))
    .await;
    Base { c1, a1, ua1, ua2 }
}

/// A small platform: [`base`], one automation unlisted, payments in several states,
/// consumption today and 10 days ago (and 40 days ago, outside the 30-day window).
async fn seed(w: &World) -> (i64, i64) {
    let Base { c1, a1, ua1, .. } = base(w).await;
    w.sql(&format!(
        "UPDATE automations SET is_listed = false WHERE id <> {a1}"
    ))
    .await;
    w.sql(&format!(
        "INSERT INTO payments (user_id, automation_id, user_automation_id, amount, \
         tokens_purchased, status, verified_at, created_at) VALUES \
         ({c1}, {a1}, {ua1}, 100000, 100, 'succeeded', now(), now()), \
         ({c1}, {a1}, {ua1}, 250000, 250, 'succeeded', now() - interval '2 days', now() - interval '2 days'), \
         ({c1}, {a1}, {ua1}, 700000, 700, 'succeeded', now() - interval '100 days', now() - interval '100 days'), \
         ({c1}, {a1}, {ua1}, 9000, 9, 'failed', NULL, now()), \
         ({c1}, {a1}, {ua1}, 9000, 9, 'pending', NULL, now())"
    ))
    .await;
    w.sql(&format!(
        "INSERT INTO token_ledger (user_automation_id, kind, delta, demo_delta, balance_after, \
         demo_balance_after, source_key, created_at) VALUES \
         ({ua1}, 'consumption', -3, -2, 95, 0, 'usage:1:a', now()), \
         ({ua1}, 'consumption', -7, 0, 88, 0, 'usage:1:b', now() - interval '10 days'), \
         ({ua1}, 'consumption', -50, 0, 38, 0, 'usage:1:c', now() - interval '40 days'), \
         ({ua1}, 'purchase', 100, 0, 138, 0, 'payment:1', now())"
    ))
    .await;
    (c1, ua1)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_numbers_are_right_and_revenue_is_for_managers_only() {
    let w = World::start(With::NONE).await;
    seed(&w).await;
    let [(_, manager), (_, support)] = w.staff([Role::Manager, Role::SupportStaff]).await;

    let v = w.json("/api/admin/dashboard/stats", &manager).await;
    assert_eq!(v["users"]["total"], 5);
    assert_eq!(v["users"]["active"], 4);
    assert_eq!(v["users"]["inactive"], 1);
    assert_eq!(v["users"]["new_this_month"], 4);
    assert_eq!(v["users"]["by_role"]["customer"], 3);
    assert_eq!(v["payments"]["total"], 5);
    assert_eq!(v["payments"]["by_status"]["succeeded"], 3);
    assert_eq!(v["payments"]["by_status"]["failed"], 1);
    assert_eq!(v["revenue"]["total"], 1_050_000);
    assert_eq!(v["revenue"]["today"], 100_000);
    assert_eq!(v["revenue"]["currency"], "IRR");
    // "This month" depends on the date the test runs: between today's and the 2-day sum.
    let month = v["revenue"]["this_month"].as_i64().unwrap();
    assert!(month == 100_000 || month == 350_000, "{month}");
    assert_eq!(v["automations"]["total"], 2);
    assert_eq!(v["automations"]["listed"], 1);
    assert_eq!(v["user_automations"]["total"], 2);
    assert_eq!(v["user_automations"]["active"], 1);
    assert_eq!(v["tokens"]["consumed_today"], 5);
    assert_eq!(v["tokens"]["consumed_30d"], 12);
    assert_eq!(v["tickets"]["open"], 3);
    assert_eq!(v["tickets"]["by_status"]["closed"], 1);

    // Other staff: the same numbers without revenue.
    let v = w.json("/api/admin/dashboard/stats", &support).await;
    assert!(v.get("revenue").is_none(), "{v}");
    assert!(!v.to_string().contains("1050000"));
    assert_eq!(v["users"]["total"], 5);
    assert_eq!(v["payments"]["total"], 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stats_are_cached_briefly_and_an_admin_action_invalidates_them() {
    let w = World::start_with(
        With {
            marketplace: true,
            ..With::NONE
        },
        &[("ADMIN_STATS_CACHE_SECS", "600")],
    )
    .await;
    let (_, ua) = seed(&w).await;
    let (_, tech) = w.user("tech@example.com", Role::TechnicalTeam).await;
    let first = w.json("/api/admin/dashboard/stats", &tech).await;
    w.user("late@example.com", Role::Customer).await;
    let cached = w.json("/api/admin/dashboard/stats", &tech).await;
    assert_eq!(cached["users"]["total"], first["users"]["total"]);
    assert_eq!(cached["generated_at"], first["generated_at"]);
    // A token adjustment changes the numbers: the cache is dropped.
    let payload = serde_json::json!({ "user_automation_id": ua, "delta": 1, "reason": "r", "idempotency_key": "cache-1" });
    w.post(
        "/api/admin/tokens/adjust",
        &tech,
        &payload,
        StatusCode::CREATED,
    )
    .await;
    let fresh = w.json("/api/admin/dashboard/stats", &tech).await;
    assert_eq!(
        fresh["users"]["total"].as_i64().unwrap(),
        first["users"]["total"].as_i64().unwrap() + 1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn analytics_series_have_one_point_per_day_with_zeros() {
    let w = World::start(With::NONE).await;
    seed(&w).await;
    let [(_, manager), (_, tech)] = w.staff([Role::Manager, Role::TechnicalTeam]).await;

    let v = w
        .json("/api/admin/analytics/revenue?days=7", &manager)
        .await;
    let points = v["points"].as_array().unwrap();
    assert_eq!(points.len(), 7);
    assert_eq!(v["metric"], "revenue");
    assert_eq!(points[6]["value"], 100_000, "today is last");
    assert_eq!(points[4]["value"], 250_000, "two days ago");
    assert_eq!(points[0]["value"], 0);
    assert_eq!(v["total"], 350_000);
    assert_eq!(v["count"], 2);
    assert_eq!(v["to"], points[6]["date"]);

    let v = w.json("/api/admin/analytics/usage?days=30", &tech).await;
    assert_eq!(v["points"].as_array().unwrap().len(), 30);
    assert_eq!(v["total"], 12, "the 40-day-old use is outside");
    assert_eq!(v["points"][29]["value"], 5);
    assert_eq!(v["points"][19]["value"], 7);

    let v = w.json("/api/admin/analytics/signups", &tech).await;
    assert_eq!(v["days"], 30);
    assert_eq!(v["total"], 4, "everyone but the 400-day-old account");

    for bad in ["days=0", "days=367", "days=-3"] {
        assert_eq!(
            w.get(&format!("/api/admin/analytics/usage?{bad}"), &tech)
                .await
                .status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "{bad}"
        );
    }
    assert_eq!(
        w.get("/api/admin/analytics/usage?days=ten", &tech)
            .await
            .status(),
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        w.get("/api/admin/analytics/revenue", &tech).await.status(),
        StatusCode::FORBIDDEN
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stats_are_served_when_redis_is_down() {
    let w = World::start_with(With::NONE, &[("REDIS_URL", "redis://127.0.0.1:1")]).await;
    seed(&w).await;
    let (_, manager) = w.user("boss@example.com", Role::Manager).await;
    let v = w.json("/api/admin/dashboard/stats", &manager).await;
    assert_eq!(v["revenue"]["total"], 1_050_000);
}
