//! A customer's automations: adding with the demo grant, listing and viewing, the bot token,
//! usage charts; and never seeing another customer's.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use common::*;
use futures_util::future::join_all;
use reqwest::StatusCode;
use serde_json::{Value, json};
use zimmer_testkit::{TestApp, str_at};

/// A customer's list (a bare array) at `path`.
async fn listed(app: &TestApp, path: &str, access: &str) -> Vec<Value> {
    let list = app.get(path).bearer_auth(access).json_body().await;
    list.as_array().expect("a bare array").clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adding_grants_demo_tokens_through_the_ledger_once() {
    let (ctx, app) = market().await;
    let id = automation_with(&app, json!({ "name": "Adder", "demo_tokens": 7 })).await;
    let (user_id, access) = customer(&ctx, "adder@example.com").await;

    let ua = add_json(&app, &access, id).await;
    assert_eq!(ua["automation_id"], id);
    assert_eq!(ua["demo_tokens"], 7);
    assert_eq!(ua["tokens_remaining"], 0);
    assert_eq!(ua["is_demo_active"], true);
    assert_eq!(ua["demo_expired"], false);
    assert_eq!(ua["status"], "active");
    assert_eq!(ua["integration_status"], "pending");
    assert!(ua["telegram_bot_token"].is_null());
    assert_eq!(ua["automation"]["name"], "Adder");
    let ua_id = ua["id"].as_i64().unwrap();
    assert_db_count(
        &ctx,
        &format!("SELECT count(*) AS n FROM token_ledger WHERE kind = 'demo_grant' AND demo_delta = 7 AND source_key = 'demo:{ua_id}'"),
        1,
    )
    .await;
    let data = only_event_data(&ctx, "user_automation.created").await;
    assert_eq!(
        data,
        json!({ "user_automation_id": ua_id, "user_id": user_id, "automation_id": id, "demo_tokens": 7 })
    );

    let res = app
        .post(&format!("/api/user/automations/{id}"))
        .bearer_auth(&access)
        .call_expecting(StatusCode::CONFLICT)
        .await;
    let err = json_of(res).await;
    assert_eq!(err["code"], "already_added");
    assert!(str_at(&err, "detail").len() > 5);

    // Five at once for another customer: one wins, four hear 409, one demo grant.
    let (_, other) = customer(&ctx, "racer@example.com").await;
    let tries = (0..5).map(|_| {
        let (app, other) = (&app, other.clone());
        async move {
            app.post(&format!("/api/user/automations/{id}"))
                .bearer_auth(other)
                .status()
                .await
        }
    });
    let statuses = join_all(tries).await;
    assert_eq!(
        statuses
            .iter()
            .filter(|s| **s == StatusCode::CREATED)
            .count(),
        1
    );
    assert_eq!(
        statuses
            .iter()
            .filter(|s| **s == StatusCode::CONFLICT)
            .count(),
        4
    );
    assert_eq!(ledger_count(&ctx, "demo_grant").await, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_listed_active_automations_can_be_added() {
    let (ctx, app) = market().await;
    let inactive = create_automation(&app, json!({ "status": "inactive" })).await;
    let unlisted = create_automation(&app, json!({ "is_listed": false })).await;
    let (_, access) = customer(&ctx, "picky@example.com").await;
    for id in [
        inactive["id"].as_i64().unwrap(),
        unlisted["id"].as_i64().unwrap(),
        999_999,
    ] {
        let res = app
            .post(&format!("/api/user/automations/{id}"))
            .bearer_auth(&access)
            .call()
            .await;
        assert_eq!(res.status(), StatusCode::NOT_FOUND, "automation {id}");
        assert_eq!(json_of(res).await["code"], "not_found");
    }
    app.post("/api/user/automations/1")
        .expect_status(StatusCode::UNAUTHORIZED)
        .await;
    assert_db_count(&ctx, "SELECT count(*) AS n FROM user_automations", 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn customers_see_their_own_automations_and_never_anothers() {
    let (ctx, app) = market().await;
    let a = create_automation(&app, json!({ "name": "Mine" })).await;
    let b = create_automation(&app, json!({ "name": "Also Mine", "status": "active" })).await;
    let (a_id, b_id) = (a["id"].as_i64().unwrap(), b["id"].as_i64().unwrap());
    let (_, alice) = customer(&ctx, "alice@example.com").await;
    let (_, bob) = customer(&ctx, "bob@example.com").await;
    add(&app, &alice, a_id).await;
    add(&app, &alice, b_id).await;
    add(&app, &bob, a_id).await;

    let items = listed(&app, "/api/user/automations", &alice).await;
    assert_eq!(items.len(), 2);
    for field in [
        "id",
        "automation_id",
        "name",
        "description",
        "tokens_remaining",
        "demo_tokens",
        "is_demo_active",
        "demo_expired",
        "integration_status",
        "status",
        "created_at",
    ] {
        assert!(items[0].get(field).is_some(), "missing {field}");
    }
    assert_eq!(items[0]["name"], "Also Mine", "newest first");
    assert_eq!(
        listed(&app, "/api/user/automations/active", &alice)
            .await
            .len(),
        2
    );

    let view = user_view(&app, &alice, a_id).await;
    let ua = &view["user_automation"];
    for field in [
        "id",
        "automation",
        "tokens_remaining",
        "demo_tokens",
        "is_demo_active",
        "demo_expired",
        "status",
        "integration_status",
        "provisioned_at",
        "telegram_bot_token",
        "created_at",
    ] {
        assert!(ua.get(field).is_some(), "missing {field}");
    }
    // Bob has not added B: 404, not a hint that Alice has.
    for path in [
        format!("/api/user/automations/{b_id}"),
        format!("/api/user/automations/{b_id}/usage"),
    ] {
        assert_eq!(
            app.get(&path).bearer_auth(&bob).status().await,
            StatusCode::NOT_FOUND,
            "{path}"
        );
    }
    assert_eq!(
        connect_bot(&app, &bob, b_id, BOT_TOKEN).await,
        StatusCode::NOT_FOUND
    );
    assert_eq!(listed(&app, "/api/user/automations", &bob).await.len(), 1);
    app.get("/api/user/automations")
        .expect_status(StatusCode::UNAUTHORIZED)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bot_tokens_are_checked_unique_and_never_shown_in_full() {
    let (ctx, app) = market().await;
    let a = create_automation(&app, json!({})).await;
    let id = a["id"].as_i64().unwrap();
    let (_, alice) = customer(&ctx, "alice@example.com").await;
    let (_, bob) = customer(&ctx, "bob@example.com").await;
    let alice_ua = add(&app, &alice, id).await;
    add(&app, &bob, id).await;
    let put = |access: String, body: Value| {
        let app = &app;
        async move {
            app.put(&format!("/api/user/automations/{id}"))
                .bearer_auth(access)
                .json(&body)
                .call()
                .await
        }
    };

    for bad in [
        "not a token",
        "123:abc",
        "123456789:short",
        "abc456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsawQ",
    ] {
        let res = put(alice.clone(), json!({ "telegram_bot_token": bad })).await;
        assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
        assert_eq!(
            json_of(res).await["errors"][0]["field"],
            "telegram_bot_token"
        );
    }
    let res = put(
        alice.clone(),
        json!({ "telegram_bot_token": format!(" {BOT_TOKEN} ") }),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    let text = res.text().await.unwrap();
    assert!(!text.contains(BOT_TOKEN), "{text}");
    let body: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        body["user_automation"]["telegram_bot_token"],
        "123456789:****sawQ"
    );
    for path in [
        format!("/api/user/automations/{id}"),
        "/api/user/automations".to_owned(),
    ] {
        let text = app
            .get(&path)
            .bearer_auth(&alice)
            .call()
            .await
            .text()
            .await
            .unwrap();
        assert!(!text.contains("AAHdqTcv"), "{path}: {text}");
    }
    // Stored sealed, never in plaintext (see trust.rs for the details).
    let stored: (Option<String>, Option<Vec<u8>>) = {
        use diesel::prelude::*;
        use diesel_async::RunQueryDsl;
        use zimmer_db::schema::user_automations as t;
        let mut conn = ctx.db.connect().await;
        t::table
            .find(alice_ua)
            .select((t::telegram_bot_token, t::telegram_bot_token_sealed))
            .first(&mut conn)
            .await
            .unwrap()
    };
    assert_eq!(stored.0, None);
    assert!(
        stored
            .1
            .is_some_and(|s| !s.windows(8).any(|w| w == b"AAHdqTcv"))
    );

    // The same bot cannot be connected twice on the platform.
    let res = put(bob.clone(), json!({ "telegram_bot_token": BOT_TOKEN })).await;
    assert_eq!(res.status(), StatusCode::CONFLICT);
    assert_eq!(json_of(res).await["code"], "bot_token_in_use");
    // No body, or no field: nothing changes.
    let res = app
        .put(&format!("/api/user/automations/{id}"))
        .bearer_auth(&alice)
        .call_expecting(StatusCode::OK)
        .await;
    assert_eq!(
        json_of(res).await["user_automation"]["telegram_bot_token"],
        "123456789:****sawQ"
    );
    // null disconnects it, and then Bob may use it.
    let res = put(alice.clone(), json!({ "telegram_bot_token": null })).await;
    assert!(json_of(res).await["user_automation"]["telegram_bot_token"].is_null());
    assert_eq!(
        put(bob.clone(), json!({ "telegram_bot_token": BOT_TOKEN }))
            .await
            .status(),
        StatusCode::OK
    );
    assert_eq!(
        app.put(&format!("/api/user/automations/{id}"))
            .bearer_auth(&alice)
            .header("Content-Type", "application/json")
            .body("{oops")
            .status()
            .await,
        StatusCode::BAD_REQUEST
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_per_day_per_month_and_per_automation() {
    let (ctx, app) = market().await;
    let a = create_automation(&app, json!({ "name": "Alpha", "demo_tokens": 10 })).await;
    let b = create_automation(&app, json!({ "name": "Beta", "demo_tokens": 10 })).await;
    let c = create_automation(&app, json!({ "name": "Unused", "demo_tokens": 10 })).await;
    let (a_id, b_id) = (a["id"].as_i64().unwrap(), b["id"].as_i64().unwrap());
    let (ta, tb) = (issue_token(&app, a_id).await, issue_token(&app, b_id).await);
    let (_, access) = customer(&ctx, "charts@example.com").await;
    let ua_a = add(&app, &access, a_id).await;
    let ua_b = add(&app, &access, b_id).await;
    add(&app, &access, c["id"].as_i64().unwrap()).await;
    for (token, ua, units) in [(&ta, ua_a, 2), (&ta, ua_a, 3), (&tb, ua_b, 1)] {
        let body = json_of(consume(&app, token, &usage(ua, units)).await).await;
        assert_eq!(body["accepted"], true);
    }
    // An older usage (three days ago), as if recorded then.
    {
        use diesel_async::RunQueryDsl;
        let mut conn = ctx.db.connect().await;
        diesel::sql_query(format!(
            "INSERT INTO token_ledger (user_automation_id, kind, delta, demo_delta, balance_after, demo_balance_after, source_key, created_at)
             VALUES ({ua_b}, 'consumption', 0, -4, 0, 5, 'usage:old', now() - interval '3 days')"
        ))
        .execute(&mut conn)
        .await
        .unwrap();
    }
    let get = |path: &'static str| {
        let (app, access) = (&app, access.clone());
        async move {
            let res = app.get(path).bearer_auth(access).call().await;
            assert_eq!(res.status(), StatusCode::OK, "{path}");
            json_of(res).await
        }
    };

    let days = get("/api/user/usage?range=7d").await;
    let days = days.as_array().expect("bare array");
    assert_eq!(days.len(), 7);
    let today = chrono::Utc::now().date_naive();
    assert_eq!(
        days[6],
        json!({ "day": today.format("%Y-%m-%d").to_string(), "tokens": 6, "sessions": 3 })
    );
    let three_ago = (today - chrono::Days::new(3))
        .format("%Y-%m-%d")
        .to_string();
    assert_eq!(
        days[3],
        json!({ "day": three_ago, "tokens": 4, "sessions": 1 })
    );
    assert_eq!(days[0]["tokens"], 0);
    // One entry a day or a month of the range; 7 days by default.
    for (path, entries) in [
        ("/api/user/usage", 7),
        ("/api/user/usage?range=30d", 30),
        ("/api/user/usage?range=12m", 12),
    ] {
        assert_eq!(get(path).await.as_array().unwrap().len(), entries, "{path}");
    }

    let months = get("/api/user/usage?range=6m").await;
    let months = months.as_array().unwrap();
    assert_eq!(months.len(), 6);
    let this_month = today.format("%Y-%m").to_string();
    assert_eq!(months[5]["month"], this_month);
    let total: i64 = months.iter().map(|m| m["value"].as_i64().unwrap()).sum();
    assert_eq!(total, 10);

    let dist = get("/api/user/usage/distribution").await;
    assert_eq!(
        dist,
        json!([{ "name": "Alpha", "value": 5 }, { "name": "Beta", "value": 5 }])
    );
    let recent = get("/api/user/usage/distribution?range=7d").await;
    assert_eq!(recent.as_array().unwrap().len(), 2);

    let res = app
        .get("/api/user/usage?range=2y")
        .bearer_auth(&access)
        .call_expecting(StatusCode::UNPROCESSABLE_ENTITY)
        .await;
    assert_eq!(json_of(res).await["errors"][0]["field"], "range");

    // Usage history of one automation with a date window.
    let from = today.format("%Y-%m-%d").to_string();
    let res = app
        .get(&format!(
            "/api/user/automations/{b_id}/usage?from={from}&to={from}"
        ))
        .bearer_auth(&access)
        .call()
        .await;
    let page = json_of(res).await;
    assert_eq!(page["total"], 1, "the old one is outside the window");
    app.get(&format!(
        "/api/user/automations/{b_id}/usage?from=yesterday"
    ))
    .bearer_auth(&access)
    .expect_status(StatusCode::UNPROCESSABLE_ENTITY)
    .await;
    // Another user sees none of it.
    let (_, other) = customer(&ctx, "other@example.com").await;
    let res = app
        .get("/api/user/usage/distribution")
        .bearer_auth(&other)
        .call()
        .await;
    assert_eq!(json_of(res).await, json!([]));
}
