//! End to end: the real `zimmer-auth`, `zimmer-marketplace`, `zimmer-billing` and
//! `zimmer-fake-zarinpal` binaries behind a real nginx running the repo's gateway configuration,
//! on real PostgreSQL, Redis and RabbitMQ. A customer registers, adds an automation, buys N
//! tokens, goes through the fake's StartPay to the callback (ten times at once), and the
//! automation's balance rises by exactly N.
//! Needs `cargo build --workspace --bins` first (the test command does it) and nginx.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use reqwest::StatusCode;
use serde_json::{Value, json};
use zimmer_db::schema::automations;
use zimmer_testkit::{
    Call, Gateway, Process, TempDir, TestContext, Upstreams, assert_db_count, eventually, str_at,
};

const PANEL: &str = "http://localhost:3000";
/// The public callback address billing gives the gateway. The test's gateway port is only
/// known after the services start, so the test replays the redirect's path and query on it.
const PUBLIC_CALLBACK: &str = "https://zimmer.test/api/payments/zarinpal/callback";
const TOKENS: i64 = 12;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn buy_tokens_through_the_gateway_and_the_balance_rises_by_exactly_n() {
    let ctx = TestContext::new().await;
    let logs = TempDir::new("zimmer-billing-e2e");
    let fake = Process::start("fake-zarinpal", &ctx.process_env(&[], vec![]), &logs.path).await;
    let (auth, market) = ctx.start_auth_and_marketplace(&logs.path).await;
    let billing_env = vec![
        ("ZARINPAL_BASE_URL".to_owned(), fake.url()),
        (
            "ZARINPAL_CALLBACK_URL".to_owned(),
            PUBLIC_CALLBACK.to_owned(),
        ),
        ("FRONTEND_URL".to_owned(), PANEL.to_owned()),
    ];
    let billing_env = ctx.process_env_with_jwks(&auth, billing_env);
    let billing = Process::start("billing", &billing_env, &logs.path).await;
    let gw = Gateway::start(&Upstreams::of(&[&auth, &market, &billing]), &[PANEL]).await;
    let http = zimmer_testkit::client();
    let logs_of = || {
        format!(
            "--- billing\n{}\n--- marketplace\n{}",
            billing.log(),
            market.log()
        )
    };

    // The catalogue has an automation (the admin's job; a fixture here).
    let automation_id: i64 = {
        let mut conn = ctx.db.connect().await;
        diesel::insert_into(automations::table)
            .values((
                automations::name.eq("ربات پشتیبانی تلگرام"),
                automations::price_per_token.eq(15_000_i64),
            ))
            .returning(automations::id)
            .get_result(&mut conn)
            .await
            .unwrap()
    };

    // Register as the panel does, and add the automation.
    let res = http
        .post(gw.url("/api/auth/signup"))
        .header("Origin", PANEL)
        .json(&json!({ "name": "سارا", "email": "sara@example.com", "password": "a-long-password-1", "confirm_password": "a-long-password-1" }))
        .call_expecting(StatusCode::CREATED)
        .await;
    let access = res.json::<Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let res = http
        .post(gw.url(&format!("/api/user/automations/{automation_id}")))
        .bearer_auth(&access)
        .call()
        .await;
    assert!(
        res.status().is_success(),
        "add automation: {}",
        res.status()
    );
    let balance = || async {
        let res = http
            .get(gw.url(&format!("/api/user/automations/{automation_id}")))
            .bearer_auth(&access)
            .call_expecting(StatusCode::OK)
            .await;
        res.json::<Value>().await.unwrap()["user_automation"]["tokens_remaining"]
            .as_i64()
            .unwrap()
    };
    let before = balance().await;

    // Buy N tokens; a forged amount is ignored.
    let res = http
        .post(gw.url("/api/payments/zarinpal/init"))
        .header("Origin", PANEL)
        .bearer_auth(&access)
        .json(&json!({ "automation_id": automation_id, "tokens": TOKENS, "return_path": "/payment/return", "discount_code": "", "amount": 10 }))
        .call()
        .await;
    assert_eq!(res.status(), StatusCode::OK, "{}", logs_of());
    assert_eq!(res.headers()["access-control-allow-origin"], PANEL);
    let init: Value = res.json().await.unwrap();
    assert_eq!(init["amount"], 15_000 * TOKENS);
    let redirect = str_at(&init, "redirect_url");
    assert!(redirect.starts_with(&format!("http://127.0.0.1:{}/pg/StartPay/", fake.port)));

    // The payer at the (fake) bank, redirected to our callback.
    let res = http.get(redirect).call_expecting(StatusCode::FOUND).await;
    let location = res.headers()["location"].to_str().unwrap().to_owned();
    let path_and_query = location
        .strip_prefix("https://zimmer.test")
        .expect("the redirect goes to the configured callback");
    assert!(path_and_query.starts_with("/api/payments/zarinpal/callback?Authority=A"));
    assert!(path_and_query.ends_with("&Status=OK"));

    // The browser's callback, ten times at once, through the gateway.
    let calls = (0..10).map(|_| http.get(gw.url(path_and_query)).send());
    for res in futures_util::future::join_all(calls).await {
        let res = res.unwrap();
        assert_eq!(res.status(), StatusCode::FOUND, "{}", logs_of());
        let to = res.headers()["location"].to_str().unwrap();
        assert!(
            to.starts_with(&format!(
                "{PANEL}/payment/return?payment_id={}&Authority=A",
                init["payment_id"]
            )),
            "{to}"
        );
    }
    // The panel's result page asks again, with its Bearer.
    let res = http
        .get(gw.url(&format!(
            "{path_and_query}&payment_id={}",
            init["payment_id"]
        )))
        .bearer_auth(&access)
        .call_expecting(StatusCode::OK)
        .await;
    let result: Value = res.json().await.unwrap();
    assert_eq!(result["status"], "succeeded");
    assert!(result["ref_id"].is_i64());

    // The marketplace credits exactly N.
    eventually(
        "the purchased tokens reach the automation",
        Duration::from_secs(30),
        || async { balance().await >= before + TOKENS },
    )
    .await;
    assert_eq!(balance().await, before + TOKENS, "{}", logs_of());
    for sql in [
        "SELECT count(*) AS n FROM token_ledger WHERE kind = 'purchase'",
        "SELECT count(*) AS n FROM outbox WHERE event_type = 'payment.verified'",
    ] {
        assert_db_count(&ctx, sql, 1).await;
    }

    // A forged callback: 404, nothing changes.
    assert_eq!(http
        .get(gw.url(
            "/api/payments/zarinpal/callback?Authority=A00000000000000000000000000000000000&Status=OK",
        )).status().await, StatusCode::NOT_FOUND);

    // The history through the gateway.
    let list: Value = http
        .get(gw.url("/api/user/payments?limit=10&offset=0&order=desc"))
        .bearer_auth(&access)
        .json_body()
        .await;
    assert_eq!(list["total"], 1);
    assert_eq!(list["items"][0]["status"], "succeeded");
    assert_eq!(list["items"][0]["tokens_purchased"], TOKENS);
    // The internal API is not reachable through the gateway.
    gw.assert_not_exposed(&["/internal/discounts"]).await;
    assert_eq!(balance().await, before + TOKENS);
}
