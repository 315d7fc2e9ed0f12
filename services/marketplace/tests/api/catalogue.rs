//! The public catalogue: listed, active automations, search and paging, the panel's shapes,
//! and the Redis cache with its invalidation.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use common::*;
use reqwest::StatusCode;
use serde_json::{Value, json};
use zimmer_testkit::str_at;

async fn names(app: &zimmer_testkit::TestApp, path: &str) -> (Vec<String>, Value) {
    let res = app.get(path).call().await;
    assert_eq!(res.status(), StatusCode::OK, "{path}");
    let body = json_of(res).await;
    let list = body
        .get("items")
        .or_else(|| body.get("automations"))
        .and_then(Value::as_array)
        .unwrap()
        .iter()
        .map(|a| str_at(a, "name").to_owned())
        .collect();
    (list, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_listed_active_automations_with_search_and_paging() {
    let (_ctx, app) = market().await;
    create_automation(
        &app,
        json!({ "name": "Telegram Support", "description": "answers customers" }),
    )
    .await;
    create_automation(
        &app,
        json!({ "name": "Sales Helper", "status": "inactive" }),
    )
    .await;
    create_automation(&app, json!({ "name": "Hidden", "is_listed": false })).await;
    create_automation(
        &app,
        json!({ "name": "تولید\u{200C}محتوا", "description": "نوشتن پست" }),
    )
    .await;
    create_automation(&app, json!({ "name": "50% off_bot", "description": "" })).await;

    let (list, body) = names(&app, "/api/automations/marketplace").await;
    assert_eq!(
        list,
        ["Telegram Support", "تولید\u{200C}محتوا", "50% off_bot"]
    );
    assert_eq!(body["total"], 3);
    assert_eq!(body["page"], 1);
    assert_eq!(body["page_size"], 20);
    let first = &body["items"][0];
    for field in [
        "id",
        "name",
        "description",
        "pricing_type",
        "price_per_token",
        "health_status",
        "demo_tokens",
        "status",
        "is_listed",
        "created_at",
    ] {
        assert!(first.get(field).is_some(), "missing {field}: {first}");
    }
    assert_eq!(first["price_per_token"], 10_000);
    assert_eq!(first["health_status"], "unknown");
    assert!(first.get("provision_url").is_none() && first.get("has_service_token").is_none());

    assert_eq!(
        names(&app, "/api/automations/marketplace?search=TELEGRAM")
            .await
            .0,
        ["Telegram Support"]
    );
    assert_eq!(
        names(&app, "/api/automations/marketplace?search=customers")
            .await
            .0,
        ["Telegram Support"]
    );
    let persian = "/api/automations/marketplace?search=%D8%AA%D9%88%D9%84%DB%8C%D8%AF"; // تولید
    assert_eq!(names(&app, persian).await.0, ["تولید\u{200C}محتوا"]);
    // LIKE wildcards in a search are literal characters.
    assert_eq!(
        names(&app, "/api/automations/marketplace?search=%25")
            .await
            .0,
        ["50% off_bot"]
    );
    assert_eq!(
        names(&app, "/api/automations/marketplace?search=_").await.0,
        ["50% off_bot"]
    );

    let (list, body) = names(&app, "/api/automations/available?page=2&page_size=1").await;
    assert_eq!(list, ["تولید\u{200C}محتوا"]);
    assert_eq!(
        (
            body["total"].as_i64(),
            body["page"].as_i64(),
            body["page_size"].as_i64()
        ),
        (Some(3), Some(2), Some(1))
    );
    assert_eq!(
        names(&app, "/api/automations?page_size=1000").await.1["page_size"],
        100
    );
    let (list, body) = names(&app, "/api/optimized/automations/marketplace").await;
    assert_eq!(list.len(), 3);
    assert!(body.get("automations").is_some());

    let res = app
        .get(&format!(
            "/api/automations/marketplace?search={}",
            "a".repeat(101)
        ))
        .call_expecting(StatusCode::UNPROCESSABLE_ENTITY)
        .await;
    assert_eq!(json_of(res).await["errors"][0]["field"], "search");
    app.get("/api/automations/marketplace?page=abc")
        .expect_status(StatusCode::BAD_REQUEST)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_automation_unwrapped_with_user_has_automation_for_a_bearer() {
    let (ctx, app) = market().await;
    let id = automation_with(&app, json!({ "name": "Detail Bot" })).await;
    let hidden = create_automation(&app, json!({ "name": "Hidden", "is_listed": false })).await;

    let body = app
        .get(&format!("/api/automations/{id}?t=1700000000000"))
        .json_body()
        .await;
    assert_eq!(body["id"], id);
    assert_eq!(body["name"], "Detail Bot");
    assert_eq!(body["status"], "active");
    assert_eq!(body["is_listed"], true);
    assert!(body["price_per_token"].is_i64());
    assert_eq!(body["user_has_automation"], false);

    let (_, access) = customer(&ctx, "viewer@example.com").await;
    let path = format!("/api/automations/{id}");
    let has = |access: String| {
        let app = &app;
        let path = path.clone();
        async move {
            app.get(&path).bearer_auth(access).json_body().await["user_has_automation"].clone()
        }
    };
    assert_eq!(has(access.clone()).await, false);
    add(&app, &access, id).await;
    assert_eq!(has(access.clone()).await, true);

    let res = app
        .get(&format!("/api/automations/{}", hidden["id"]))
        .call_expecting(StatusCode::NOT_FOUND)
        .await;
    assert_eq!(json_of(res).await["code"], "not_found");
    app.get("/api/automations/999999")
        .expect_status(StatusCode::NOT_FOUND)
        .await;
    app.get("/api/automations/abc")
        .expect_status(StatusCode::NOT_FOUND)
        .await;
    app.get(&path)
        .bearer_auth("garbage")
        .expect_status(StatusCode::UNAUTHORIZED)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_catalogue_is_cached_and_invalidated_when_an_automation_changes() {
    let (ctx, app) = market().await;
    let a = create_automation(
        &app,
        json!({ "name": "Cached Bot", "price_per_token": 1000 }),
    )
    .await;
    let id = a["id"].as_i64().unwrap();
    let price = |path: String| {
        let app = &app;
        async move {
            let body = app.get(&path).json_body().await;
            body.get("items")
                .map_or(body["price_per_token"].clone(), |i| {
                    i[0]["price_per_token"].clone()
                })
        }
    };
    let detail_path = format!("/api/automations/{id}");
    assert_eq!(price("/api/automations/marketplace".to_owned()).await, 1000);
    assert_eq!(price(detail_path.clone()).await, 1000);

    // Behind the service's back: the cached answers do not see it ...
    set_price_in_db(&ctx, id, 2000).await;
    assert_eq!(
        price("/api/automations/marketplace".to_owned()).await,
        1000,
        "served from the cache"
    );
    assert_eq!(
        price(detail_path.clone()).await,
        1000,
        "served from the cache"
    );

    // ... a change through the service invalidates every cached page at once.
    assert_eq!(
        update_automation(&app, id, json!({ "description": "new text" })).await,
        StatusCode::OK
    );
    assert_eq!(price("/api/automations/marketplace".to_owned()).await, 2000);
    assert_eq!(price(detail_path.clone()).await, 2000);

    // Unlisting removes it from the catalogue at once.
    internal(app.put(&format!("/internal/automations/{id}")))
        .json(&json!({ "is_listed": false }))
        .call()
        .await;
    let body = app.get("/api/automations/marketplace").json_body().await;
    assert_eq!(body["total"], 0);
    assert_eq!(app.get(&detail_path).status().await, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_redis_the_catalogue_is_served_from_the_database() {
    let (_ctx, app) = market_with(&[("REDIS_URL", "redis://127.0.0.1:1")]).await;
    create_automation(&app, json!({ "name": "No Cache Bot" })).await;
    let (list, _) = names(&app, "/api/automations/marketplace").await;
    assert_eq!(list, ["No Cache Bot"]);
    let (list, _) = names(&app, "/api/automations/marketplace").await;
    assert_eq!(list, ["No Cache Bot"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_is_published() {
    let (_ctx, app) = market().await;
    let res = app
        .get("/api/marketplace/openapi.json")
        .call_expecting(StatusCode::OK)
        .await;
    let doc = json_of(res).await;
    assert_eq!(doc["openapi"], "3.1.0");
    for path in [
        "/api/automations/marketplace",
        "/api/user/automations/{automation_id}",
        "/api/automation-usage/consume",
        "/api/user/usage",
    ] {
        assert!(doc["paths"].get(path).is_some(), "{path}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_method_is_a_json_405() {
    let (_ctx, app) = market().await;
    for (method, path) in [
        ("POST", "/api/automations/marketplace"),
        ("DELETE", "/api/user/automations/1"),
        ("GET", "/api/automation-usage/consume"),
    ] {
        let res = app
            .client
            .request(method.parse().unwrap(), app.url(path))
            .call()
            .await;
        assert_eq!(
            res.status(),
            StatusCode::METHOD_NOT_ALLOWED,
            "{method} {path}"
        );
        let body = json_of(res).await;
        assert!(body["detail"].is_string(), "{method} {path}: {body}");
    }
}
