//! The answers each process keeps in memory (`src/local_cache.rs`): the catalogue and a
//! customer's list. A change shows at once on the instance that made it, and on another
//! instance within the documented bound (`CATALOGUE_LOCAL_TTL_MS`,
//! `USER_AUTOMATIONS_CACHE_TTL_MS`); a list never answers for another customer.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use common::*;
use reqwest::StatusCode;
use serde_json::{Value, json};
use zimmer_testkit::{TestApp, TestContext, eventually, str_at};

/// A short bound, so the polls below end quickly; the default is 1000 ms.
const BOUND_MS: &str = "300";

/// Two instances of the marketplace on one database, one Redis prefix and one exchange.
async fn two_instances(extra: &[(&str, &str)]) -> (TestContext, TestApp, TestApp) {
    let mut overrides: Vec<(&str, &str)> = FAST.to_vec();
    overrides.extend_from_slice(&[
        ("CATALOGUE_LOCAL_TTL_MS", BOUND_MS),
        ("USER_AUTOMATIONS_CACHE_TTL_MS", BOUND_MS),
    ]);
    overrides.extend_from_slice(extra);
    let ctx = TestContext::new().await;
    let a = ctx
        .spawn(
            ctx.settings("marketplace", &overrides),
            zimmer_marketplace::build,
        )
        .await;
    let b = ctx
        .spawn(
            ctx.settings("marketplace", &overrides),
            zimmer_marketplace::build,
        )
        .await;
    (ctx, a, b)
}

