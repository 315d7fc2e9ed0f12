//! Discount codes: validation reasons, the redemption reserved at init and confirmed or released
//! with the outcome, limits that concurrent purchases cannot overrun, a 100 % discount without
//! the gateway, and the admin's internal CRUD.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use common::*;
use reqwest::{Response, StatusCode};
use serde_json::{Value, json};
use zimmer_testkit::{TestApp, TestContext};

/// `POST /api/discounts/validate` of `body` as `c`, which must answer `expected`.
async fn validate_expecting(
    app: &TestApp,
    c: &Customer,
    body: &Value,
    expected: StatusCode,
) -> Response {
    let res = c
        .post(app, "/api/discounts/validate")
        .json(body)
        .call()
        .await;
    assert_eq!(res.status(), expected, "validate {body}");
    res
}

async fn validate(app: &TestApp, c: &Customer, body: Value) -> Value {
    let res = validate_expecting(app, c, &body, StatusCode::OK).await;
    res.json().await.unwrap()
}

/// [`validate`] of `code` for `tokens` of `automation`.
async fn validate_for(
    app: &TestApp,
    c: &Customer,
    code: &str,
    automation: i64,
    tokens: i64,
) -> Value {
    validate(
        app,
        c,
        json!({ "code": code, "automation_id": automation, "tokens": tokens }),
    )
    .await
}

/// [`init`] of a purchase of `tokens` of `automation` with the discount `code`.
async fn init_with(
    app: &TestApp,
    c: &Customer,
    automation: i64,
    tokens: i64,
    code: &str,
) -> Response {
    init(
        app,
        c,
        json!({ "automation_id": automation, "tokens": tokens, "discount_code": code }),
    )
    .await
}

/// How many automations the code `id`'s set holds.
async fn set_size(ctx: &TestContext, id: i64) -> i64 {
    let sql =
        format!("SELECT count(*) AS n FROM discount_code_automations WHERE discount_id = {id}");
    count(ctx, &sql).await
}

