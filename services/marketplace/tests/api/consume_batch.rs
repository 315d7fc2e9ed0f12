//! Consumption in batches (`ops::consume::consume_batch`, `workers::consume_batcher`): a batch
//! decides its calls in order against the locked balances, a key repeated inside one batch or
//! across batches is charged once, one call's bad token or foreign user automation fails only
//! that call, and many concurrent calls through several writers with small batches keep the
//! books exact.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use common::*;
use futures_util::future::join_all;
use reqwest::StatusCode;
use serde_json::{Value, json};
use zimmer_marketplace::{
    domain::tokens::token_hash,
    ops::consume::{Call, CallResult, Checked, Outcome, consume_batch},
};

/// A funded user automation of a new automation (no demo tokens): `(ua, service token)`.
async fn funded(
    ctx: &zimmer_testkit::TestContext,
    app: &zimmer_testkit::TestApp,
    email: &str,
    paid: i64,
) -> (i64, String) {
    let a = create_automation(app, json!({ "name": email, "demo_tokens": 0 })).await;
    let token = issue_token(app, a["id"].as_i64().unwrap()).await;
    let (_, access) = customer(ctx, email).await;
    let ua = add(app, &access, a["id"].as_i64().unwrap()).await;
    let manager = staff(ctx, &format!("manager-{email}")).await;
    assert_eq!(
        adjust(app, ua, paid, &format!("fund-{email}"), manager)
            .await
            .status(),
        StatusCode::CREATED
    );
    (ua, token)
}

fn call(token: &str, ua: i64, units: i64, key: &str) -> Call {
    Call {
        token_hash: token_hash(token),
        checked: Checked {
            ua_id: ua,
            units,
            usage_type: None,
            key: Some(key.to_owned()),
            meta: None,
        },
        key: key.to_owned(),
    }
}

/// `(accepted, replayed, remaining paid)` of an answered call; panics on an error.
fn answered(r: &CallResult) -> (bool, bool, i64) {
    match r {
        Ok(Outcome::Answered(a)) => (a.accepted, false, a.remaining_paid_tokens),
        Ok(Outcome::Replayed(a)) => (a.accepted, true, a.remaining_paid_tokens),
        Err(e) => panic!("unexpected error {e}"),
    }
}

