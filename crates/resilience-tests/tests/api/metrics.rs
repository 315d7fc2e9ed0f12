//! `/metrics` of a real service process carries what operations needs: requests and latency
//! per route, pool usage, outbox backlog, consumer lag (queue depth per consumer queue and its
//! dead-letter queue).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use zimmer_testkit::{Process, TempDir, TestContext, eventually};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_expose_routes_pool_outbox_and_consumer_lag() {
    let ctx = TestContext::new().await;
    let logs = TempDir::new("zimmer-metrics");
    let mut env = ctx.env_pairs();
    env.push(("HEALTH_CHECK_ENABLED".to_owned(), "false".to_owned()));
    let market =
        Process::start_service("zimmer-marketplace", "marketplace", &env, &logs.path).await;
    let http = zimmer_testkit::client();
    let base = format!("http://127.0.0.1:{}", market.port);
    let res = http
        .get(format!("{base}/api/automations/marketplace"))
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success());

    let text = || async {
        http.get(format!("{base}/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    };
    let has = |body: &str, prefix: &str, parts: &[&str]| {
        body.lines()
            .any(|l| l.starts_with(prefix) && parts.iter().all(|p| l.contains(p)))
    };
    eventually(
        "consumer lag is sampled for the main and dead-letter queues",
        Duration::from_secs(30),
        || async {
            let body = text().await;
            has(&body, "zimmer_events_queue_depth{", &["queue=\"main\""])
                && has(
                    &body,
                    "zimmer_events_queue_depth{",
                    &["queue=\"dead_letter\""],
                )
        },
    )
    .await;
    let body = text().await;
    // Lag values are real gauges (whole numbers, nothing waiting on a fresh exchange).
    for line in body
        .lines()
        .filter(|l| l.starts_with("zimmer_events_queue_depth{"))
    {
        let value: i64 = line.rsplit(' ').next().unwrap().parse().unwrap();
        assert!(value >= 0, "{line}");
        assert!(line.contains("consumer=\""), "{line}");
    }
    assert!(
        has(
            &body,
            "zimmer_http_requests_total{",
            &["route=\"/api/automations/marketplace\"", "status=\"200\""]
        ),
        "{body}"
    );
    assert!(
        has(
            &body,
            "zimmer_http_request_duration_seconds_bucket{",
            &["route=\"/api/automations/marketplace\""]
        ),
        "{body}"
    );
    assert!(has(&body, "zimmer_db_pool_connections{", &[]), "{body}");
    assert!(
        has(
            &body,
            "zimmer_outbox_pending_events{",
            &["producer=\"marketplace\""]
        ),
        "{body}"
    );
    // zimmer_events_dead_lettered_total appears once a consumer dead-letters (crates/events
    // tests cover it); a fresh process has none.
}
