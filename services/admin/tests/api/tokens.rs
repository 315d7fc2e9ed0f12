//! Token adjustments go through the marketplace's ledger exactly once per idempotency key, and
//! the audit log records each once too, whatever is retried.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use common::{Call, With, World};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use zimmer_jwt::Role;
use zimmer_testkit::str_at;

const ADJUST: &str = "/api/admin/tokens/adjust";

/// An adjustment as `token` that must answer `expected`; the body.
async fn adjust_expecting(w: &World, token: &str, body: &Value, expected: StatusCode) -> Value {
    w.post(ADJUST, token, body, expected).await
}

async fn balance(w: &World, ua: i64) -> i64 {
    w.count(&format!(
        "SELECT tokens_remaining AS n FROM user_automations WHERE id = {ua}"
    ))
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_adjustment_sent_twice_with_one_key_changes_the_balance_once_and_logs_once() {
    let w = World::start(With::MARKETPLACE).await;
    let (customer, _) = w.user("c@example.com", Role::Customer).await;
    let [(tech_id, tech), (_, manager)] = w.staff([Role::TechnicalTeam, Role::Manager]).await;
    let (_, ua) = w.automation_for(customer, "Ledger bot", 10).await;
    let adjust = json!({
        "user_automation_id": ua,
        "delta": 40,
        "reason": "جبران قطعی سرویس",
        "idempotency_key": "adj-0001",
    });

    let first = adjust_expecting(&w, &tech, &adjust, StatusCode::CREATED).await;
    assert_eq!(first["tokens_remaining"], 50);
    // The retry (e.g. the dashboard timed out) and two more at once.
    let res = w.send(Method::POST, ADJUST, &tech, &adjust).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["idempotent-replayed"], "true");
    let again: serde_json::Value = res.json().await.unwrap();
    assert_eq!(again["ledger_id"], first["ledger_id"]);
    let (a, b) = tokio::join!(
        w.send(Method::POST, ADJUST, &tech, &adjust),
        w.send(Method::POST, ADJUST, &tech, &adjust),
    );
    assert!(a.status().is_success() && b.status().is_success());

    assert_eq!(balance(&w, ua).await, 50, "applied once");
    w.assert_count(
        &format!(
            "SELECT count(*) AS n FROM token_ledger WHERE user_automation_id = {ua} \
             AND kind = 'adjustment'"
        ),
        1,
    )
    .await;
    assert_eq!(
        w.count(
            "SELECT count(*) AS n FROM admin_audit_log WHERE action = 'tokens.adjust' \
             AND details ->> 'idempotency_key' = 'adj-0001'"
        )
        .await,
        1,
        "audited once"
    );

    // The same key for a different adjustment is a conflict, not a second change.
    let mut other = adjust.clone();
    other["delta"] = json!(5);
    let v = adjust_expecting(&w, &tech, &other, StatusCode::CONFLICT).await;
    assert_eq!(v["code"], "idempotency_conflict");
    // Below zero is refused by the ledger, with its reason.
    let payload = json!({ "user_automation_id": ua, "delta": -51, "reason": "typo", "idempotency_key": "adj-0002" });
    let v = adjust_expecting(&w, &tech, &payload, StatusCode::CONFLICT).await;
    assert_eq!(v["code"], "insufficient_tokens");
    // The key may come as the Idempotency-Key header.
    w.admin
        .post(ADJUST)
        .bearer_auth(&tech)
        .header("Idempotency-Key", "adj-0003")
        .json(&json!({ "user_automation_id": ua, "delta": -20, "reason": "refund reversal" }))
        .expect_status(StatusCode::CREATED)
        .await;
    assert_eq!(balance(&w, ua).await, 30);
    w.assert_count(
        "SELECT count(*) AS n FROM admin_audit_log WHERE action = 'tokens.adjust'",
        2,
    )
    .await;

    // Validation: a reason is required, zero is not a change, a key must be well formed;
    // unknown → 404. (Without a key the server makes a fresh one: dashboard_contract.rs.)
    for (bad, expected) in [
        (
            json!({ "user_automation_id": ua, "delta": 5, "reason": " ", "idempotency_key": "k" }),
            422,
        ),
        (
            json!({ "user_automation_id": ua, "delta": 0, "reason": "why", "idempotency_key": "k" }),
            422,
        ),
        (
            json!({ "user_automation_id": ua, "delta": 5, "reason": "why", "idempotency_key": "has space" }),
            422,
        ),
        (
            json!({ "user_automation_id": 999_999, "delta": 5, "reason": "why", "idempotency_key": "k9" }),
            404,
        ),
        (json!({ "user_automation_id": "x", "delta": 5 }), 422),
    ] {
        let res = w.send(Method::POST, ADJUST, &tech, &bad).await;
        assert_eq!(res.status().as_u16(), expected, "{bad}");
    }
    assert_eq!(balance(&w, ua).await, 30);

    // The history shows both adjustments, newest first, with who and why.
    let v = w.json_total("/api/admin/tokens/history", &manager, 2).await;
    assert_eq!(v["items"][0]["delta"], -20);
    assert_eq!(v["items"][0]["idempotency_key"], "adj-0003");
    assert_eq!(v["items"][1]["delta"], 40);
    assert_eq!(v["items"][1]["reason"], "جبران قطعی سرویس");
    assert_eq!(v["items"][1]["actor_id"], tech_id);
    assert_eq!(v["items"][1]["actor_email"], "tech@example.com");
    assert_eq!(v["items"][1]["user_id"], customer);
    let v = w
        .json_total(
            &format!("/api/admin/tokens/history?user_id={customer}&page_size=1"),
            &manager,
            2,
        )
        .await;
    assert_eq!(v["items"].as_array().unwrap().len(), 1);
    w.json_total("/api/admin/tokens/history?actor_id=424242", &manager, 0)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_marketplace_that_is_down_changes_nothing_and_says_so() {
    let w = World::start(With::NONE).await;
    let (customer, _) = w.user("c@example.com", Role::Customer).await;
    let (_, tech) = w.user("tech@example.com", Role::TechnicalTeam).await;
    let (_, ua) = w.automation_for(customer, "Ledger bot", 10).await;
    let payload =
        json!({ "user_automation_id": ua, "delta": 5, "reason": "x", "idempotency_key": "k1" });
    let v = adjust_expecting(&w, &tech, &payload, StatusCode::SERVICE_UNAVAILABLE).await;
    assert!(str_at(&v, "detail").contains("marketplace"));
    assert_eq!(balance(&w, ua).await, 10);
    w.assert_count("SELECT count(*) AS n FROM admin_audit_log", 0)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staff_cannot_adjust_the_balance_of_their_own_automation() {
    let w = World::start(With::MARKETPLACE).await;
    let [(tech_id, tech), (manager_id, manager)] =
        w.staff([Role::TechnicalTeam, Role::Manager]).await;
    let (_, tech_ua) = w.automation_for(tech_id, "Tech bot", 10).await;
    let (_, manager_ua) = w.automation_for(manager_id, "Boss bot", 10).await;

    // Whatever the role, one's own balance is off limits: 403 with a reason, nothing moves,
    // nothing is logged as done.
    for (token, ua, key) in [(&tech, tech_ua, "self-1"), (&manager, manager_ua, "self-2")] {
        let payload = json!({ "user_automation_id": ua, "delta": 1000, "reason": "mine", "idempotency_key": key });
        let v = adjust_expecting(&w, token, &payload, StatusCode::FORBIDDEN).await;
        assert_eq!(v["code"], "self_adjustment");
        assert!(str_at(&v, "detail").contains("your own automation"), "{v}");
        assert_eq!(balance(&w, ua).await, 10);
    }
    w.assert_count(
        "SELECT count(*) AS n FROM token_ledger WHERE kind = 'adjustment'",
        0,
    )
    .await;
    w.assert_count(
        "SELECT count(*) AS n FROM admin_audit_log WHERE action = 'tokens.adjust'",
        0,
    )
    .await;

    // Another staff member may (the four-eyes way round).
    let payload = json!({ "user_automation_id": tech_ua, "delta": 5, "reason": "outage", "idempotency_key": "other-1" });
    w.post(ADJUST, &manager, &payload, StatusCode::CREATED)
        .await;
    assert_eq!(balance(&w, tech_ua).await, 15);
}

/// Bot tokens are stored sealed (the plaintext column stays empty): the overview still
/// says whether a bot is connected, for sealed rows and for rows not yet re-sealed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_overview_sees_sealed_bot_tokens() {
    let w = World::start(With::NONE).await;
    let (customer, _) = w.user("c@example.com", Role::Customer).await;
    let (_, support) = w.user("support@example.com", Role::SupportStaff).await;
    let (_, sealed) = w.automation_for(customer, "Sealed bot", 0).await;
    let (_, legacy) = w.automation_for(customer, "Legacy bot", 0).await;
    let (_, none) = w.automation_for(customer, "No bot", 0).await;
    w.sql(&format!(
        "UPDATE user_automations SET telegram_bot_token_sealed = decode(repeat('01', 60), 'hex'), \
         telegram_bot_token_hash = decode(repeat('02', 32), 'hex') WHERE id = {sealed}"
    ))
    .await;
    w.sql(&format!(
        "UPDATE user_automations SET telegram_bot_token = '123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsawQ' \
         WHERE id = {legacy}"
    ))
    .await;
    let v = w
        .json(
            &format!("/api/admin/user-automations?user_id={customer}"),
            &support,
        )
        .await;
    let connected = |id: i64| {
        v["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["id"] == id)
            .unwrap()["bot_connected"]
            .clone()
    };
    assert_eq!(connected(sealed), true);
    assert_eq!(connected(legacy), true);
    assert_eq!(connected(none), false);
}
