//! The dashboard's OpenAI-keys page (docs/panels.md "OpenAI keys", "OpenAI keys: per-automation
//! limits and test"): its alias paths and shapes on the same rows as /openai-keys, the limits
//! counted and enforced by the lease, and the key test against the fake OpenAI.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::time::Duration;

use common::{Call, With, World, body};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use zimmer_fake_openai::FakeOpenAi;
use zimmer_jwt::Role;
use zimmer_testkit::str_at;

const VALID: &str = "sk-proj-Valid0000Key1111Secret2222wxyz";
const WRONG: &str = "sk-proj-Wrong9999Key8888Secret7777abcd";

async fn automation(w: &World, name: &str) -> i64 {
    w.insert(&format!(
        "INSERT INTO automations (name, description, price_per_token) \
         VALUES ('{name}', 'keys', 1000) RETURNING id"
    ))
    .await
}

/// `POST /api/admin/` as the page sends it; answers the created key.
async fn create(w: &World, token: &str, b: Value) -> Value {
    let res = w.send(Method::POST, "/api/admin/", token, &b).await;
    let (status, v) = body(res).await;
    assert_eq!(status, StatusCode::CREATED, "{b} → {v}");
    v
}

/// An active key "main" of `automation` with these limits, as the page creates it.
async fn main_key(w: &World, token: &str, automation: i64, rpm: i64, daily: i64) -> Value {
    let form = json!({"automation_id": automation, "alias": "main", "api_key": VALID,
                      "status": "active", "rpm_limit": rpm, "daily_token_limit": daily});
    create(w, token, form).await
}

async fn list(w: &World, token: &str, query: &str) -> Vec<Value> {
    let v = w.json(&format!("/api/admin/list{query}"), token).await;
    v.as_array().expect("a bare array").clone()
}

