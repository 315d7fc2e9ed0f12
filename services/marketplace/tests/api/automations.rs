//! Automations as the admin dashboard edits them through the internal API (docs/panels.md
//! "Automations and service tokens", "Automations: vendor URLs", "Service tokens: four
//! buttons, one mechanism"): the vendor URLs, partial updates, a chosen token on create, and
//! every way a token is issued or removed acting at once on consumption and signing.

use crate::common;

use common::*;
use reqwest::StatusCode;
use serde_json::{Value, json};
use zimmer_events::contracts::internal::automations::{
    Automation, AutomationDeleted, IssuedServiceToken, ServiceTokenRemoved,
};
use zimmer_marketplace::domain::tokens;
use zimmer_testkit::TestApp;

const URLS: [&str; 7] = [
    "provision_url",
    "health_check_url",
    "api_base_url",
    "api_usage_url",
    "api_kb_status_url",
    "api_kb_reset_url",
    "dashboard_url",
];

async fn put(app: &TestApp, id: i64, body: Value) -> (StatusCode, Value) {
    let res = internal(app.put(&format!("/internal/automations/{id}")))
        .json(&body)
        .call()
        .await;
    let status = res.status();
    (status, res.json().await.unwrap_or(Value::Null))
}

async fn stored_hash_and_tail(
    ctx: &zimmer_testkit::TestContext,
    id: i64,
) -> (Option<Vec<u8>>, Option<String>) {
    use diesel::prelude::*;
    use diesel_async::RunQueryDsl;
    use zimmer_db::schema::automations;
    let mut conn = ctx.db.connect().await;
    automations::table
        .find(id)
        .select((
            automations::service_token_hash,
            automations::service_token_tail,
        ))
        .first(&mut conn)
        .await
        .unwrap()
}

