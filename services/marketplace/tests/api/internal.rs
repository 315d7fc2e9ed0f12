//! The internal API for the admin service: service-authenticated automation management,
//! service tokens, and idempotent token adjustments through the ledger.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use common::*;
use futures_util::future::join_all;
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn internal_routes_need_the_service_credential() {
    let (_ctx, app) = market().await;
    let a = create_automation(&app, json!({})).await;
    let id = a["id"].clone();
    for (method, path) in [
        ("GET", "/internal/automations".to_owned()),
        ("POST", "/internal/automations".to_owned()),
        ("PUT", format!("/internal/automations/{id}")),
        ("DELETE", format!("/internal/automations/{id}")),
        ("POST", format!("/internal/automations/{id}/service-token")),
        ("POST", format!("/internal/automations/{id}/health-check")),
        ("POST", "/internal/tokens/adjust".to_owned()),
    ] {
        for token in [None, Some("wrong-token")] {
            let mut rb = app
                .client
                .request(method.parse().unwrap(), app.url(&path))
                .json(&json!({}));
            if let Some(t) = token {
                rb = rb.header("X-Internal-Token", t);
            }
            let res = rb.call().await;
            assert_eq!(
                res.status(),
                StatusCode::UNAUTHORIZED,
                "{method} {path} {token:?}"
            );
            assert_eq!(json_of(res).await["code"], "unauthorized");
        }
    }
    // Nothing was changed by those calls.
    let all = internal(app.get("/internal/automations")).json_body().await;
    assert_eq!(all.as_array().unwrap().len(), 1);
    assert_eq!(all[0]["has_service_token"], false);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn automations_are_created_validated_updated_and_deleted_or_unlisted() {
    let (ctx, app) = market().await;
    let a = create_automation(
        &app,
        json!({ "name": "  Full Bot  ", "provision_url": "https://vendor.example/provision" }),
    )
    .await;
    assert_eq!(a["name"], "Full Bot");
    assert_eq!(a["pricing_type"], "token_per_session");
    assert_eq!(a["status"], "active");
    assert_eq!(a["is_listed"], true);
    assert_eq!(a["demo_tokens"], 5);
    assert_eq!(a["provision_url"], "https://vendor.example/provision");
    assert!(a.get("service_token_hash").is_none());
    let id = a["id"].as_i64().unwrap();

    for (body, field) in [
        (json!({ "price_per_token": 1 }), "name"),
        (json!({ "name": "x" }), "price_per_token"),
        (
            json!({ "name": "x", "price_per_token": -1 }),
            "price_per_token",
        ),
        (
            json!({ "name": "x", "price_per_token": 1, "pricing_type": "free" }),
            "pricing_type",
        ),
        (
            json!({ "name": "x", "price_per_token": 1, "status": "maybe" }),
            "status",
        ),
        (
            json!({ "name": "x", "price_per_token": 1, "demo_tokens": -5 }),
            "demo_tokens",
        ),
        (
            json!({ "name": "x", "price_per_token": 1, "provision_url": "ftp://x" }),
            "provision_url",
        ),
        (
            json!({ "name": "x", "price_per_token": 1, "health_check_url": "not a url" }),
            "health_check_url",
        ),
        (
            json!({ "name": "a\u{202E}b", "price_per_token": 1 }),
            "name",
        ),
    ] {
        let res = internal(app.post("/internal/automations"))
            .json(&body)
            .call()
            .await;
        assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        let err = json_of(res).await;
        assert!(
            zimmer_testkit::has_field_error(&err, field),
            "{body}: {err}"
        );
    }
    internal(app.post("/internal/automations"))
        .json(&json!({ "name": "x", "price_per_token": "lots" }))
        .expect_status(StatusCode::UNPROCESSABLE_ENTITY)
        .await;

    // Partial update; null clears a URL.
    let res = internal(
        app.client
            .patch(app.url(&format!("/internal/automations/{id}"))),
    )
    .json(&json!({ "price_per_token": 25_000, "provision_url": null }))
    .call_expecting(StatusCode::OK)
    .await;
    let updated = json_of(res).await;
    assert_eq!(updated["price_per_token"], 25_000);
    assert!(updated["provision_url"].is_null());
    assert_eq!(updated["name"], "Full Bot");
    internal(app.put("/internal/automations/999999"))
        .json(&json!({ "name": "y" }))
        .expect_status(StatusCode::NOT_FOUND)
        .await;

    // Nobody has it: deleted.
    let lonely = create_automation(&app, json!({ "name": "Lonely" })).await;
    let res = internal(app.delete(&format!("/internal/automations/{}", lonely["id"])))
        .call()
        .await;
    assert_eq!(json_of(res).await["deleted"], true);
    internal(app.get(&format!("/internal/automations/{}", lonely["id"])))
        .expect_status(StatusCode::NOT_FOUND)
        .await;

    // A customer has it: unlisted instead, and the customer keeps it.
    let (_, access) = customer(&ctx, "keeper@example.com").await;
    add(&app, &access, id).await;
    let res = internal(app.delete(&format!("/internal/automations/{id}")))
        .call_expecting(StatusCode::OK)
        .await;
    let body = json_of(res).await;
    assert_eq!(
        (body["deleted"].clone(), body["unlisted"].clone()),
        (json!(false), json!(true))
    );
    let catalogue = app.get("/api/automations/marketplace").json_body().await;
    assert_eq!(catalogue["total"], 0);
    app.get(&format!("/api/user/automations/{id}"))
        .bearer_auth(&access)
        .expect_status(StatusCode::OK)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_token_is_shown_once_and_stored_only_as_its_hash() {
    let (ctx, app) = market().await;
    let id = automation_with(&app, json!({})).await;
    let res = internal(app.post(&format!("/internal/automations/{id}/service-token")))
        .call_expecting(StatusCode::CREATED)
        .await;
    assert_eq!(res.headers()["cache-control"], "no-store");
    let token = json_of(res).await["service_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(token.starts_with("zst_") && token.len() > 40);

    let stored: Option<Vec<u8>> = {
        use diesel::prelude::*;
        use diesel_async::RunQueryDsl;
        use zimmer_db::schema::automations;
        let mut conn = ctx.db.connect().await;
        automations::table
            .find(id)
            .select(automations::service_token_hash)
            .first(&mut conn)
            .await
            .unwrap()
    };
    assert_eq!(
        stored,
        Some(zimmer_marketplace::domain::tokens::token_hash(&token))
    );
    let view = internal(app.get(&format!("/internal/automations/{id}")))
        .call()
        .await
        .text()
        .await
        .unwrap();
    assert!(!view.contains(&token));
    assert!(view.contains("\"has_service_token\":true"));
    internal(app.post("/internal/automations/999999/service-token"))
        .expect_status(StatusCode::NOT_FOUND)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adjustments_are_idempotent_audited_and_never_go_below_zero() {
    let (ctx, app) = market().await;
    let a = create_automation(&app, json!({ "demo_tokens": 0 })).await;
    let (user_id, access) = customer(&ctx, "adjusted@example.com").await;
    let ua = add(&app, &access, a["id"].as_i64().unwrap()).await;
    let manager = staff(&ctx, "boss@example.com").await;

    // The same key five times at once: applied once, the others replay the same answer.
    let calls = (0..5).map(|_| {
        let app = &app;
        async move {
            let res = adjust(app, ua, 30, "ticket-17", manager).await;
            (res.status(), json_of(res).await)
        }
    });
    let answers = join_all(calls).await;
    assert_eq!(
        answers
            .iter()
            .filter(|(s, _)| *s == StatusCode::CREATED)
            .count(),
        1
    );
    assert_eq!(
        answers.iter().filter(|(s, _)| *s == StatusCode::OK).count(),
        4
    );
    assert!(answers.iter().all(|(_, b)| b == &answers[0].1));
    let body = &answers[0].1;
    assert_eq!(body["tokens_remaining"], 30);
    assert_eq!(body["delta"], 30);
    assert_eq!(body["actor_id"], manager);
    assert_eq!(balances(&ctx, ua).await.0, 30);
    assert_db_count(
        &ctx,
        &format!("SELECT count(*) AS n FROM token_ledger WHERE kind = 'adjustment' AND actor_id = {manager} AND reason = 'test credit' AND source_key = 'adjust:ticket-17'"),
        1,
    )
    .await;
    let data = only_event_data(&ctx, "tokens.adjusted").await;
    assert_eq!(data["user_id"], user_id);
    assert_eq!(data["delta"], 30);
    assert_eq!(data["reason"], "test credit");
    assert_eq!(data["actor_id"], manager);

    // The key again with another delta: a conflict, not a second adjustment.
    let res = adjust(&app, ua, 31, "ticket-17", manager).await;
    assert_eq!(res.status(), StatusCode::CONFLICT);
    assert_eq!(json_of(res).await["code"], "idempotency_conflict");
    // A debit beyond the balance is refused; one within it is applied.
    let res = adjust(&app, ua, -31, "debit-1", manager).await;
    assert_eq!(res.status(), StatusCode::CONFLICT);
    assert_eq!(json_of(res).await["code"], "insufficient_tokens");
    let res = adjust(&app, ua, -30, "debit-2", manager).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    assert_eq!(balances(&ctx, ua).await.0, 0);
    assert_eq!(outbox_count(&ctx, "tokens.depleted").await, 1);

    assert_eq!(
        adjust(&app, 999_999, 5, "nobody", manager).await.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        adjust(&app, ua, 5, "ghost-actor", 999_999).await.status(),
        StatusCode::UNPROCESSABLE_ENTITY
    );
    for (delta, key) in [(0, "zero"), (2_000_000, "huge"), (5, "has space")] {
        let res = adjust(&app, ua, delta, key, manager).await;
        assert_eq!(
            res.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "{delta} {key}"
        );
    }
    assert_eq!(internal(app.post("/internal/tokens/adjust"))
        .json(&json!({ "user_automation_id": ua, "delta": 5, "reason": "", "idempotency_key": "k", "actor_id": manager })).status().await, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(balances(&ctx, ua).await.0, 0);
}