fn error_code(r: &CallResult) -> String {
    match r {
        Err(e) => e.code().to_owned(),
        Ok(_) => panic!("expected an error"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_batch_decides_its_calls_in_order_and_charges_a_repeated_key_once() {
    let (ctx, app) = market().await;
    let (ua, token) = funded(&ctx, &app, "a@example.com", 5).await;
    let (other_ua, other_token) = funded(&ctx, &app, "b@example.com", 5).await;

    let batch = [
        call(&token, ua, 2, "k1"),             // 5 → 3
        call(&token, ua, 2, "k1"),             // the same call again: replayed, not charged
        call(&token, ua, 2, "k2"),             // 3 → 1
        call(&token, ua, 2, "k3"),             // refused: 1 left
        call(&token, ua, 1, "k3"),             // a refusal stores nothing: 1 → 0
        call(&token, ua, 3, "k1"),             // k1 for another amount: 409
        call("zst_wrong", ua, 1, "k4"),        // bad token: 401, the others unaffected
        call(&other_token, ua, 1, "k5"),       // another vendor's user automation: 401
        call(&other_token, other_ua, 4, "k1"), // another vendor's k1 is another key: 5 → 1
        call(&token, 999_999, 1, "k6"),        // no such user automation: 401
    ];
    let mut conn = ctx.db.connect().await;
    let results = consume_batch(&mut conn, &batch, 5)
        .await
        .expect("the batch commits");
    assert_eq!(results.len(), batch.len());
    assert_eq!(answered(&results[0]), (true, false, 3));
    assert_eq!(answered(&results[1]), (true, true, 3));
    assert_eq!(answered(&results[2]), (true, false, 1));
    assert_eq!(answered(&results[3]), (false, false, 1));
    assert_eq!(answered(&results[4]), (true, false, 0));
    assert_eq!(error_code(&results[5]), "idempotency_conflict");
    assert_eq!(error_code(&results[6]), "invalid_service_token");
    assert_eq!(error_code(&results[7]), "token_not_for_user_automation");
    assert_eq!(answered(&results[8]), (true, false, 1));
    assert_eq!(error_code(&results[9]), "token_not_for_user_automation");

    assert_eq!(balances(&ctx, ua).await.0, 0);
    assert_eq!(balances(&ctx, other_ua).await.0, 1);
    // One entry per accepted call, each with the balance after it, in order.
    let afters = db_count(
        &ctx,
        &format!(
            "SELECT (string_agg(balance_after::text, '' ORDER BY id))::bigint AS n \
             FROM token_ledger WHERE kind = 'consumption' AND user_automation_id = {ua}"
        ),
    )
    .await;
    assert_eq!(afters, 310, "balances after: 3, 1, 0");
    for u in [ua, other_ua] {
        assert_eq!(
            db_count(
                &ctx,
                &format!(
                    "SELECT count(*) AS n FROM user_automations ua WHERE id = {u} AND \
                     tokens_remaining = (SELECT SUM(delta) FROM token_ledger WHERE user_automation_id = {u})"
                )
            )
            .await,
            1,
            "the balance of {u} is its ledger sum"
        );
    }
    // ua reached 0 (depleted, once); other_ua crossed the threshold of 5 downwards... from 5,
    // which is not above it: no low alert.
    assert_eq!(outbox_count(&ctx, "tokens.depleted").await, 1);
    assert_eq!(outbox_count(&ctx, "tokens.low").await, 0);

    // A later batch finds the committed keys: replayed with the stored answer, or 409.
    let again = consume_batch(
        &mut conn,
        &[call(&token, ua, 2, "k1"), call(&token, ua, 1, "k2")],
        5,
    )
    .await
    .expect("the batch commits");
    assert_eq!(answered(&again[0]), (true, true, 3));
    assert_eq!(error_code(&again[1]), "idempotency_conflict");
    assert_eq!(ledger_count(&ctx, "consumption").await, 4);

    // A committed key on a balance that could pay again (the batch's first attempt does not
    // look keys up and is rolled back): replayed, not charged; the new call beside it applies.
    let (third_ua, third_token) = funded(&ctx, &app, "e@example.com", 10).await;
    let first = consume_batch(&mut conn, &[call(&third_token, third_ua, 2, "r1")], 5)
        .await
        .expect("the batch commits");
    assert_eq!(answered(&first[0]), (true, false, 8));
    let repeat = consume_batch(
        &mut conn,
        &[
            call(&third_token, third_ua, 2, "r1"),
            call(&third_token, third_ua, 3, "r2"),
        ],
        5,
    )
    .await
    .expect("the batch commits");
    assert_eq!(answered(&repeat[0]), (true, true, 8));
    assert_eq!(answered(&repeat[1]), (true, false, 5));
    assert_eq!(balances(&ctx, third_ua).await.0, 5);
    assert_eq!(ledger_count(&ctx, "consumption").await, 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_calls_through_several_writers_and_small_batches_stay_exact() {
    // Batches of at most 3 calls, 3 writers: calls on one balance land in different batches
    // that wait for each other's row locks.
    let (ctx, app) = market_with(&[("CONSUME_BATCH_MAX", "3"), ("CONSUME_WRITERS", "3")]).await;
    let (ua1, token1) = funded(&ctx, &app, "c@example.com", 40).await;
    let (ua2, token2) = funded(&ctx, &app, "d@example.com", 1000).await;

    // 180 calls of 1 unit on ua1 (40 tokens), 60 of its 120 keys sent twice; 60 on ua2.
    let calls = (0..240).map(|i| {
        let (app, token1, token2) = (&app, token1.clone(), token2.clone());
        async move {
            let (token, ua, key) = if i < 180 {
                (token1, ua1, format!("one-{}", i % 120))
            } else {
                (token2, ua2, format!("two-{i}"))
            };
            let res = consume(app, &token, &usage_keyed(ua, 1, &key)).await;
            assert_eq!(res.status(), StatusCode::OK);
            let replayed = res.headers().contains_key("idempotent-replayed");
            let body: Value = res.json().await.unwrap();
            (ua, key, replayed, body["accepted"] == true)
        }
    });
    let answers = join_all(calls).await;

    let accepted_keys_1: std::collections::HashSet<&str> = answers
        .iter()
        .filter(|(ua, _, replayed, accepted)| *ua == ua1 && *accepted && !replayed)
        .map(|(_, k, _, _)| k.as_str())
        .collect();
    let applied_1 = answers
        .iter()
        .filter(|(ua, _, replayed, accepted)| *ua == ua1 && *accepted && !replayed)
        .count();
    assert_eq!(applied_1, 40, "exactly the balance, each key once");
    assert_eq!(accepted_keys_1.len(), 40);
    let applied_2 = answers
        .iter()
        .filter(|(ua, _, _, accepted)| *ua == ua2 && *accepted)
        .count();
    assert_eq!(applied_2, 60);
    assert_eq!(balances(&ctx, ua1).await.0, 0);
    assert_eq!(balances(&ctx, ua2).await.0, 940);
    for (ua, n) in [(ua1, 40), (ua2, 60)] {
        assert_db_count(
            &ctx,
            &format!(
                "SELECT count(*) AS n FROM token_ledger \
                 WHERE kind = 'consumption' AND user_automation_id = {ua}"
            ),
            n,
        )
        .await;
        assert_db_count(
            &ctx,
            &format!(
                "SELECT COALESCE(SUM(delta), 0)::bigint AS n FROM token_ledger \
                 WHERE user_automation_id = {ua}"
            ),
            balances(&ctx, ua).await.0,
        )
        .await;
    }
    // The running balances in the ledger never go below zero and step down by one.
    assert_db_count(
        &ctx,
        &format!(
            "SELECT count(*) AS n FROM (SELECT balance_after, \
             lag(balance_after) OVER (ORDER BY id) AS before FROM token_ledger \
             WHERE user_automation_id = {ua1} AND kind = 'consumption') t \
             WHERE balance_after < 0 OR (before IS NOT NULL AND balance_after <> before - 1)"
        ),
        0,
    )
    .await;
    // Every key that was answered "accepted" (first or replayed) is one of the charged ones.
    for (_, key, _, accepted) in answers.iter().filter(|(ua, ..)| *ua == ua1) {
        if *accepted {
            assert!(accepted_keys_1.contains(key.as_str()), "{key}");
        }
    }
    assert_eq!(outbox_count(&ctx, "tokens.depleted").await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn meta_with_a_nul_character_is_a_422_not_a_failed_batch() {
    let (ctx, app) = market().await;
    let (ua, token) = funded(&ctx, &app, "e@example.com", 5).await;
    let res = consume(
        &app,
        &token,
        &json!({ "user_automation_id": ua, "units": 1, "meta": { "text": "a\u{0}b" } }),
    )
    .await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let res = consume(
        &app,
        "zst_wrong",
        &json!({ "user_automation_id": ua, "units": 1, "meta": { "text": "a\u{0}b" } }),
    )
    .await;
    assert_eq!(
        res.status(),
        StatusCode::UNAUTHORIZED,
        "401 before the body"
    );
    assert_eq!(balances(&ctx, ua).await.0, 5);
}
