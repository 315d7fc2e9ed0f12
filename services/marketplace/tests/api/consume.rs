//! Token consumption by vendors: exact under concurrency, idempotent, demo first, alerts
//! once per crossing, and the service token checked against the user automation.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use common::*;
use futures_util::future::join_all;
use reqwest::StatusCode;
use serde_json::{Value, json};

/// A customer with `automation` added and `paid` tokens credited (no demo tokens).
async fn funded(
    ctx: &zimmer_testkit::TestContext,
    app: &zimmer_testkit::TestApp,
    paid: i64,
) -> (i64, String) {
    let automation_id = automation_with(app, json!({ "demo_tokens": 0 })).await;
    let token = issue_token(app, automation_id).await;
    let (_, access) = customer(ctx, "buyer@example.com").await;
    let ua = add(app, &access, automation_id).await;
    let manager = staff(ctx, "manager@example.com").await;
    assert_eq!(
        adjust(app, ua, paid, "fund-1", manager).await.status(),
        StatusCode::CREATED
    );
    (ua, token)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_calls_against_twenty_tokens_accept_exactly_twenty() {
    let (ctx, app) = market().await;
    let (ua, token) = funded(&ctx, &app, 20).await;

    let calls = (0..50).map(|_| {
        let app = &app;
        let token = token.clone();
        async move {
            let res = consume(app, &token, &usage(ua, 1)).await;
            assert_eq!(res.status(), StatusCode::OK);
            res.json::<Value>().await.unwrap()
        }
    });
    let answers = join_all(calls).await;
    let accepted = answers.iter().filter(|a| a["accepted"] == true).count();
    assert_eq!(accepted, 20, "exactly the balance is accepted");
    for refused in answers.iter().filter(|a| a["accepted"] == false) {
        assert_eq!(refused["reason"], "insufficient_tokens");
        assert_eq!(refused["remaining_paid_tokens"], 0);
    }
    assert_eq!(balances(&ctx, ua).await.0, 0);
    assert_db_count(
        &ctx,
        &format!("SELECT count(*) AS n FROM token_ledger WHERE kind = 'consumption' AND user_automation_id = {ua}"),
        20,
    )
    .await;
    // The ledger and the balance agree: credits minus spends is what is left.
    assert_db_count(
        &ctx,
        &format!("SELECT COALESCE(SUM(delta), 0)::bigint AS n FROM token_ledger WHERE user_automation_id = {ua}"),
        0,
    )
    .await;
    assert_eq!(outbox_count(&ctx, "tokens.depleted").await, 1);
    assert_eq!(outbox_count(&ctx, "tokens.low").await, 1);
    let metrics = app
        .get("/metrics")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for (outcome, n) in [("accepted", 20), ("refused", 30)] {
        assert!(
            metrics
                .lines()
                .any(|l| l.starts_with("zimmer_marketplace_consume_total{")
                    && l.contains(&format!("outcome=\"{outcome}\""))
                    && l.ends_with(&format!(" {n}"))),
            "{outcome} {n}: {metrics}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_idempotency_key_ten_times_at_once_is_charged_once_and_answers_the_same() {
    let (ctx, app) = market().await;
    let (ua, token) = funded(&ctx, &app, 20).await;
    let body = json!({ "user_automation_id": ua, "units": 3, "usage_type": "session", "idempotency_key": "msg-42" });
    let calls = (0..10).map(|_| {
        let (app, token, body) = (&app, token.clone(), body.clone());
        async move {
            let res = consume(app, &token, &body).await;
            assert_eq!(res.status(), StatusCode::OK);
            let replayed = res.headers().contains_key("idempotent-replayed");
            (replayed, res.json::<Value>().await.unwrap())
        }
    });
    let answers = join_all(calls).await;
    let first = &answers[0].1;
    assert_eq!(first["accepted"], true);
    assert_eq!(first["remaining_paid_tokens"], 17);
    assert!(answers.iter().all(|(_, a)| a == first), "{answers:?}");
    assert_eq!(
        answers.iter().filter(|(r, _)| !r).count(),
        1,
        "one applied, nine replayed"
    );
    assert_eq!(balances(&ctx, ua).await.0, 17);
    assert_eq!(ledger_count(&ctx, "consumption").await, 1);

    // The key in the Idempotency-Key header is the same key.
    let res = app
        .post("/api/automation-usage/consume")
        .header("X-Zimmer-Service-Token", &token)
        .header("Idempotency-Key", "msg-42")
        .json(&usage(ua, 3))
        .call_expecting(StatusCode::OK)
        .await;
    assert_eq!(&res.json::<Value>().await.unwrap(), first);
    // Reusing a key for a different request is a conflict, not a silent replay.
    let res = consume(&app, &token, &usage_keyed(ua, 4, "msg-42")).await;
    assert_eq!(res.status(), StatusCode::CONFLICT);
    assert_eq!(json_of(res).await["code"], "idempotency_conflict");
    assert_eq!(balances(&ctx, ua).await.0, 17);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_tokens_go_first_then_paid_and_the_demo_expires_when_they_run_out() {
    let (ctx, app) = market().await;
    let a = create_automation(&app, json!({ "demo_tokens": 5 })).await;
    let automation_id = a["id"].as_i64().unwrap();
    let token = issue_token(&app, automation_id).await;
    let (_, access) = customer(&ctx, "demo@example.com").await;
    let ua = add(&app, &access, automation_id).await;
    let manager = staff(&ctx, "m@example.com").await;
    adjust(&app, ua, 10, "credit-10", manager).await;

    let body = consume_json(&app, &token, &usage(ua, 3)).await;
    assert_eq!(
        (
            body["accepted"].clone(),
            body["remaining_demo_tokens"].clone(),
            body["remaining_paid_tokens"].clone()
        ),
        (json!(true), json!(2), json!(10))
    );
    assert!(body["message"].is_string());
    assert_eq!(balances(&ctx, ua).await, (10, 2, true, false, false));

    let body = consume_json(&app, &token, &usage(ua, 4)).await;
    assert_eq!(body["remaining_demo_tokens"], 0);
    assert_eq!(body["remaining_paid_tokens"], 8);
    let (paid, demo, active, expired, _) = balances(&ctx, ua).await;
    assert_eq!((paid, demo, active, expired), (8, 0, false, true));

    // More than is left: refused whole, nothing recorded, nothing spent.
    let body = consume_json(&app, &token, &usage_keyed(ua, 9, "big")).await;
    assert_eq!(body["accepted"], false);
    assert_eq!(body["reason"], "insufficient_tokens");
    assert_eq!(balances(&ctx, ua).await.0, 8);
    assert_eq!(ledger_count(&ctx, "consumption").await, 2);
    // A refusal is not remembered: after a top-up the same key goes through.
    adjust(&app, ua, 1, "credit-1", manager).await;
    let body = consume_json(&app, &token, &usage_keyed(ua, 9, "big")).await;
    assert_eq!(body["accepted"], true);
    assert_eq!(body["remaining_paid_tokens"], 0);

    // The customer sees the usage history, newest first, with the split.
    let res = app
        .get(&format!(
            "/api/user/automations/{automation_id}/usage?page_size=2"
        ))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    let page = json_of(res).await;
    assert_eq!(page["total"], 3);
    assert_eq!(page["items"].as_array().unwrap().len(), 2);
    assert_eq!(page["items"][0]["units"], 9);
    assert_eq!(page["items"][0]["paid_units"], 9);
    assert_eq!(page["items"][1]["demo_units"], 2);
    assert_eq!(page["items"][1]["paid_units"], 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn low_fires_once_per_crossing_and_depleted_at_zero() {
    let (ctx, app) = market_with(&[("LOW_TOKENS_THRESHOLD", "5")]).await;
    let (ua, token) = funded(&ctx, &app, 10).await;
    let manager = staff(&ctx, "other-manager@example.com").await;
    let spend = |units: i64| {
        let (app, token) = (&app, token.clone());
        async move {
            let body = consume_json(app, &token, &usage(ua, units)).await;
            assert_eq!(body["accepted"], true, "{body}");
        }
    };
    spend(5).await; // 10 → 5: crosses
    assert_eq!(outbox_count(&ctx, "tokens.low").await, 1);
    assert!(balances(&ctx, ua).await.4, "low_alert_sent");
    spend(1).await; // 5 → 4: already below
    assert_eq!(outbox_count(&ctx, "tokens.low").await, 1);
    adjust(&app, ua, 10, "top-up", manager).await; // 14: above again, flag cleared
    assert!(!balances(&ctx, ua).await.4);
    spend(9).await; // 14 → 5: crosses again
    assert_eq!(outbox_count(&ctx, "tokens.low").await, 2);
    spend(5).await; // → 0
    assert_eq!(outbox_count(&ctx, "tokens.depleted").await, 1);
    assert_eq!(outbox_count(&ctx, "tokens.low").await, 2);

    let payload = outbox_payload(&ctx, "tokens.low").await;
    assert_eq!(payload["producer"], "marketplace");
    assert_eq!(payload["data"]["user_automation_id"], ua);
    assert_eq!(payload["data"]["remaining"], 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_service_token_must_belong_to_the_user_automations_automation() {
    let (ctx, app) = market().await;
    let (ua, token) = funded(&ctx, &app, 5).await;
    let other = create_automation(&app, json!({ "name": "Other vendor" })).await;
    let other_token = issue_token(&app, other["id"].as_i64().unwrap()).await;
    let body = usage(ua, 1);

    let res = app
        .post("/api/automation-usage/consume")
        .json(&body)
        .call_expecting(StatusCode::UNAUTHORIZED)
        .await;
    assert_eq!(json_of(res).await["code"], "service_token_required");
    let res = consume(&app, "zst_not-a-real-token", &body).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(json_of(res).await["code"], "invalid_service_token");
    // A real token, of another automation.
    let res = consume(&app, &other_token, &body).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let err = json_of(res).await;
    assert_eq!(err["code"], "token_not_for_user_automation");
    assert!(err["detail"].is_string());
    // An id that does not exist answers the same (no probing of other vendors' customers).
    let res = consume(&app, &token, &usage(999_999, 1)).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(json_of(res).await["code"], "token_not_for_user_automation");
    // A rotated token stops working at once.
    let automation_id = {
        use diesel::prelude::*;
        use diesel_async::RunQueryDsl;
        use zimmer_db::schema::user_automations as t;
        let mut conn = ctx.db.connect().await;
        t::table
            .find(ua)
            .select(t::automation_id)
            .first::<i64>(&mut conn)
            .await
            .unwrap()
    };
    let new_token = issue_token(&app, automation_id).await;
    assert_eq!(
        consume(&app, &token, &body).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        consume(&app, &new_token, &body).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        balances(&ctx, ua).await.0,
        4,
        "only the valid call was charged"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_units_and_bodies_are_clear_4xx() {
    let (ctx, app) = market().await;
    let (ua, token) = funded(&ctx, &app, 5).await;
    for units in [
        json!(0),
        json!(-1),
        json!(10_001),
        json!(1.5),
        json!("3"),
        json!(1e20),
        json!(null),
    ] {
        let body = json!({ "user_automation_id": ua, "units": units });
        let res = consume(&app, &token, &body).await;
        assert_eq!(
            res.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "units {units}"
        );
        let err = json_of(res).await;
        assert_eq!(err["code"], "validation_error");
        assert!(err["detail"].is_string());
    }
    for body in [
        json!({ "units": 1 }),
        json!({ "user_automation_id": ua, "units": 1, "meta": [1, 2] }),
        usage_keyed(ua, 1, "has space"),
        json!({ "user_automation_id": ua, "units": 1, "usage_type": "bad type!" }),
        json!({ "user_automation_id": ua, "units": 1, "meta": { "blob": "x".repeat(5000) } }),
    ] {
        let res = consume(&app, &token, &body).await;
        assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    }
    let res = app
        .post("/api/automation-usage/consume")
        .header("X-Zimmer-Service-Token", &token)
        .header("Content-Type", "application/json")
        .body("{not json")
        .call_expecting(StatusCode::BAD_REQUEST)
        .await;
    assert_eq!(json_of(res).await["code"], "bad_request");
    // Unauthenticated callers hear 401 before anything about their body.
    let res = consume(&app, "wrong", &json!({ "units": -5 })).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(balances(&ctx, ua).await.0, 5, "nothing was charged");
}
