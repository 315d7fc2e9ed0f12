//! End to end: the real `zimmer-auth` and `zimmer-marketplace` binaries behind a real nginx
//! running the repo's gateway configuration, on real PostgreSQL, Redis and RabbitMQ.
//! Needs `cargo build --workspace --bins` first (the test command does it) and nginx.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use reqwest::{StatusCode, header::SET_COOKIE};
use serde_json::{Value, json};
use zimmer_testkit::{Call, Gateway, TempDir, TestContext, Upstreams, str_at};

const PANEL: &str = "http://localhost:3000";

fn cookie(res: &reqwest::Response) -> String {
    res.headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| v.strip_prefix("zimmer_refresh="))
        .and_then(|v| v.split(';').next())
        .expect("refresh cookie")
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_login_me_refresh_logout_through_the_gateway() {
    let ctx = TestContext::new().await;
    let logs = TempDir::new("zimmer-e2e-logs");
    // Marketplace has no key: it fetches auth's JWKS, as in production.
    let (auth, market) = ctx.start_auth_and_marketplace(&logs.path).await;
    let gw = Gateway::start(&Upstreams::of(&[&auth, &market]), &[PANEL]).await;
    let http = zimmer_testkit::client();

    // Preflight answered by nginx with the CORS headers of docs/api.md.
    let pre = http
        .request(reqwest::Method::OPTIONS, gw.url("/api/auth/login"))
        .header("Origin", PANEL)
        .header("Access-Control-Request-Method", "POST")
        .header(
            "Access-Control-Request-Headers",
            "content-type,authorization",
        )
        .call_expecting(StatusCode::NO_CONTENT)
        .await;
    let h = pre.headers();
    assert_eq!(h["access-control-allow-origin"], PANEL);
    assert_eq!(h["access-control-allow-credentials"], "true");
    assert!(
        h["access-control-allow-headers"]
            .to_str()
            .unwrap()
            .contains("Authorization")
    );
    let evil = http
        .request(reqwest::Method::OPTIONS, gw.url("/api/auth/login"))
        .header("Origin", "https://evil.example")
        .header("Access-Control-Request-Method", "POST")
        .call()
        .await;
    assert!(evil.headers().get("access-control-allow-origin").is_none());

    // Register as the panel does.
    let res = http
        .post(gw.url("/api/auth/signup"))
        .header("Origin", PANEL)
        .json(&json!({ "name": "مریم", "email": "maryam@example.com", "password": "a-long-password-1", "confirm_password": "a-long-password-1" }))
        .call_expecting(StatusCode::CREATED)
        .await;
    assert_eq!(res.headers()["access-control-allow-origin"], PANEL);
    assert!(res.headers().get("x-request-id").is_some());
    assert_eq!(res.headers()["x-content-type-options"], "nosniff");
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["user"]["name"], "مریم");

    // Log in.
    let res = http
        .post(gw.url("/api/auth/login"))
        .header("Origin", PANEL)
        .json(&json!({ "email": "maryam@example.com", "password": "a-long-password-1" }))
        .call_expecting(StatusCode::OK)
        .await;
    let refresh = cookie(&res);
    let body: Value = res.json().await.unwrap();
    let access = str_at(&body, "access_token").to_owned();

    // /api/me and an authenticated route of another service.
    let me = http
        .get(gw.url("/api/me"))
        .bearer_auth(&access)
        .call_expecting(StatusCode::OK)
        .await;
    assert_eq!(
        me.json::<Value>().await.unwrap()["email"],
        "maryam@example.com"
    );
    let mine = http
        .get(gw.url("/api/user/automations"))
        .bearer_auth(&access)
        .call()
        .await;
    assert_eq!(mine.status(), StatusCode::OK, "{}", market.log());
    assert_eq!(mine.json::<Value>().await.unwrap(), json!([]));

    // Refresh with the cookie alone, as the panel does.
    let res = http
        .post(gw.url("/api/auth/refresh"))
        .header("Origin", PANEL)
        .header("Cookie", format!("zimmer_refresh={refresh}"))
        .call_expecting(StatusCode::OK)
        .await;
    let refreshed: Value = res.json().await.unwrap();
    let access2 = str_at(&refreshed, "access_token").to_owned();
    assert_ne!(access2, access);

    // Log out: the token of this session is rejected by auth and, within a second, by marketplace.
    http.post(gw.url("/api/auth/logout"))
        .bearer_auth(&access2)
        .expect_status(StatusCode::NO_CONTENT)
        .await;
    http.get(gw.url("/api/me"))
        .bearer_auth(&access2)
        .expect_status(StatusCode::UNAUTHORIZED)
        .await;
    let started = std::time::Instant::now();
    zimmer_testkit::eventually_answers(
        "marketplace rejects the logged-out token",
        Duration::from_secs(5),
        StatusCode::UNAUTHORIZED,
        || {
            http.get(gw.url("/api/user/automations"))
                .bearer_auth(&access2)
        },
    )
    .await;
    eprintln!(
        "marketplace rejected the revoked token {:?} after logout",
        started.elapsed()
    );
    // The earlier access token of the same session too.
    http.get(gw.url("/api/user/automations"))
        .bearer_auth(&access)
        .expect_status(StatusCode::UNAUTHORIZED)
        .await;

    // What the gateway must not expose.
    let hidden = [
        "/internal/revocations",
        "/healthz",
        "/metrics",
        "/api/auth/../internal/revocations",
    ];
    for (path, body) in hidden.iter().zip(gw.assert_not_exposed(&hidden).await) {
        assert!(body["detail"].is_string(), "{path}: {body}");
    }
    let log = gw.access_log();
    assert!(log.contains("/api/auth/login"), "the gateway logs requests");
}
