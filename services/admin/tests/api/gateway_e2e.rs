//! End to end: the real `zimmer-admin` binary behind a real nginx running the repo's gateway
//! configuration: `/api/admin/` is routed to admin with CORS for the dashboard's origin, the
//! role guard answers through it, and admin's probes and the internal API are not exposed.
//! Needs the binaries built first (`cargo build --workspace --bins`) and nginx.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use reqwest::{Method, StatusCode};
use serde_json::Value;
use zimmer_jwt::Role;
use zimmer_testkit::{Call, Gateway, Process, TempDir, TestContext, Upstreams, client};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_api_through_the_gateway() {
    let ctx = TestContext::new().await;
    let logs = TempDir::new("zimmer-admin-e2e-logs");
    let env = ctx.process_env(&[], vec![]);
    let admin = Process::start("admin", &env, &logs.path).await;
    let gw = Gateway::start(&Upstreams::of(&[&admin]), &["http://localhost:3001"]).await;
    let http = client();
    let (_, mt) = ctx.user_with_token("boss@example.com", Role::Manager).await;
    let (_, st) = ctx
        .user_with_token("agent@example.com", Role::SupportStaff)
        .await;

    let res = http
        .get(gw.url("/api/admin/dashboard/stats"))
        .bearer_auth(&mt)
        .header("Origin", "http://localhost:3001")
        .call()
        .await;
    assert_eq!(res.status(), StatusCode::OK, "{}", admin.log());
    assert_eq!(
        res.headers()["access-control-allow-origin"],
        "http://localhost:3001"
    );
    let v: Value = res.json().await.unwrap();
    assert_eq!(v["users"]["total"], 2);
    assert!(v["revenue"].is_object());

    // The guard's answers come through as JSON.
    let res = http
        .get(gw.url("/api/admin/audit-log"))
        .call_expecting(StatusCode::UNAUTHORIZED)
        .await;
    assert!(res.json::<Value>().await.unwrap()["detail"].is_string());
    http.get(gw.url("/api/admin/audit-log"))
        .bearer_auth(&st)
        .expect_status(StatusCode::FORBIDDEN)
        .await;

    // The dashboard's preflight for a write with an idempotency key.
    let res = http
        .request(Method::OPTIONS, gw.url("/api/admin/tokens/adjust"))
        .header("Origin", "http://localhost:3001")
        .header("Access-Control-Request-Method", "POST")
        .header(
            "Access-Control-Request-Headers",
            "authorization, content-type, idempotency-key",
        )
        .call()
        .await;
    assert!(res.status().is_success());
    assert!(
        res.headers()["access-control-allow-headers"]
            .to_str()
            .unwrap()
            .to_ascii_lowercase()
            .contains("idempotency-key")
    );

    // A broadcast through the gateway is accepted and lands in admin's outbox.
    let res = http
        .post(gw.url("/api/admin/notifications/broadcast"))
        .bearer_auth(&st)
        .json(&serde_json::json!({ "title": "سلام", "body": "پیام همگانی" }))
        .call()
        .await;
    assert_eq!(res.status(), StatusCode::ACCEPTED, "{}", admin.log());

    // Not exposed: probes, metrics and anything internal.
    gw.assert_not_exposed(&[
        "/readyz",
        "/metrics",
        "/internal/revocations",
        "/api/admin/../readyz",
    ])
    .await;
}
