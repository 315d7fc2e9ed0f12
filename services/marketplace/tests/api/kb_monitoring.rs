//! KB monitoring through the internal API (docs/panels.md "KB monitoring: status, reset,
//! history"): the vendor's answers mapped per customer and kept in `kb_status_history`, slow
//! vendors and the time limit, resets of exactly one user automation, and the history's list,
//! counts and chart.

use std::time::{Duration, Instant};

use crate::common::*;
use reqwest::StatusCode;
use serde_json::{Value, json};
use zimmer_fake_vendor::{FakeVendor, FakeVendorConfig, KbAnswer};
use zimmer_testkit::{TestApp, TestContext, str_at};

async fn sql(ctx: &TestContext, sql: &str) {
    use diesel_async::RunQueryDsl;
    let mut conn = ctx.db.connect().await;
    diesel::sql_query(sql).execute(&mut conn).await.unwrap();
}

/// An automation whose KB URLs lead to a fresh fake vendor that knows its service token.
async fn kb_automation(app: &TestApp, ctx: &TestContext, name: &str) -> (i64, FakeVendor) {
    let id = automation_with(app, json!({ "name": name })).await;
    let token = issue_token(app, id).await;
    let vendor = FakeVendor::start(FakeVendorConfig {
        host: "127.0.0.1".to_owned(),
        port: 0,
        service_tokens: vec![token],
        marketplace_url: app.address.clone(),
    })
    .await
    .unwrap();
    sql(
        ctx,
        &format!(
            "UPDATE automations SET api_kb_status_url = '{}', api_kb_reset_url = '{}' \
             WHERE id = {id}",
            vendor.kb_status_url(),
            vendor.kb_reset_url()
        ),
    )
    .await;
    (id, vendor)
}

/// A customer named `name` with a user automation of `automation` in `status`.
async fn subscriber(ctx: &TestContext, name: &str, automation: i64, status: &str) -> (i64, i64) {
    let user = ctx
        .create_user(
            &format!("{}@example.com", name.to_lowercase()),
            zimmer_jwt::Role::Customer,
        )
        .await;
    sql(
        ctx,
        &format!("UPDATE users SET name = '{name}' WHERE id = {user}"),
    )
    .await;
    let ua = db_count(
        ctx,
        &format!(
            "WITH x AS (INSERT INTO user_automations (user_id, automation_id, status) \
             VALUES ({user}, {automation}, '{status}') RETURNING id) SELECT id AS n FROM x"
        ),
    )
    .await;
    (user, ua)
}

async fn get(app: &TestApp, path: &str) -> (StatusCode, Value) {
    let res = internal(app.get(path)).call().await;
    let status = res.status();
    (status, res.json().await.unwrap_or(Value::Null))
}

async fn post(app: &TestApp, path: &str) -> (StatusCode, Value) {
    let res = internal(app.post(path)).call().await;
    let status = res.status();
    (status, res.json().await.unwrap_or(Value::Null))
}

/// The rows of a status report (panics when it has none).
fn rows(report: &Value) -> &Vec<Value> {
    report["kb_statuses"]
        .as_array()
        .unwrap_or_else(|| panic!("no kb_statuses in {report}"))
}