/// How many redemptions of the payment `id` have `status`.
async fn redemptions(ctx: &TestContext, id: i64, status: &str) -> i64 {
    let sql = format!(
        "SELECT count(*) AS n FROM discount_redemptions WHERE payment_id = {id} AND status = '{status}'"
    );
    count(ctx, &sql).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validate_answers_the_amounts_or_the_reason() {
    let h = harness(&[]).await;
    let a = automation(&h.ctx, "A", 15_000).await;
    let b = automation(&h.ctx, "B", 15_000).await;
    let c = customer(&h.ctx, "v@example.com", a).await;
    create_code(&h.app, json!({ "code": " NowRuz ", "percent_off": 20 })).await;
    create_code(
        &h.app,
        json!({ "code": "only-b", "percent_off": 10, "automation_id": b }),
    )
    .await;
    create_code(
        &h.app,
        json!({ "code": "off", "percent_off": 10, "active": false }),
    )
    .await;
    create_code(
        &h.app,
        json!({ "code": "later", "percent_off": 10, "starts_at": "2099-01-01T00:00:00Z" }),
    )
    .await;
    create_code(
        &h.app,
        json!({ "code": "gone", "percent_off": 10, "ends_at": "2020-01-01T00:00:00Z" }),
    )
    .await;

    // Tokens: priced on the server. Codes are case-insensitive.
    let ok = validate_for(&h.app, &c, "NOWRUZ", a, 3).await;
    assert_eq!(ok["valid"], true);
    assert_eq!(ok["code"], "nowruz");
    assert_eq!(ok["percent_off"], 20);
    assert_eq!(ok["amount_before"], 45_000);
    assert_eq!(ok["amount_discount"], 9_000);
    assert_eq!(ok["amount_after"], 36_000);
    assert!(ok["reason"].is_null());
    // The panel's amount variant (a preview only), with ids as strings.
    let ok = validate(
        &h.app,
        &c,
        json!({ "code": "nowruz", "automation_id": a.to_string(), "amount": "50000" }),
    )
    .await;
    assert_eq!(ok["amount_after"], 40_000);

    for (code, reason) in [
        ("nothing", "not_found"),
        ("only-b", "not_applicable"),
        ("off", "inactive_or_window"),
        ("later", "inactive_or_window"),
        ("gone", "inactive_or_window"),
    ] {
        let r = validate_for(&h.app, &c, code, a, 3).await;
        assert_eq!(r["valid"], false, "{code}");
        assert_eq!(r["reason"], reason, "{code}");
        assert_eq!(r["amount_after"], 45_000, "{code}");
    }
    // Bad input is a 422, never a 500.
    for body in [
        json!({ "automation_id": a, "tokens": 3 }),
        json!({ "code": "nowruz", "automation_id": a }),
        json!({ "code": "nowruz", "automation_id": a, "tokens": "x" }),
    ] {
        validate_expecting(&h.app, &c, &body, StatusCode::UNPROCESSABLE_ENTITY).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redemption_is_reserved_at_init_then_confirmed_or_released() {
    let (h, a, c) = shop("redeem@example.com").await;
    let code = create_code(
        &h.app,
        json!({ "code": "once", "percent_off": 20, "per_user_limit": 1 }),
    )
    .await;

    // Init with the code: reserved, amount discounted, snapshot on the payment.
    let res = init_with(&h.app, &c, a, 3, "ONCE").await;
    assert_eq!(res.status(), StatusCode::OK);
    let first: Value = res.json().await.unwrap();
    assert_eq!(first["amount"], 36_000);
    assert_eq!(first["amount_before"], 45_000);
    assert_eq!(first["discount_percent"], 20);
    assert_eq!(
        h.fake.session(&authority_of(&first)).unwrap().amount,
        36_000
    );
    assert_eq!(redemptions(&h.ctx, id_of(&first), "reserved").await, 1);

    // While reserved it counts: the same user cannot start a second one.
    let res = init_with(&h.app, &c, a, 3, "once").await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let err: Value = res.json().await.unwrap();
    assert_eq!(err["code"], "discount_per_user_limit");

    // Canceled: released, and the code can be used again.
    let (authority, _) = start_pay(&payment_url_of(&first), Some("NOK")).await;
    callback_json(&h.app, &authority, "NOK").await;
    assert_eq!(redemptions(&h.ctx, id_of(&first), "released").await, 1);
    let second = init_with(&h.app, &c, a, 3, "once").await;
    assert_eq!(second.status(), StatusCode::OK);
    let second: Value = second.json().await.unwrap();

    // Paid: confirmed, and the event carries the discounted amount.
    let (authority, st) = start_pay(&payment_url_of(&second), None).await;
    callback_json(&h.app, &authority, &st).await;
    assert_eq!(redemptions(&h.ctx, id_of(&second), "confirmed").await, 1);
    let events = outbox(&h.ctx, "payment.verified").await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["data"]["amount"], 36_000);
    assert_eq!(events[0]["data"]["tokens"], 3);

    let v = validate_for(&h.app, &c, "once", a, 1).await;
    assert_eq!(v["reason"], "per_user_limit");
    let stats = code_view(&h.app, &code["id"]).await;
    assert_eq!(stats["redemptions"]["confirmed"], 1);
    assert_eq!(stats["redemptions"]["released"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_purchases_never_redeem_past_the_limit() {
    let h = harness(&[]).await;
    let a = automation(&h.ctx, "A", 15_000).await;
    create_code(
        &h.app,
        json!({ "code": "few", "percent_off": 50, "max_redemptions": 3 }),
    )
    .await;
    let mut buyers = Vec::new();
    for i in 0..8 {
        buyers.push(customer(&h.ctx, &format!("rush{i}@example.com"), a).await);
    }
    let calls = buyers.iter().map(|c| {
        init(
            &h.app,
            c,
            json!({ "automation_id": a, "tokens": 2, "discount_code": "few" }),
        )
    });
    let answers = futures_util::future::join_all(calls).await;
    let mut ok = 0;
    for res in answers {
        match res.status() {
            StatusCode::OK => ok += 1,
            StatusCode::UNPROCESSABLE_ENTITY => {
                let err: Value = res.json().await.unwrap();
                assert_eq!(err["code"], "discount_max_redeemed");
            }
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!(ok, 3, "exactly the limit");
    assert_count(
        &h.ctx,
        "SELECT count(*) AS n FROM discount_redemptions WHERE status IN ('reserved', 'confirmed')",
        3,
    )
    .await;
    assert_count(
        &h.ctx,
        "SELECT count(*) AS n FROM payments WHERE discount_code = 'few'",
        3,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_discount_succeeds_at_once_without_the_gateway() {
    let (h, a, c) = shop("free@example.com").await;
    create_code(
        &h.app,
        json!({ "code": "gift", "percent_off": 100, "automation_id": a }),
    )
    .await;
    let body = init_expecting(
        &h.app,
        &c,
        json!({ "automation_id": a, "tokens": 5, "discount_code": "gift", "return_path": "/done" }),
        StatusCode::OK,
    )
    .await;
    assert_eq!(body["status"], "succeeded");
    assert_eq!(body["amount"], 0);
    assert!(body["payment_url"].is_null());
    assert_eq!(
        body["redirect_url"],
        format!("{FRONTEND}/done?payment_id={}&Status=OK", id_of(&body))
    );
    assert!(h.fake.sessions().is_empty(), "no gateway call");
    let events = outbox(&h.ctx, "payment.verified").await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["data"]["tokens"], 5);
    assert_eq!(events[0]["data"]["amount"], 0);
    assert_eq!(redemptions_in(&h.ctx, "confirmed").await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_manages_codes_through_the_internal_api() {
    let (h, a, c) = shop("crud@example.com").await;
    let call = |method: reqwest::Method, path: &str| {
        internal(h.app.client.request(method, h.app.url(path)))
    };

    // Without the service credential: 401.
    h.app
        .get("/internal/discounts")
        .expect_status(StatusCode::UNAUTHORIZED)
        .await;
    h.app
        .get("/internal/discounts")
        .header("X-Internal-Token", "wrong")
        .expect_status(StatusCode::UNAUTHORIZED)
        .await;

    let made = create_code(
        &h.app,
        json!({ "code": "Yalda", "percent_off": 15, "max_redemptions": 10, "automation_id": a }),
    )
    .await;
    assert_eq!(made["code"], "yalda");
    assert_eq!(made["redemptions"]["reserved"], 0);
    let id = made["id"].as_i64().unwrap();

    // Invalid ones.
    for body in [
        json!({ "code": "YALDA", "percent_off": 15 }),
        json!({ "code": "x", "percent_off": 0 }),
        json!({ "code": "x", "percent_off": 101 }),
        json!({ "code": "a b", "percent_off": 10 }),
        json!({ "code": "x", "percent_off": 10, "max_redemptions": 0 }),
        json!({ "code": "x", "percent_off": 10, "starts_at": "2030-01-02T00:00:00Z", "ends_at": "2030-01-01T00:00:00Z" }),
        json!({ "code": "x", "percent_off": 10, "automation_id": 999999 }),
        json!({ "percent_off": 10 }),
    ] {
        let res = call(reqwest::Method::POST, "/internal/discounts")
            .json(&body)
            .call()
            .await;
        let expected = if body["code"] == "YALDA" {
            StatusCode::CONFLICT
        } else {
            StatusCode::UNPROCESSABLE_ENTITY
        };
        assert_eq!(res.status(), expected, "{body}");
    }

    // Partial update: null clears, absent keeps.
    let res = call(reqwest::Method::PUT, &format!("/internal/discounts/{id}"))
        .json(&json!({ "percent_off": 25, "automation_id": null }))
        .call_expecting(StatusCode::OK)
        .await;
    let updated: Value = res.json().await.unwrap();
    assert_eq!(updated["percent_off"], 25);
    assert_eq!(updated["automation_ids"], json!([]));
    assert_eq!(updated["max_redemptions"], 10);
    call(reqwest::Method::PUT, "/internal/discounts/999999")
        .json(&json!({ "active": false }))
        .expect_status(StatusCode::NOT_FOUND)
        .await;

    // List and search.
    let list: Value = call(
        reqwest::Method::GET,
        "/internal/discounts?search=yal&page_size=5",
    )
    .json_body()
    .await;
    assert_eq!(list["total"], 1);
    assert_eq!(list["items"][0]["id"], id);

    // Used by a purchase: delete deactivates; the redemption is listed.
    let bought = init_with(&h.app, &c, a, 3, "yalda").await;
    assert_eq!(bought.status(), StatusCode::OK);
    let reds: Value = call(
        reqwest::Method::GET,
        &format!("/internal/discounts/{id}/redemptions"),
    )
    .json_body()
    .await;
    assert_eq!(reds["total"], 1);
    assert_eq!(reds["items"][0]["status"], "reserved");
    assert_eq!(reds["items"][0]["amount_after"], 33_750);
    let del: Value = call(
        reqwest::Method::DELETE,
        &format!("/internal/discounts/{id}"),
    )
    .json_body()
    .await;
    assert_eq!(del["deactivated"], true);
    let v = validate_for(&h.app, &c, "yalda", a, 1).await;
    assert_eq!(v["reason"], "inactive_or_window");

    // An unused code is deleted.
    let unused = create_code(&h.app, json!({ "code": "spare", "percent_off": 5 })).await;
    let del: Value = call(
        reqwest::Method::DELETE,
        &format!("/internal/discounts/{}", unused["id"]),
    )
    .json_body()
    .await;
    assert_eq!(del["deleted"], true);
    call(
        reqwest::Method::GET,
        &format!("/internal/discounts/{}", unused["id"]),
    )
    .expect_status(StatusCode::NOT_FOUND)
    .await;

    // The admin's payment list.
    let payments: Value = call(
        reqwest::Method::GET,
        &format!("/internal/payments?user_id={}&status=pending", c.user_id),
    )
    .json_body()
    .await;
    assert_eq!(payments["total"], 1);
    assert_eq!(payments["items"][0]["discount_code"], "yalda");
    assert_eq!(payments["items"][0]["user_id"], c.user_id);
    call(reqwest::Method::GET, "/internal/payments?from=yesterday")
        .expect_status(StatusCode::UNPROCESSABLE_ENTITY)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_code_for_several_automations_applies_to_those_only() {
    let h = harness(&[]).await;
    let a = automation(&h.ctx, "A", 15_000).await;
    let b = automation(&h.ctx, "B", 15_000).await;
    let other = automation(&h.ctx, "C", 15_000).await;
    let ca = customer(&h.ctx, "set-a@example.com", a).await;
    let cb = customer(&h.ctx, "set-b@example.com", b).await;
    let cc = customer(&h.ctx, "set-c@example.com", other).await;
    let made = create_code(
        &h.app,
        json!({ "code": "pair", "percent_off": 10, "automation_ids": [b, a, a],
                "description": "  for A and B  " }),
    )
    .await;
    let mut pair = vec![a, b];
    pair.sort_unstable();
    assert_eq!(made["automation_ids"], json!(pair));
    assert_eq!(made["description"], "for A and B");
    let id = made["id"].as_i64().unwrap();
    assert_eq!(set_size(&h.ctx, id).await, 2);

    // Validation applies the set.
    for (c, auto, valid) in [(&ca, a, true), (&cb, b, true), (&cc, other, false)] {
        let r = validate_for(&h.app, c, "pair", auto, 2).await;
        assert_eq!(r["valid"], valid, "automation {auto}: {r}");
        if !valid {
            assert_eq!(r["reason"], "not_applicable");
        }
    }
    // So does a purchase: refused for the third automation, discounted for the second.
    let res = init_with(&h.app, &cc, other, 2, "pair").await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["code"], "discount_not_applicable", "{body}");
    let res = init_with(&h.app, &cb, b, 2, "pair").await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_count(
        &h.ctx,
        &format!(
            "SELECT count(*) AS n FROM payments WHERE user_id = {} AND amount = 27000 \
             AND discount_code = 'pair'",
            cb.user_id
        ),
        1,
    )
    .await;

    // The set changes as a whole; `[]` (or null) makes it a code for every automation.
    let put = |body: Value| {
        internal(h.app.put(&format!("/internal/discounts/{id}")))
            .json(&body)
            .send()
    };
    let res = put(json!({ "automation_ids": [other] })).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let v: Value = res.json().await.unwrap();
    assert_eq!(v["automation_ids"], json!([other]));
    assert_eq!(v["description"], "for A and B", "absent keeps");
    let r = validate_for(&h.app, &ca, "pair", a, 2).await;
    assert_eq!(r["valid"], false);
    let res = put(json!({ "automation_ids": [], "description": null }))
        .await
        .unwrap();
    let v: Value = res.json().await.unwrap();
    assert_eq!(v["automation_ids"], json!([]));
    assert!(v["description"].is_null(), "null clears");
    let r = validate_for(&h.app, &ca, "pair", a, 2).await;
    assert_eq!(r["valid"], true);
    // An unknown automation in the set: 422, nothing changed.
    let res = put(json!({ "automation_ids": [a, 999_999] }))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(set_size(&h.ctx, id).await, 0);

    // Deleting the only automation of a code takes the code with it (it never turns into a
    // code for every automation); a code that still has another automation keeps it.
    let lone = automation(&h.ctx, "Lone", 15_000).await;
    let only = create_code(
        &h.app,
        json!({ "code": "only-lone", "percent_off": 10, "automation_ids": [lone] }),
    )
    .await;
    let both = create_code(
        &h.app,
        json!({ "code": "lone-and-a", "percent_off": 10, "automation_ids": [lone, a] }),
    )
    .await;
    let mut conn = h.ctx.db.connect().await;
    use diesel_async::RunQueryDsl;
    diesel::sql_query(format!("DELETE FROM automations WHERE id = {lone}"))
        .execute(&mut conn)
        .await
        .unwrap();
    assert_count(
        &h.ctx,
        &format!(
            "SELECT count(*) AS n FROM discount_codes WHERE id = {}",
            only["id"]
        ),
        0,
    )
    .await;
    let left = code_view(&h.app, &both["id"]).await;
    assert_eq!(left["automation_ids"], json!([a]));
}

/// The migration moves each code's single automation into the set, and its down migration
/// restores the column (run here on this test's own database).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_migration_moves_old_codes_into_the_set() {
    use diesel_async::{RunQueryDsl, SimpleAsyncConnection};
    let ctx = zimmer_testkit::TestContext::new().await;
    let a = automation(&ctx, "A", 15_000).await;
    let mut conn = ctx.db.connect().await;
    let up = include_str!("../../../../migrations/2026-12-03-000025_discount_automations/up.sql");
    let down =
        include_str!("../../../../migrations/2026-12-03-000025_discount_automations/down.sql");
    diesel::sql_query("INSERT INTO discount_codes (code, percent_off) VALUES ('many', 5)")
        .execute(&mut conn)
        .await
        .unwrap();
    diesel::sql_query(format!(
        "INSERT INTO discount_code_automations (discount_id, automation_id) \
         SELECT id, {a} FROM discount_codes WHERE code = 'many'"
    ))
    .execute(&mut conn)
    .await
    .unwrap();
    conn.batch_execute(down).await.unwrap();
    assert_eq!(
        count(
            &ctx,
            &format!("SELECT count(*) AS n FROM discount_codes WHERE code = 'many' AND automation_id = {a}")
        )
        .await,
        1,
        "down keeps the automation"
    );
    diesel::sql_query(format!(
        "INSERT INTO discount_codes (code, percent_off, automation_id) VALUES ('old-one', 5, {a}), \
         ('old-all', 5, NULL)"
    ))
    .execute(&mut conn)
    .await
    .unwrap();
    conn.batch_execute(up).await.unwrap();
    assert_count(
        &ctx,
        &format!(
            "SELECT count(*) AS n FROM discount_code_automations l JOIN discount_codes d \
             ON d.id = l.discount_id WHERE l.automation_id = {a} AND d.code IN ('old-one', 'many')"
        ),
        2,
    )
    .await;
    assert_eq!(
        count(
            &ctx,
            "SELECT count(*) AS n FROM discount_code_automations l JOIN discount_codes d \
             ON d.id = l.discount_id WHERE d.code = 'old-all'"
        )
        .await,
        0,
        "a code for every automation keeps an empty set"
    );
}
