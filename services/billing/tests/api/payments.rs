//! Starting a purchase and the payment history: the price comes from the database, the
//! customer must own the automation, the bounds hold, gateway refusals close the payment.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use common::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_prices_on_the_server_and_ignores_a_client_amount() {
    let h = harness(&[]).await;
    let a = automation(&h.ctx, "ربات پشتیبانی", 15_000).await;
    let c = customer(&h.ctx, "buyer@example.com", a).await;

    // The panel's body plus a forged amount, price and user id: all ignored.
    let body = init_expecting(
        &h.app,
        &c,
        json!({
            "automation_id": a, "tokens": "3", "return_path": "/payment/return",
            "discount_code": "", "amount": 1, "price_per_token": 1, "user_id": 999
        }),
        StatusCode::OK,
    )
    .await;
    assert_eq!(body["amount"], 45_000);
    assert_eq!(body["tokens"], 3);
    assert_eq!(body["status"], "pending");
    let url = payment_url_of(&body);
    assert_eq!(body["redirect_url"], url.as_str());
    assert!(url.starts_with(&format!("{}/pg/StartPay/A", h.fake.base_url)));

    // Stored before the request, sent unchanged to the gateway.
    let p = payment(&h.ctx, id_of(&body)).await;
    assert_eq!(
        (
            p.amount,
            p.tokens_purchased,
            p.user_id,
            p.user_automation_id
        ),
        (45_000, 3, c.user_id, c.user_automation_id)
    );
    assert_eq!(p.authority.as_deref(), Some(authority_of(&body).as_str()));
    assert_eq!(p.return_path.as_deref(), Some("/payment/return"));
    let session = h.fake.session(&authority_of(&body)).unwrap();
    assert_eq!(session.amount, 45_000);
    assert_eq!(session.currency, "IRR");
    assert!(session.description.contains('3'));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_owner_of_an_automation_can_buy_for_it() {
    let h = harness(&[]).await;
    let a = automation(&h.ctx, "A", 15_000).await;
    let b = automation(&h.ctx, "B", 15_000).await;
    let c = customer(&h.ctx, "owner@example.com", a).await;

    // An automation the customer has not added, one that does not exist, and no token.
    for id in [b, 999_999] {
        let res = init(&h.app, &c, json!({ "automation_id": id, "tokens": 3 })).await;
        assert_eq!(res.status(), StatusCode::NOT_FOUND, "automation {id}");
        let body: Value = res.json().await.unwrap();
        assert!(body["detail"].is_string());
    }
    h.app
        .post("/api/payments/zarinpal/init")
        .json(&json!({ "automation_id": a, "tokens": 3 }))
        .expect_status(StatusCode::UNAUTHORIZED)
        .await;
    assert_count(&h.ctx, "SELECT count(*) AS n FROM payments", 0).await;
    assert!(
        h.fake.sessions().is_empty(),
        "no gateway session was opened"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_and_out_of_range_amounts_are_clear_4xx() {
    let h = harness(&[("PAYMENT_MAX_TOKENS", "1000")]).await;
    let cheap = automation(&h.ctx, "cheap", 1_000).await;
    let dear = automation(&h.ctx, "dear", 900_000_000).await;
    let c = customer(&h.ctx, "bounds@example.com", cheap).await;
    let d = customer(&h.ctx, "bounds2@example.com", dear).await;

    let cases = [
        (json!({ "automation_id": cheap, "tokens": 0 }), "tokens"),
        (json!({ "automation_id": cheap, "tokens": 1001 }), "tokens"),
        (json!({ "automation_id": cheap, "tokens": -5 }), "tokens"),
        (json!({ "automation_id": cheap, "tokens": 2.5 }), "tokens"),
        (
            json!({ "automation_id": cheap, "tokens": "many" }),
            "tokens",
        ),
        (json!({ "automation_id": cheap }), "tokens"),
        (json!({ "tokens": 20 }), "automation_id"),
        (
            json!({ "automation_id": cheap, "tokens": 20, "return_path": "//evil.example" }),
            "return_path",
        ),
        (
            json!({ "automation_id": cheap, "tokens": 20, "return_path": "https://evil.example/" }),
            "return_path",
        ),
        // 5 × 1,000 = 5,000 Rial: below the gateway's 10,000.
        (json!({ "automation_id": cheap, "tokens": 5 }), "tokens"),
    ];
    for (body, field) in cases {
        let res = init(&h.app, &c, body.clone()).await;
        assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        let err: Value = res.json().await.unwrap();
        assert_eq!(err["errors"][0]["field"], field, "{body}: {err}");
    }
    // 2 × 900,000,000 Rial: above the gateway's 1,000,000,000.
    let err = init_expecting(
        &h.app,
        &d,
        json!({ "automation_id": dear, "tokens": 2 }),
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(err["code"], "amount_out_of_range");

    // Malformed JSON and a non-object body.
    assert_eq!(
        c.post(&h.app, "/api/payments/zarinpal/init")
            .header("content-type", "application/json")
            .body("{not json")
            .status()
            .await,
        StatusCode::BAD_REQUEST
    );
    let res = init(&h.app, &c, json!("three tokens please")).await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);

    assert_count(&h.ctx, "SELECT count(*) AS n FROM payments", 0).await;
    assert!(h.fake.sessions().is_empty());

    // At the lower bound exactly: accepted.
    let res = init(&h.app, &c, json!({ "automation_id": cheap, "tokens": 10 })).await;
    assert_eq!(res.status(), StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateway_refusals_and_outages_close_the_payment_with_a_clear_error() {
    let (h, a, c) = shop("refused@example.com").await;
    let body = json!({ "automation_id": a, "tokens": 3 });

    h.fake.fail_next_request(-13);
    let err = init_expecting(&h.app, &c, body.clone(), StatusCode::SERVICE_UNAVAILABLE).await;
    assert_eq!(err["code"], "gateway_busy");

    h.fake.fail_next_request(-11);
    let err = init_expecting(&h.app, &c, body.clone(), StatusCode::SERVICE_UNAVAILABLE).await;
    assert_eq!(err["code"], "gateway_unavailable");

    assert_count(
        &h.ctx,
        "SELECT count(*) AS n FROM payments WHERE status = 'failed' AND authority IS NULL",
        2,
    )
    .await;

    // The gateway unreachable: indeterminate, still a clean 503 and nothing left pending.
    let ctx = &h.ctx;
    let down = spawn_billing_at(ctx, "http://127.0.0.1:9").await;
    let res = init(&down, &c, body).await;
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_count(
        &h.ctx,
        "SELECT count(*) AS n FROM payments WHERE status = 'pending'",
        0,
    )
    .await;
}

async fn spawn_billing_at(
    ctx: &zimmer_testkit::TestContext,
    base: &str,
) -> zimmer_testkit::TestApp {
    ctx.spawn(
        ctx.settings(
            "billing",
            &[
                ("ZARINPAL_BASE_URL", base),
                ("RECONCILE_ENABLED", "false"),
                ("ZARINPAL_TIMEOUT_MS", "2000"),
            ],
        ),
        zimmer_billing::build,
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_one_payment_and_summary_are_the_customers_own() {
    let h = harness(&[]).await;
    let a = automation(&h.ctx, "دستیار فروش", 10_000).await;
    let c = customer(&h.ctx, "history@example.com", a).await;
    let other = customer(&h.ctx, "other@example.com", a).await;

    let first = buy(&h.app, &c, 2).await;
    let (auth, status) = start_pay(&payment_url_of(&first), None).await;
    assert_eq!(
        callback_json(&h.app, &auth, &status).await.status(),
        StatusCode::OK
    );
    let second = buy(&h.app, &c, 5).await;
    let (auth2, _) = start_pay(&payment_url_of(&second), Some("NOK")).await;
    callback_json(&h.app, &auth2, "NOK").await;
    let theirs = buy(&h.app, &other, 7).await;

    // The panel's style: limit/offset/order.
    let list: Value = c
        .get(&h.app, "/api/user/payments?limit=10&offset=0&order=desc")
        .json_body()
        .await;
    assert_eq!(list["total"], 2);
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["id"], second["payment_id"]);
    assert_eq!(items[0]["status"], "canceled");
    assert_eq!(items[1]["status"], "succeeded");
    for field in [
        "id",
        "automation_id",
        "amount",
        "tokens_purchased",
        "gateway",
        "method",
        "transaction_id",
        "ref_id",
        "status",
        "created_at",
        "description",
    ] {
        assert!(items[1].get(field).is_some(), "{field}");
    }
    assert_eq!(items[1]["gateway"], "zarinpal");
    assert_eq!(items[1]["automation_name"], "دستیار فروش");
    assert!(items[1]["ref_id"].is_i64());
    // docs/api.md's style and a status filter.
    let page: Value = c
        .get(
            &h.app,
            "/api/user/payments?page=1&page_size=1&status=succeeded",
        )
        .json_body()
        .await;
    assert_eq!(page["total"], 1);
    assert_eq!(page["items"][0]["id"], first["payment_id"]);
    c.get(&h.app, "/api/user/payments?status=stolen")
        .expect_status(StatusCode::UNPROCESSABLE_ENTITY)
        .await;

    // One payment: own only.
    let one = c
        .get(
            &h.app,
            &format!("/api/user/payments/{}", first["payment_id"]),
        )
        .json_expecting(StatusCode::OK)
        .await;
    assert_eq!(one["tokens_purchased"], 2);
    assert_eq!(one["amount"], 20_000);
    assert!(one["verified_at"].is_string());
    for path in [
        format!("/api/user/payments/{}", theirs["payment_id"]),
        "/api/user/payments/999999".to_owned(),
        "/api/user/payments/abc".to_owned(),
    ] {
        assert_eq!(
            c.get(&h.app, &path).status().await,
            StatusCode::NOT_FOUND,
            "{path}"
        );
    }

    // Summary: totals and the monthly points the panel charts.
    let s: Value = c
        .get(&h.app, "/api/user/payments/summary?months=6")
        .json_body()
        .await;
    assert_eq!(s["total_spent"], 20_000);
    assert_eq!(s["tokens_purchased"], 2);
    assert_eq!(s["payments_count"], 2);
    assert_eq!(s["count_by_status"]["canceled"], 1);
    let points = s["points"].as_array().unwrap();
    assert_eq!(points.len(), 6);
    assert_eq!(points[5]["amount"], 20_000);
    assert_eq!(
        points[5]["month"],
        chrono::Utc::now().format("%Y-%m").to_string()
    );
    assert_eq!(points[0]["amount"], 0);
}