fn row(report: &Value, ua: i64) -> &Value {
    rows(report)
        .iter()
        .find(|r| r["user_automation_id"] == ua)
        .unwrap_or_else(|| panic!("no row for {ua} in {report}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_maps_each_vendor_answer_and_keeps_one_history_row_per_customer() {
    let (ctx, app) = market().await;
    let (id, vendor) = kb_automation(&app, &ctx, "KB Bot").await;
    let (u_ok, ok) = subscriber(&ctx, "Olga", id, "active").await;
    let (_, warn) = subscriber(&ctx, "Wim", id, "paused").await;
    let (_, prob) = subscriber(&ctx, "Pia", id, "active").await;
    let (_, odd) = subscriber(&ctx, "Odo", id, "active").await;
    let (_, down) = subscriber(&ctx, "Dan", id, "active").await;
    let (_, gone) = subscriber(&ctx, "Gus", id, "canceled").await;
    vendor.set_kb_status_for(ok, KbAnswer::status("OK"));
    vendor.set_kb_status_for(
        warn,
        KbAnswer::body(json!({
            "status": "degraded",
            "backup_status": true,
            "supports_reset": true,
            "error_logs": ["index is 3 days old"],
            "last_updated": "2026-12-01T08:00:00Z",
        })),
    );
    vendor.set_kb_status_for(prob, KbAnswer::body(json!({ "status": "problematic" })));
    vendor.set_kb_status_for(odd, KbAnswer::status("on fire"));
    vendor.set_kb_status_for(down, KbAnswer::status("healthy").http(500));

    let (status, report) = get(&app, &format!("/internal/kb/status?automation_id={id}")).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["automation_id"], id);
    assert_eq!(report["automation_name"], "KB Bot");
    assert_eq!(report["total_users"], 5, "canceled customers are not asked");
    let order = zimmer_testkit::ids_in(&report["kb_statuses"], "user_automation_id");
    assert_eq!(order, vec![ok, warn, prob, odd, down]);
    assert!(!order.contains(&gone));

    let r = row(&report, ok);
    assert_eq!(
        (
            &r["kb_health"],
            &r["user_id"],
            &r["name"],
            &r["supports_reset"],
            &r["backup_status"]
        ),
        (
            &json!("healthy"),
            &json!(u_ok),
            &json!("Olga"),
            &json!(true),
            &json!(false)
        )
    );
    assert_eq!(r["error_logs"], json!([]));
    let r = row(&report, warn);
    assert_eq!(r["kb_health"], "warning");
    assert_eq!(r["backup_status"], true);
    assert_eq!(r["error_logs"], json!(["index is 3 days old"]));
    assert_eq!(r["last_updated"], "2026-12-01T08:00:00Z");
    let r = row(&report, prob);
    assert_eq!(r["kb_health"], "problematic");
    assert_eq!(
        (&r["supports_reset"], &r["error_logs"]),
        (&json!(false), &json!([]))
    );
    assert!(r["last_updated"].is_string(), "the time of the check");
    let r = row(&report, odd);
    assert_eq!(r["kb_health"], "error");
    assert!(
        r["error_logs"][0].as_str().unwrap().contains("on fire"),
        "{r}"
    );
    let r = row(&report, down);
    assert_eq!(r["kb_health"], "error");
    assert!(r["error_logs"][0].as_str().unwrap().contains("500"), "{r}");

    // The vendor was asked once per customer, signed, with the customer's ids.
    let calls = vendor.kb_status_calls();
    assert_eq!(calls.len(), 5);
    assert!(calls.iter().all(|c| c.signed));
    assert!(
        calls
            .iter()
            .any(|c| c.user_automation_id == ok && c.user_id == Some(u_ok))
    );

    // One history row per customer per request.
    let n = |sql: String| {
        let ctx = &ctx;
        async move { db_count(ctx, &sql).await }
    };
    assert_eq!(
        n(format!(
            "SELECT count(*) AS n FROM kb_status_history WHERE automation_id = {id}"
        ))
        .await,
        5
    );
    assert_eq!(
        n(format!(
            "SELECT count(*) AS n FROM kb_status_history WHERE user_automation_id = {warn} \
             AND kb_health = 'warning' AND backup_status AND supports_reset \
             AND error_logs = '[\"index is 3 days old\"]'::jsonb"
        ))
        .await,
        1
    );
    assert_eq!(
        n(format!(
            "SELECT count(*) AS n FROM kb_status_history WHERE kb_health = 'error' AND automation_id = {id}"
        ))
        .await,
        2
    );
    let (status, _) = get(&app, &format!("/internal/kb/status?automation_id={id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        n(format!(
            "SELECT count(*) AS n FROM kb_status_history WHERE automation_id = {id}"
        ))
        .await,
        10
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_vendors_are_errors_and_the_time_limit_reports_the_rest_as_not_checked() {
    let (ctx, app) = market_with(&[
        ("KB_CALL_TIMEOUT_MS", "1000"),
        ("KB_STATUS_DEADLINE_MS", "1500"),
        ("KB_CONCURRENCY", "2"),
    ])
    .await;
    let (id, vendor) = kb_automation(&app, &ctx, "Slow KB").await;
    let mut uas = Vec::new();
    for name in ["Ann", "Ben", "Cid", "Dee", "Eve", "Fay"] {
        uas.push(subscriber(&ctx, name, id, "active").await.1);
    }
    vendor.set_kb_status(KbAnswer::status("healthy").slow(600));
    vendor.set_kb_status_for(uas[0], KbAnswer::status("healthy").slow(5_000));

    let started = Instant::now();
    let (status, report) = get(&app, &format!("/internal/kb/status?automation_id={id}")).await;
    let took = started.elapsed();
    assert_eq!(status, StatusCode::OK, "{report}");
    assert!(took < Duration::from_millis(3_000), "took {took:?}");
    assert_eq!(report["total_users"], 6);

    let slow = row(&report, uas[0]);
    assert_eq!(slow["kb_health"], "error");
    assert!(
        slow["error_logs"][0]
            .as_str()
            .unwrap()
            .contains("timed out"),
        "{slow}"
    );
    let not_checked: Vec<&Value> = rows(&report)
        .iter()
        .filter(|r| r["error_logs"] == json!(["not checked: time limit"]))
        .collect();
    assert!(!not_checked.is_empty(), "{report}");
    assert!(not_checked.iter().all(|r| r["kb_health"] == "error"));
    assert!(
        rows(&report).iter().any(|r| r["kb_health"] == "healthy"),
        "{report}"
    );
    // Every customer has its row, the unchecked ones too.
    assert_db_count(
        &ctx,
        &format!("SELECT count(*) AS n FROM kb_status_history WHERE automation_id = {id}"),
        6,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_calls_run_at_most_kb_concurrency_at_a_time() {
    let (ctx, app) = market_with(&[("KB_CONCURRENCY", "3")]).await;
    let (id, vendor) = kb_automation(&app, &ctx, "Busy KB").await;
    for name in ["Al", "Bo", "Cy", "Di", "Ed", "Fi", "Gil"] {
        subscriber(&ctx, name, id, "active").await;
    }
    vendor.set_kb_status(KbAnswer::status("healthy").slow(300));
    let started = Instant::now();
    let (status, report) = get(&app, &format!("/internal/kb/status?automation_id={id}")).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert!(
        rows(&report).iter().all(|r| r["kb_health"] == "healthy"),
        "{report}"
    );
    // 7 calls of 300 ms, 3 at a time: three rounds, never more than 3 at once.
    assert_eq!(vendor.kb_max_in_flight(), 3);
    assert!(started.elapsed() >= Duration::from_millis(900));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_needs_a_known_automation_with_a_kb_status_url() {
    let (ctx, app) = market().await;
    let plain = create_automation(&app, json!({ "name": "No KB" })).await["id"]
        .as_i64()
        .unwrap();
    let (status, body) = get(&app, &format!("/internal/kb/status?automation_id={plain}")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(str_at(&body, "detail").contains("KB status URL"));
    let (status, _) = get(&app, "/internal/kb/status?automation_id=999999").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = get(&app, "/internal/kb/status").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = get(&app, "/internal/kb/status?automation_id=x").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    // Without the internal credential, nothing.
    let res = app
        .get(&format!("/internal/kb/status?automation_id={plain}"))
        .call()
        .await;
    assert!(res.status() == StatusCode::UNAUTHORIZED || res.status() == StatusCode::FORBIDDEN);
    assert_db_count(&ctx, "SELECT count(*) AS n FROM kb_status_history", 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_reaches_exactly_one_user_automation_and_vendor_failures_are_502() {
    let (ctx, app) = market_with(&[("KB_CALL_TIMEOUT_MS", "500")]).await;
    let (id, vendor) = kb_automation(&app, &ctx, "Reset Bot").await;
    let (_, a) = subscriber(&ctx, "Ada", id, "active").await;
    let (_, b) = subscriber(&ctx, "Bob", id, "active").await;

    let (status, body) = post(&app, &format!("/internal/kb/reset/{b}")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["user_automation_id"], b);
    assert_eq!(body["automation_id"], id);
    assert_eq!(body["automation_name"], "Reset Bot");
    assert_eq!(body["reset_status"], "reset_started");
    assert!(body["message"].is_string());
    let resets = vendor.kb_resets();
    assert_eq!(resets.len(), 1);
    assert_eq!(resets[0].user_automation_id, b);
    assert!(resets[0].signed);
    assert_ne!(resets[0].user_automation_id, a);

    vendor.set_kb_reset(KbAnswer::body(json!({ "detail": "busy" })).http(503));
    let (status, body) = post(&app, &format!("/internal/kb/reset/{a}")).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
    assert_eq!(body["code"], "vendor_error");
    assert!(str_at(&body, "detail").contains("503"), "{body}");

    vendor.set_kb_reset(KbAnswer::body(json!({ "status": "ok" })).slow(2_000));
    let (status, body) = post(&app, &format!("/internal/kb/reset/{a}")).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
    assert!(str_at(&body, "detail").contains("timed out"), "{body}");

    let (status, _) = post(&app, "/internal/kb/reset/999999").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    sql(
        &ctx,
        &format!("UPDATE automations SET api_kb_reset_url = NULL WHERE id = {id}"),
    )
    .await;
    let (status, body) = post(&app, &format!("/internal/kb/reset/{a}")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(str_at(&body, "detail").contains("KB reset URL"));
    assert_eq!(
        vendor.kb_resets().len(),
        3,
        "no call without a URL or a customer"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_lists_counts_and_charts_with_filters() {
    let (ctx, app) = market().await;
    let a1 = create_automation(&app, json!({ "name": "Hist A" })).await["id"]
        .as_i64()
        .unwrap();
    let a2 = create_automation(&app, json!({ "name": "Hist B" })).await["id"]
        .as_i64()
        .unwrap();
    let (u1, ua1) = subscriber(&ctx, "Una", a1, "active").await;
    let (u2, ua2) = subscriber(&ctx, "Vic", a1, "active").await;
    let (_, ua3) = subscriber(&ctx, "Wes", a2, "active").await;
    let today = chrono::Utc::now().date_naive();
    let day = |back: i64| {
        (today - chrono::Duration::days(back))
            .format("%Y-%m-%d")
            .to_string()
    };
    // (user automation, user, automation, health, backup, days ago)
    let rows = [
        (ua1, u1, a1, "healthy", true, 0),
        (ua1, u1, a1, "warning", false, 1),
        (ua2, u2, a1, "problematic", true, 1),
        (ua2, u2, a1, "error", false, 3),
        (ua1, u1, a1, "healthy", false, 10),
    ];
    for (ua, u, a, h, b, back) in rows {
        sql(
            &ctx,
            &format!(
                "INSERT INTO kb_status_history (user_id, user_automation_id, automation_id, \
                 kb_health, backup_status, error_logs, checked_at) VALUES ({u}, {ua}, {a}, \
                 '{h}', {b}, '[\"line\"]', '{} 12:00:00+00')",
                day(back)
            ),
        )
        .await;
    }
    let other_user = db_count(
        &ctx,
        &format!("SELECT user_id AS n FROM user_automations WHERE id = {ua3}"),
    )
    .await;
    sql(
        &ctx,
        &format!(
            "INSERT INTO kb_status_history (user_id, user_automation_id, automation_id, kb_health) \
             VALUES ({other_user}, {ua3}, {a2}, 'healthy')"
        ),
    )
    .await;

    // The list: newest first, a bare array, the automation's rows only.
    let (status, list) = get(&app, &format!("/internal/kb/history?automation_id={a1}")).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    let list = list.as_array().unwrap().clone();
    assert_eq!(list.len(), 5);
    let first = &list[0];
    assert_eq!(first["user_automation_id"], ua1);
    assert_eq!(first["user_name"], "Una");
    assert_eq!(first["automation_name"], "Hist A");
    assert_eq!(first["kb_health"], "healthy");
    assert_eq!(first["backup_status"], true);
    assert_eq!(first["error_logs"], json!(["line"]));
    assert!(str_at(first, "timestamp").starts_with(&day(0)));
    assert!(first["id"].is_i64() && first["user_id"] == u1 && first["automation_id"] == a1);
    let stamps: Vec<&str> = list.iter().map(|r| str_at(r, "timestamp")).collect();
    let mut sorted = stamps.clone();
    sorted.sort_unstable_by(|x, y| y.cmp(x));
    assert_eq!(stamps, sorted, "newest first");

    // Filters: user, inclusive days, paging.
    let (_, l) = get(
        &app,
        &format!("/internal/kb/history?automation_id={a1}&user_id={u2}"),
    )
    .await;
    assert_eq!(l.as_array().unwrap().len(), 2);
    let (_, l) = get(
        &app,
        &format!(
            "/internal/kb/history?automation_id={a1}&from_date={}&to_date={}",
            day(3),
            day(1)
        ),
    )
    .await;
    assert_eq!(
        l.as_array().unwrap().len(),
        3,
        "both end days included: {l}"
    );
    let (_, l) = get(
        &app,
        &format!("/internal/kb/history?automation_id={a1}&limit=2&page=3"),
    )
    .await;
    assert_eq!(l.as_array().unwrap().len(), 1);
    assert_eq!(l[0]["kb_health"], "healthy");
    let (_, l) = get(
        &app,
        &format!("/internal/kb/history?automation_id={a1}&user_id=&from_date="),
    )
    .await;
    assert_eq!(
        l.as_array().unwrap().len(),
        5,
        "blank filters are no filters"
    );
    let (_, l) = get(&app, "/internal/kb/history").await;
    assert_eq!(l.as_array().unwrap().len(), 6);

    for bad in [
        "from_date=2026-13-01",
        "to_date=03.12.2026",
        "limit=0",
        "limit=101",
        "page=0",
        "user_id=abc",
    ] {
        let (status, body) = get(&app, &format!("/internal/kb/history?{bad}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
        assert!(body["detail"].is_string() && body["code"].is_string());
        if bad.contains("date") {
            assert!(str_at(&body, "detail").contains("YYYY-MM-DD"), "{body}");
        }
    }

    // Stats: error counts as problematic.
    let (status, stats) = get(
        &app,
        &format!("/internal/kb/history/stats?automation_id={a1}"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        stats,
        json!({ "total_records": 5, "healthy_count": 2, "warning_count": 1,
                "problematic_count": 2, "backup_count": 2 })
    );
    let (_, stats) = get(
        &app,
        &format!(
            "/internal/kb/history/stats?automation_id={a1}&from_date={}",
            day(1)
        ),
    )
    .await;
    assert_eq!(
        stats,
        json!({ "total_records": 3, "healthy_count": 1, "warning_count": 1,
                "problematic_count": 1, "backup_count": 2 })
    );
    let (status, _) = get(&app, "/internal/kb/history/stats?to_date=tomorrow").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // Chart: 7 days ending today, oldest first, zero-filled; the 10-day-old row is outside.
    let (status, chart) = get(
        &app,
        &format!("/internal/kb/history/chart-data?automation_id={a1}"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{chart}");
    let points = chart["chart_data"].as_array().unwrap();
    assert_eq!(points.len(), 7);
    assert_eq!(points[0]["date"], day(6));
    assert_eq!(points[6]["date"], day(0));
    assert_eq!(
        chart["date_range"],
        json!({ "start_date": day(6), "end_date": day(0) })
    );
    assert_eq!(
        points[6],
        json!({ "date": day(0), "healthy": 1, "warning": 0, "problematic": 0, "total": 1 })
    );
    assert_eq!(
        points[5],
        json!({ "date": day(1), "healthy": 0, "warning": 1, "problematic": 1, "total": 2 })
    );
    assert_eq!(
        points[3]["problematic"], 1,
        "error rows count as problematic"
    );
    assert_eq!(points[4]["total"], 0);
    let (_, chart) = get(
        &app,
        &format!("/internal/kb/history/chart-data?automation_id={a1}&days=30"),
    )
    .await;
    assert_eq!(chart["chart_data"].as_array().unwrap().len(), 30);
    let total: i64 = chart["chart_data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["total"].as_i64().unwrap())
        .sum();
    assert_eq!(total, 5);
    for bad in ["days=0", "days=31", "days=x"] {
        let (status, _) = get(&app, &format!("/internal/kb/history/chart-data?{bad}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
    }
}