/// A consumption with `token` for a fresh customer of automation `id`: its status.
async fn consumes(
    ctx: &zimmer_testkit::TestContext,
    app: &TestApp,
    id: i64,
    token: &str,
) -> StatusCode {
    let email = format!("c{}@example.com", uuid::Uuid::new_v4().simple());
    let (_, access) = customer(ctx, &email).await;
    let ua = add(app, &access, id).await;
    consume(app, token, &usage(ua, 1)).await.status()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vendor_urls_are_stored_shown_cleared_and_left_alone() {
    let (_ctx, app) = market().await;
    let mut body = json!({ "name": "URL bot" });
    for (i, f) in URLS.iter().enumerate() {
        body[*f] = json!(format!(" https://vendor{i}.example/{f} "));
    }
    let a: Automation = serde_json::from_value(create_automation(&app, body).await).unwrap();
    assert_eq!(
        a.api_base_url.as_deref(),
        Some("https://vendor2.example/api_base_url")
    );
    assert_eq!(
        a.api_kb_status_url.as_deref(),
        Some("https://vendor4.example/api_kb_status_url")
    );
    assert_eq!(
        a.dashboard_url.as_deref(),
        Some("https://vendor6.example/dashboard_url")
    );
    assert!(!a.has_service_token);
    assert_eq!(a.service_token_masked, None);

    // Partial: `{status}` alone changes nothing else (never is_listed, never a URL).
    let (status, v) = put(&app, a.id, json!({ "status": "inactive" })).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let b: Automation = serde_json::from_value(v).unwrap();
    assert_eq!(b.status, "inactive");
    assert!(b.is_listed);
    assert_eq!(b.health_status, a.health_status);
    assert_eq!(b.api_usage_url, a.api_usage_url);
    assert_eq!(b.provision_url, a.provision_url);

    // null and "" clear; an absent URL stays.
    let (status, v) = put(
        &app,
        a.id,
        json!({ "api_base_url": null, "api_usage_url": "", "dashboard_url": "  " }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let c: Automation = serde_json::from_value(v).unwrap();
    assert_eq!(c.api_base_url, None);
    assert_eq!(c.api_usage_url, None);
    assert_eq!(c.dashboard_url, None);
    assert_eq!(c.api_kb_reset_url, a.api_kb_reset_url);
    assert_eq!(c.health_check_url, a.health_check_url);

    // Each URL is checked.
    for f in URLS {
        let (status, v) = put(&app, a.id, json!({ f: "not a url" })).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{f}: {v}");
        assert!(v.to_string().contains(f), "{f} named in {v}");
    }
    // The whole list carries them.
    let all: Vec<Automation> = internal(app.get("/internal/automations"))
        .json_body()
        .await
        .as_array()
        .map(|a| {
            a.iter()
                .map(|v| serde_json::from_value(v.clone()).unwrap())
                .collect()
        })
        .unwrap();
    assert_eq!(all[0].api_kb_reset_url, a.api_kb_reset_url);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_vendor_url_goes_through_the_ssrf_guard_at_save_time() {
    let (_ctx, app) = market_with(&[("VENDOR_URL_ALLOW_PRIVATE", "false")]).await;
    let id = automation_with(&app, json!({ "name": "Guarded" })).await;
    for f in URLS {
        let (status, v) = put(&app, id, json!({ f: "http://127.0.0.1:8080/x" })).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{f}: {v}");
        let (status, v) = put(&app, id, json!({ f: "http://169.254.169.254/latest" })).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{f}: {v}");
    }
    assert_eq!(internal(app.post("/internal/automations"))
        .json(
            &json!({ "name": "x", "price_per_token": 1, "api_kb_reset_url": "http://10.0.0.1/r" }),
        ).status().await, StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chosen_token_is_stored_hashed_with_its_tail_and_works_at_once() {
    let (ctx, app) = market().await;
    let chosen = format!("zst_{}", "k".repeat(36)) + "TAIL";
    let a: Automation = serde_json::from_value(
        create_automation(&app, json!({ "name": "Wizard", "service_token": chosen })).await,
    )
    .unwrap();
    assert!(a.has_service_token);
    assert_eq!(a.service_token_masked.as_deref(), Some("****TAIL"));
    let (hash, tail) = stored_hash_and_tail(&ctx, a.id).await;
    assert_eq!(hash, Some(tokens::token_hash(&chosen)));
    assert_eq!(tail.as_deref(), Some("TAIL"));
    // Consumption and signing both work with it.
    assert_eq!(consumes(&ctx, &app, a.id, &chosen).await, StatusCode::OK);
    let sig = tokens::sign(&hash.unwrap(), 1_000, b"{}");
    assert!(tokens::verify(&chosen, 1_000, b"{}", &sig, 1_000));

    // The same token again: 409, nothing created.
    let res = internal(app.post("/internal/automations"))
        .json(&json!({ "name": "Copy", "price_per_token": 1, "service_token": chosen }))
        .call_expecting(StatusCode::CONFLICT)
        .await;
    assert_eq!(json_of(res).await["code"], "service_token_in_use");
    // Too short, with a space, or on an update: 422.
    for bad in ["short".to_owned(), format!("{} x", "a".repeat(40))] {
        internal(app.post("/internal/automations"))
            .json(&json!({ "name": "Bad", "price_per_token": 1, "service_token": bad }))
            .expect_status(StatusCode::UNPROCESSABLE_ENTITY)
            .await;
    }
    let (status, _) = put(&app, a.id, json!({ "service_token": "y".repeat(40) })).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let all = internal(app.get("/internal/automations")).json_body().await;
    assert_eq!(all.as_array().unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issuing_replaces_the_token_and_removing_it_refuses_consumption_without_unlisting() {
    let (ctx, app) = market().await;
    let id = automation_with(&app, json!({})).await;
    let issue = || async {
        let res = internal(app.post(&format!("/internal/automations/{id}/service-token")))
            .call_expecting(StatusCode::CREATED)
            .await;
        serde_json::from_value::<IssuedServiceToken>(json_of(res).await).unwrap()
    };
    let first = issue().await;
    let t1 = first.service_token.expose().to_owned();
    assert_eq!(
        first.service_token_masked,
        format!("****{}", &t1[t1.len() - 4..])
    );
    assert_eq!(consumes(&ctx, &app, id, &t1).await, StatusCode::OK);
    let second = issue().await;
    let t2 = second.service_token.expose().to_owned();
    assert_ne!(t1, t2);
    assert_eq!(
        consumes(&ctx, &app, id, &t1).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(consumes(&ctx, &app, id, &t2).await, StatusCode::OK);
    let (_, tail) = stored_hash_and_tail(&ctx, id).await;
    assert_eq!(tail.as_deref(), Some(&t2[t2.len() - 4..]));

    let remove = || async {
        let res = internal(app.delete(&format!("/internal/automations/{id}/service-token")))
            .call_expecting(StatusCode::OK)
            .await;
        serde_json::from_value::<ServiceTokenRemoved>(json_of(res).await).unwrap()
    };
    assert!(remove().await.removed);
    assert!(!remove().await.removed, "idempotent");
    assert_eq!(
        consumes(&ctx, &app, id, &t2).await,
        StatusCode::UNAUTHORIZED
    );
    let view: Automation = serde_json::from_value(
        internal(app.get(&format!("/internal/automations/{id}")))
            .json_body()
            .await,
    )
    .unwrap();
    assert!(!view.has_service_token);
    assert_eq!(view.service_token_masked, None);
    assert!(view.is_listed, "removing the token does not unlist");
    assert_eq!(stored_hash_and_tail(&ctx, id).await, (None, None));
    internal(app.delete("/internal/automations/999999/service-token"))
        .expect_status(StatusCode::NOT_FOUND)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_says_whether_it_deleted_or_unlisted() {
    let (ctx, app) = market().await;
    let used = automation_named(&app, "Used").await;
    let unused = automation_named(&app, "Unused").await;
    let (_, access) = customer(&ctx, "owner@example.com").await;
    add(&app, &access, used).await;
    let delete = |id: i64| {
        let app = &app;
        async move {
            let res = internal(app.delete(&format!("/internal/automations/{id}")))
                .call_expecting(StatusCode::OK)
                .await;
            serde_json::from_value::<AutomationDeleted>(json_of(res).await).unwrap()
        }
    };
    let d = delete(used).await;
    assert!(!d.deleted && d.unlisted && !d.message.is_empty());
    assert_eq!(d.automation.map(|a| a.is_listed), Some(false));
    let d = delete(unused).await;
    assert!(d.deleted && !d.unlisted && !d.message.is_empty());
}
