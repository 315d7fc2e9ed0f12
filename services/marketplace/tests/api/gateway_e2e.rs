//! End to end: the real `zimmer-marketplace` and `zimmer-fake-vendor` binaries, the demo
//! catalogue from `seed-demo`, behind the real nginx gateway.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::process::Command;

use common::*;
use reqwest::StatusCode;
use serde_json::Value;
use zimmer_testkit::{Gateway, Process, TempDir, TestContext, Upstreams, binary_path, eventually};

const DEMO_TOKEN: &str = "e2e-demo-token";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_platform_works_through_the_gateway() {
    let ctx = TestContext::new().await;
    let logs = TempDir::new("zimmer-market-e2e");
    let mut env = ctx.env_pairs();
    env.push(("DEMO_SERVICE_TOKEN".to_owned(), DEMO_TOKEN.to_owned()));
    let vendor = Process::start("fake-vendor", &env, &logs.path).await;
    let vendor_url = format!("http://127.0.0.1:{}", vendor.port);
    env.push(("FAKE_VENDOR_URL".to_owned(), vendor_url));
    for (k, v) in FAST {
        env.push(((*k).to_owned(), (*v).to_owned()));
    }
    env.push(("HEALTH_CHECK_ENABLED".to_owned(), "true".to_owned()));
    env.push(("HEALTH_CHECK_INTERVAL_MS".to_owned(), "200".to_owned()));

    let seeded = Command::new(binary_path("zimmer-marketplace"))
        .arg("seed-demo")
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .output()
        .unwrap();
    assert!(
        seeded.status.success(),
        "{}",
        String::from_utf8_lossy(&seeded.stderr)
    );
    // Seeding twice changes nothing.
    let again = Command::new(binary_path("zimmer-marketplace"))
        .arg("seed-demo")
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .output()
        .unwrap();
    assert!(again.status.success());
    assert_db_count(&ctx, "SELECT count(*) AS n FROM automations", 3).await;

    let market = Process::start("marketplace", &env, &logs.path).await;
    let gw = Gateway::start(&Upstreams::of(&[&market]), &["http://localhost:3000"]).await;
    let client = zimmer_testkit::client();

    // The health checker reaches the vendor process; the catalogue shows it.
    eventually("demo automations healthy", WAIT, || async {
        db_count(
            &ctx,
            "SELECT count(*) AS n FROM automations WHERE health_status = 'healthy'",
        )
        .await
            == 3
    })
    .await;
    let res = gw
        .get_from_origin(
            &client,
            "/api/automations/marketplace",
            "http://localhost:3000",
        )
        .await;
    let catalogue: Value = res.json().await.unwrap();
    assert_eq!(catalogue["total"], 3);
    let items = catalogue["items"].as_array().unwrap();
    assert!(
        items.iter().all(|a| a["health_status"] == "healthy"),
        "{catalogue}"
    );
    let bot = items
        .iter()
        .find(|a| a["name"] == "ربات پشتیبانی تلگرام")
        .expect("Persian name intact");
    let automation_id = bot["id"].as_i64().unwrap();

    // A customer adds it through the gateway; the vendor process provisions it.
    let (_, access) = customer(&ctx, "e2e@example.com").await;
    let res = client
        .post(gw.url(&format!("/api/user/automations/{automation_id}")))
        .bearer_auth(&access)
        .call_expecting(StatusCode::CREATED)
        .await;
    let ua = res.json::<Value>().await.unwrap()["user_automation"]["id"]
        .as_i64()
        .unwrap();
    eventually("provisioned by the vendor process", WAIT, || async {
        integration_status(&ctx, ua).await == "provisioned"
    })
    .await;

    // The vendor spends a token with its service token, through the gateway.
    let res = client
        .post(gw.url("/api/automation-usage/consume"))
        .header(
            "X-Zimmer-Service-Token",
            format!("{DEMO_TOKEN}.support-bot"),
        )
        .json(&usage_keyed(ua, 2, "e2e-1"))
        .call_expecting(StatusCode::OK)
        .await;
    let answer: Value = res.json().await.unwrap();
    assert_eq!(answer["accepted"], true);
    assert_eq!(answer["remaining_demo_tokens"], 3);
    let mine: Value = client
        .get(gw.url("/api/user/automations"))
        .bearer_auth(&access)
        .json_body()
        .await;
    assert_eq!(mine[0]["demo_tokens"], 3);
    assert_eq!(mine[0]["integration_status"], "provisioned");
    let usage: Value = client
        .get(gw.url("/api/user/usage?range=7d"))
        .bearer_auth(&access)
        .json_body()
        .await;
    assert_eq!(usage[6]["tokens"], 2);

    // The internal API is not reachable through the gateway.
    gw.assert_not_exposed(&[
        "/internal/automations",
        "/api/../internal/automations",
        "/internal/tokens/adjust",
    ])
    .await;
    drop(vendor);
    drop(market);
}