async fn catalogue_price(app: &TestApp, path: &str) -> Value {
    let body = app.get(path).json_body().await;
    let items = body
        .get("items")
        .or_else(|| body.get("automations"))
        .unwrap();
    items[0]["price_per_token"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_catalogue_change_shows_at_once_here_and_within_the_bound_on_another_instance() {
    let (_ctx, a, b) = two_instances(&[]).await;
    let id =
        create_automation(&a, json!({ "name": "Bound Bot", "price_per_token": 1000 })).await["id"]
            .as_i64()
            .unwrap();
    let paths = [
        "/api/automations/marketplace",
        "/api/optimized/automations/marketplace",
    ];
    for path in paths {
        // Twice each: the second answer comes from memory.
        for app in [&a, &b, &a, &b] {
            assert_eq!(catalogue_price(app, path).await, 1000, "{path}");
        }
    }

    assert_eq!(
        internal(a.put(&format!("/internal/automations/{id}")))
            .json(&json!({ "price_per_token": 2000 }))
            .status()
            .await,
        StatusCode::OK
    );
    for path in paths {
        assert_eq!(
            catalogue_price(&a, path).await,
            2000,
            "{path}: the instance that made the change shows it at once"
        );
    }
    for path in paths {
        eventually(
            "the other instance shows the change after the bound",
            WAIT,
            || async { catalogue_price(&b, path).await == 2000 },
        )
        .await;
    }

    // Unlisted through B: gone from B at once, from A within the bound.
    internal(b.put(&format!("/internal/automations/{id}")))
        .json(&json!({ "is_listed": false }))
        .call()
        .await;
    assert_eq!(
        b.get("/api/automations/marketplace").json_body().await["total"],
        0
    );
    eventually("A no longer lists it", WAIT, || async {
        a.get("/api/automations/marketplace").json_body().await["total"] == 0
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_memory_and_redis_off_every_answer_is_read_afresh() {
    // The switch used for A/B measurements: no copy anywhere, so a change made behind the
    // service's back shows on the next call.
    let (ctx, app) = market_with(&[
        ("CATALOGUE_LOCAL_TTL_MS", "0"),
        ("USER_AUTOMATIONS_CACHE_TTL_MS", "0"),
        ("REDIS_URL", "redis://127.0.0.1:1"),
    ])
    .await;
    let id = create_automation(
        &app,
        json!({ "name": "Fresh Bot", "price_per_token": 1000 }),
    )
    .await["id"]
        .as_i64()
        .unwrap();
    assert_eq!(
        catalogue_price(&app, "/api/automations/marketplace").await,
        1000
    );
    let (_, alice) = customer(&ctx, "fresh@example.com").await;
    add(&app, &alice, id).await;
    let list = || {
        app.get("/api/user/automations")
            .bearer_auth(&alice)
            .json_body()
    };
    assert_eq!(list().await[0]["tokens_remaining"], 0);

    set_price_in_db(&ctx, id, 3000).await;
    let mut conn = ctx.db.connect().await;
    {
        use diesel::prelude::*;
        use diesel_async::RunQueryDsl;
        use zimmer_db::schema::user_automations;
        diesel::update(user_automations::table.filter(user_automations::automation_id.eq(id)))
            .set(user_automations::tokens_remaining.eq(42))
            .execute(&mut conn)
            .await
            .unwrap();
    }
    assert_eq!(
        catalogue_price(&app, "/api/automations/marketplace").await,
        3000
    );
    assert_eq!(list().await[0]["tokens_remaining"], 42);
}

fn names(list: &Value) -> Vec<String> {
    list.as_array()
        .expect("a bare array")
        .iter()
        .map(|i| str_at(i, "name").to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_customers_list_in_memory_is_theirs_and_shows_changes_within_the_bound() {
    let (ctx, a, b) = two_instances(&[]).await;
    let x = create_automation(&a, json!({ "name": "X Bot" })).await["id"]
        .as_i64()
        .unwrap();
    let y = create_automation(&a, json!({ "name": "Y Bot" })).await["id"]
        .as_i64()
        .unwrap();
    let (_, alice) = customer(&ctx, "alice-mem@example.com").await;
    let (_, bob) = customer(&ctx, "bob-mem@example.com").await;
    let alice_x = add(&a, &alice, x).await;
    add(&a, &bob, y).await;

    let list =
        |app: &TestApp, token: &str, path: &str| app.get(path).bearer_auth(token).json_body();
    // Alternating callers on both instances, both lists: each only ever sees their own.
    for _ in 0..3 {
        for app in [&a, &b] {
            for path in ["/api/user/automations", "/api/user/automations/active"] {
                assert_eq!(names(&list(app, &alice, path).await), ["X Bot"], "{path}");
                assert_eq!(names(&list(app, &bob, path).await), ["Y Bot"], "{path}");
            }
        }
    }
    // No token, no list (the cache is behind authentication).
    assert_eq!(
        a.get("/api/user/automations").status().await,
        StatusCode::UNAUTHORIZED
    );

    // Alice adds Y on A: A shows it at once, B within the bound; Bob's list is unchanged.
    add(&a, &alice, y).await;
    assert_eq!(
        names(&list(&a, &alice, "/api/user/automations").await),
        ["Y Bot", "X Bot"]
    );
    eventually("B shows Alice's new automation", WAIT, || async {
        names(&list(&b, &alice, "/api/user/automations").await).len() == 2
    })
    .await;
    assert_eq!(
        names(&list(&b, &bob, "/api/user/automations").await),
        ["Y Bot"]
    );

    // A staff adjustment through A: at once on A, within the bound on B.
    let manager = staff(&ctx, "manager-mem@example.com").await;
    assert_eq!(
        adjust(&a, alice_x, 7, "mem-credit", manager).await.status(),
        StatusCode::CREATED
    );
    let x_balance = |list: Value| {
        list.as_array()
            .unwrap()
            .iter()
            .find(|i| i["automation_id"] == x)
            .unwrap()["tokens_remaining"]
            .clone()
    };
    assert_eq!(
        x_balance(list(&a, &alice, "/api/user/automations").await),
        7
    );
    eventually("B shows the adjusted balance", WAIT, || async {
        x_balance(list(&b, &alice, "/api/user/automations").await) == 7
    })
    .await;

    // A vendor's consumption (no event per call): within the bound on both instances.
    let service_token = issue_token(&a, x).await;
    let res = consume(&a, &service_token, &usage_keyed(alice_x, 2, "mem-1")).await;
    assert_eq!(res.status(), StatusCode::OK);
    let (paid, demo, ..) = balances(&ctx, alice_x).await;
    for app in [&a, &b] {
        eventually(
            "the list shows the balance after consumption",
            WAIT,
            || async {
                let items = list(app, &alice, "/api/user/automations").await;
                let item = items
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|i| i["automation_id"] == x)
                    .unwrap()
                    .clone();
                item["tokens_remaining"] == paid && item["demo_tokens"] == demo
            },
        )
        .await;
    }
}