fn find(keys: &[Value], id: i64) -> Value {
    keys.iter()
        .find(|k| k["id"] == id)
        .cloned()
        .unwrap_or_else(|| panic!("key {id} not listed: {keys:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_paths_serve_the_key_rows_with_the_fields_the_page_reads() {
    let w = World::start(With::NONE).await;
    let [(_, tech), (_, support)] = w.staff([Role::TechnicalTeam, Role::SupportStaff]).await;
    let a = automation(&w, "Bot A").await;
    let b = automation(&w, "Bot B").await;

    let k = main_key(&w, &tech, a, 60, 100_000).await;
    let id = k["id"].as_i64().unwrap();
    for field in [
        "id",
        "automation_id",
        "alias",
        "status",
        "rpm_limit",
        "daily_token_limit",
        "used_requests_minute",
        "used_tokens_today",
        "last_used_at",
        "failure_count",
        "masked_key",
        "created_at",
        "updated_at",
    ] {
        assert!(k.get(field).is_some(), "{field} missing in {k}");
    }
    assert_eq!(k["automation_id"], a);
    assert_eq!(k["masked_key"], "sk-****wxyz");
    assert_eq!(
        (
            &k["rpm_limit"],
            &k["daily_token_limit"],
            &k["used_requests_minute"],
            &k["used_tokens_today"],
            &k["failure_count"]
        ),
        (&json!(60), &json!(100000), &json!(0), &json!(0), &json!(0))
    );

    // The alias is unique per automation, not globally; an automation must be chosen.
    let payload =
        json!({"automation_id": a, "alias": "main", "api_key": WRONG, "status": "active"});
    w.post("/api/admin/", &tech, &payload, StatusCode::CONFLICT)
        .await;
    let other = create(
        &w,
        &tech,
        json!({"automation_id": b, "alias": "main", "api_key": WRONG, "status": "disabled",
               "rpm_limit": null, "daily_token_limit": null}),
    )
    .await;
    let other_id = other["id"].as_i64().unwrap();
    assert_eq!(other["status"], "disabled");
    for automation_id in [json!(0), json!(999_999), Value::Null] {
        let payload = json!({"automation_id": automation_id, "alias": "x", "api_key": VALID, "status": "active"});
        let v = w
            .post(
                "/api/admin/",
                &tech,
                &payload,
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await;
        assert!(str_at(&v, "detail").contains("choose an automation"), "{v}");
    }
    for bad in [json!({"rpm_limit": 0}), json!({"daily_token_limit": -5})] {
        let mut b = json!({"automation_id": a, "alias": "y", "api_key": VALID});
        b.as_object_mut()
            .unwrap()
            .extend(bad.as_object().unwrap().clone());
        let res = w.send(Method::POST, "/api/admin/", &tech, &b).await;
        assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY, "{b}");
    }

    // The list: a bare array, filters ignored when empty, never the key.
    let res = w.get("/api/admin/list?automation_id=&status=", &tech).await;
    assert_eq!(res.status(), StatusCode::OK);
    let text = res.text().await.unwrap();
    assert!(!text.contains(VALID) && !text.contains(WRONG), "{text}");
    let all: Vec<Value> = serde_json::from_str(&text).unwrap();
    assert_eq!(all.len(), 2);
    assert_eq!(
        list(&w, &tech, &format!("?automation_id={a}")).await.len(),
        1
    );
    assert_eq!(list(&w, &tech, "?status=disabled").await.len(), 1);
    assert_eq!(
        list(&w, &tech, &format!("?automation_id={b}&status=active"))
            .await
            .len(),
        0
    );
    // The same rows as /openai-keys.
    w.json_total("/api/admin/openai-keys", &tech, 2).await;

    // Edit: partial; `api_key: ""` keeps the key; null removes a limit.
    let payload = json!({"alias": "primary", "rpm_limit": null, "daily_token_limit": 500, "status": "active", "api_key": ""});
    let path = format!("/api/admin/keys/{id}");
    let v = w.put(&path, &tech, &payload, StatusCode::OK).await;
    assert_eq!(
        (
            &v["alias"],
            &v["rpm_limit"],
            &v["daily_token_limit"],
            &v["masked_key"]
        ),
        (
            &json!("primary"),
            &Value::Null,
            &json!(500),
            &json!("sk-****wxyz")
        )
    );
    let payload = json!({"status": "disabled"});
    let path = format!("/api/admin/keys/{id}/status");
    let res = w.send(Method::PATCH, &path, &tech, &payload).await;
    let (status, v) = body(res).await;
    assert_eq!((status, &v["status"]), (StatusCode::OK, &json!("disabled")));
    assert_eq!(find(&list(&w, &tech, "").await, id)["status"], "disabled");
    let payload = json!({"status": "broken"});
    let path = format!("/api/admin/keys/{id}/status");
    w.send_expecting(
        Method::PATCH,
        &path,
        &tech,
        &payload,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;

    // Support staff may not touch keys (403 with detail).
    let (status, v) = body(w.get("/api/admin/list", &support).await).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(v["detail"].is_string());

    // Delete through the alias (no body, JSON content type as the page sends it).
    let path = format!("/api/admin/keys/{other_id}");
    let res = w.bare(Method::DELETE, &path, &tech).await;
    assert!(res.status().is_success());
    assert_eq!(list(&w, &tech, "").await.len(), 1);
    let payload = json!({"alias": "z"});
    w.put(&path, &tech, &payload, StatusCode::NOT_FOUND).await;
}

/// `POST /internal/openai-keys/lease` as a service.
async fn lease(w: &World, automation_id: i64, tokens: i64) -> (StatusCode, Value) {
    let res = w
        .admin
        .post("/internal/openai-keys/lease")
        .header(
            "x-internal-token",
            zimmer_config::dev_internal_token("marketplace"),
        )
        .json(&json!({"automation_id": automation_id, "tokens": tokens}))
        .call()
        .await;
    body(res).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_use_is_counted_and_the_limits_hold() {
    let w = World::start(With::NONE).await;
    let (_, tech) = w.user("tech@example.com", Role::TechnicalTeam).await;
    let a = automation(&w, "Bot A").await;
    let id = main_key(&w, &tech, a, 2, 100).await["id"].as_i64().unwrap();

    // Two requests in a minute; the third is refused (429) until the next minute.
    let (status, g) = lease(&w, a, 30).await;
    assert_eq!(status, StatusCode::OK, "{g}");
    assert_eq!(
        (
            &g["key_id"],
            &g["api_key"],
            &g["used_requests_minute"],
            &g["used_tokens_today"]
        ),
        (&json!(id), &json!(VALID), &json!(1), &json!(30))
    );
    let (status, g) = lease(&w, a, 30).await;
    assert_eq!(
        (status, &g["used_requests_minute"]),
        (StatusCode::OK, &json!(2))
    );
    let (status, v) = lease(&w, a, 1).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{v}");
    let shown = find(&list(&w, &tech, "").await, id);
    assert_eq!(
        (&shown["used_requests_minute"], &shown["used_tokens_today"]),
        (&json!(2), &json!(60))
    );
    assert!(shown["last_used_at"].is_string());

    // A later minute: the per-minute count starts again; the daily cap holds, and reaching
    // it marks the key exhausted.
    w.sql(&format!(
        "UPDATE openai_keys SET minute_window_start = now() - interval '2 minutes' WHERE id = {id}"
    ))
    .await;
    let shown = find(&list(&w, &tech, "").await, id);
    assert_eq!(shown["used_requests_minute"], 0, "an old window reads as 0");
    let (status, v) = lease(&w, a, 41).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "60 + 41 > 100: {v}");
    let (status, g) = lease(&w, a, 40).await;
    assert_eq!(status, StatusCode::OK, "{g}");
    assert_eq!(
        (&g["used_tokens_today"], &g["status"]),
        (&json!(100), &json!("exhausted"))
    );
    w.sql(&format!(
        "UPDATE openai_keys SET minute_window_start = now() - interval '2 minutes' WHERE id = {id}"
    ))
    .await;
    let (status, _) = lease(&w, a, 0).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "exhausted for today");
    assert_eq!(find(&list(&w, &tech, "").await, id)["status"], "exhausted");

    // The next UTC day the key is usable again, its count starting from this request.
    w.sql(&format!(
        "UPDATE openai_keys SET usage_date = usage_date - 1, \
         minute_window_start = now() - interval '2 minutes' WHERE id = {id}"
    ))
    .await;
    let (status, g) = lease(&w, a, 5).await;
    assert_eq!(status, StatusCode::OK, "{g}");
    assert_eq!(
        (
            &g["used_tokens_today"],
            &g["status"],
            &g["used_requests_minute"]
        ),
        (&json!(5), &json!("active"), &json!(1))
    );

    // Disabled keys and keys refused by OpenAI are never handed out; no key → 404.
    w.sql(&format!(
        "UPDATE openai_keys SET status = 'disabled' WHERE id = {id}"
    ))
    .await;
    let (status, v) = lease(&w, a, 1).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{v}");
    assert!(v["detail"].is_string());
    let (status, _) = lease(&w, automation(&w, "Keyless").await, 1).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Without a service credential: 401; never through /api.
    w.admin
        .post("/internal/openai-keys/lease")
        .json(&json!({"automation_id": a, "tokens": 1}))
        .expect_status(StatusCode::UNAUTHORIZED)
        .await;

    // Concurrent requests never exceed the per-minute limit nor lose a count.
    let c = automation(&w, "Busy").await;
    let busy = create(
        &w,
        &tech,
        json!({"automation_id": c, "alias": "busy", "api_key": WRONG, "rpm_limit": 5,
               "daily_token_limit": 1000}),
    )
    .await;
    let attempts = (0..12).map(|_| lease(&w, c, 10));
    let results = futures_util::future::join_all(attempts).await;
    let granted = results.iter().filter(|(s, _)| *s == StatusCode::OK).count();
    assert_eq!(granted, 5, "{results:?}");
    assert!(
        results
            .iter()
            .all(|(s, _)| *s == StatusCode::OK || *s == StatusCode::TOO_MANY_REQUESTS)
    );
    let shown = find(&list(&w, &tech, "").await, busy["id"].as_i64().unwrap());
    assert_eq!(
        (&shown["used_requests_minute"], &shown["used_tokens_today"]),
        (&json!(5), &json!(50))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_key_test_asks_openai_and_marks_a_refused_key() {
    let fake = FakeOpenAi::with_keys(&[VALID]).await.unwrap();
    let w = World::start_with(
        With::NONE,
        &[
            ("OPENAI_BASE_URL", fake.base_url.as_str()),
            ("OPENAI_TEST_TIMEOUT_SECS", "1"),
        ],
    )
    .await;
    let (_, tech) = w.user("tech@example.com", Role::TechnicalTeam).await;
    let a = automation(&w, "Bot A").await;
    let key = async |body: Value| create(&w, &tech, body).await["id"].as_i64().unwrap();
    let good = key(json!({"automation_id": a, "alias": "good", "api_key": VALID})).await;
    let bad = key(json!({"automation_id": a, "alias": "bad", "api_key": WRONG})).await;
    let off =
        key(json!({"automation_id": a, "alias": "off", "api_key": VALID, "status": "disabled"}))
            .await;

    let test = |id: i64| {
        let w = &w;
        let tech = tech.clone();
        async move {
            let path = format!("/api/admin/keys/{id}/test");
            let res = w.bare(Method::POST, &path, &tech).await;
            let status = res.status();
            let text = res.text().await.unwrap();
            for secret in [VALID, WRONG] {
                assert!(!text.contains(secret), "the answer holds the key: {text}");
                assert!(!text.contains(&secret[..12]), "{text}");
            }
            (status, serde_json::from_str::<Value>(&text).unwrap())
        }
    };

    // A valid key: one call, the model and the latency.
    let (status, v) = test(good).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["success"], true, "{v}");
    assert_eq!(v["model"], "gpt-4o-mini");
    assert!(v["latency_ms"].as_i64().is_some_and(|l| l >= 0));
    assert_eq!(fake.calls(), 1);

    // A key OpenAI refuses: 200 with the reason (the key never in it), status error, a failure.
    let (status, v) = test(bad).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(v["success"], false);
    let message = str_at(&v, "error_message");
    assert!(message.contains("401"), "{message}");
    assert!(!message.contains("sk-"), "{message}");
    assert!(v["latency_ms"].is_number());
    let shown = find(&list(&w, &tech, "").await, bad);
    assert_eq!(
        (&shown["status"], &shown["failure_count"]),
        (&json!("error"), &json!(1))
    );
    let (_, v) = test(bad).await;
    assert_eq!(v["success"], false);
    assert_eq!(find(&list(&w, &tech, "").await, bad)["failure_count"], 2);
    assert_eq!(fake.calls(), 3);

    // A disabled key answers without a call.
    let (status, v) = test(off).await;
    assert_eq!((status, &v["success"]), (StatusCode::OK, &json!(false)));
    assert!(v["error_message"].is_string());
    assert_eq!(fake.calls(), 3, "no call for a disabled key");

    // Once OpenAI accepts the key again, a test clears the error (the count stays).
    fake.add_valid_key(WRONG);
    let (_, v) = test(bad).await;
    assert_eq!(v["success"], true, "{v}");
    let shown = find(&list(&w, &tech, "").await, bad);
    assert_eq!(
        (&shown["status"], &shown["failure_count"]),
        (&json!("active"), &json!(2))
    );

    // Too slow: a failure within the timeout, not an error status; the key keeps its status.
    fake.set_delay(Duration::from_millis(2500));
    let (status, v) = test(good).await;
    assert_eq!((status, &v["success"]), (StatusCode::OK, &json!(false)));
    assert!(
        str_at(&v, "error_message").contains("did not answer"),
        "{v}"
    );
    assert_eq!(find(&list(&w, &tech, "").await, good)["status"], "active");
    fake.set_delay(Duration::ZERO);

    // Unknown key: 404 JSON. Every test was audited, without the key.
    let (status, v) = test(999_999).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(v["detail"].is_string());
    assert_eq!(
        w.count("SELECT count(*) AS n FROM admin_audit_log WHERE action = 'openai_key.test'")
            .await,
        5,
        "two valid, three refused or slow; the disabled key was not tested"
    );
    w.assert_count(
        &format!(
            "SELECT count(*) AS n FROM admin_audit_log WHERE details::text LIKE '%{}%' \
             OR details::text LIKE '%{}%'",
            &VALID[8..],
            &WRONG[8..]
        ),
        0,
    )
    .await;
}
