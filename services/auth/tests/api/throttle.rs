//! Login throttling (policy in `domain/throttle.rs`): the guesser's address is locked out of
//! the account, the owner elsewhere is not; an account-wide lock is short; locks look the
//! same for unknown emails; escalation doubles a repeated pair lock.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::time::Duration;

use common::*;
use reqwest::{Response, StatusCode};
use serde_json::{Value, json};
use zimmer_testkit::{TestApp, retry_after};

async fn login_from(app: &TestApp, ip: &str, email: &str, password: &str) -> Response {
    app.post("/api/auth/login")
        .header("X-Real-IP", ip)
        .json(&json!({ "email": email, "password": password }))
        .call()
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_guessers_address_is_locked_out_not_the_owner() {
    let (_ctx, app) = auth().await;
    register(&app, "victim@example.com", PASSWORD).await;
    let attacker = "203.0.113.7";
    for i in 0..5 {
        let res = login_from(
            &app,
            attacker,
            "victim@example.com",
            &format!("guess number {i}"),
        )
        .await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "guess {i}");
    }
    // Locked: even the right password from that address waits.
    let res = login_from(&app, attacker, "victim@example.com", PASSWORD).await;
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    let wait = retry_after(&res);
    assert!((1..=900).contains(&wait), "{wait}");
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["code"], "rate_limited");
    assert!(body["detail"].is_string());

    // The owner, from their own address, signs in normally.
    let res = login_from(&app, "198.51.100.20", "victim@example.com", PASSWORD).await;
    assert_eq!(res.status(), StatusCode::OK);
    // And other accounts from the attacker's address are not affected by this lock.
    register(&app, "other@example.com", PASSWORD).await;
    let res = login_from(&app, attacker, "other@example.com", PASSWORD).await;
    assert_eq!(res.status(), StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_emails_are_locked_the_same_way() {
    let (_ctx, app) = auth().await;
    register(&app, "real@example.com", PASSWORD).await;
    let ip = "203.0.113.9";
    let mut answers = Vec::new();
    for email in ["real@example.com", "ghost@example.com"] {
        let mut statuses = Vec::new();
        for _ in 0..6 {
            statuses.push(
                login_from(&app, ip, email, "wrong password here")
                    .await
                    .status(),
            );
        }
        answers.push(statuses);
    }
    assert_eq!(
        answers[0], answers[1],
        "same sequence whether the account exists"
    );
    assert_eq!(answers[0][4], StatusCode::UNAUTHORIZED);
    assert_eq!(answers[0][5], StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_account_wide_lock_is_short_and_a_success_clears_the_pair() {
    let (_ctx, app, _mail) = auth_with(&[
        ("THROTTLE_LOGIN_ACCOUNT_FAILURES", "4/60"),
        ("THROTTLE_LOGIN_PAIR_FAILURES", "3/900"),
    ])
    .await;
    register(&app, "spread@example.com", PASSWORD).await;

    // Two failures, then a success from the same address: the pair's count starts over.
    for _ in 0..2 {
        login_from(&app, "192.0.2.1", "spread@example.com", "nope nope nope").await;
    }
    assert_eq!(
        login_from(&app, "192.0.2.1", "spread@example.com", PASSWORD)
            .await
            .status(),
        StatusCode::OK
    );
    assert_eq!(
        login_from(&app, "192.0.2.1", "spread@example.com", "nope nope nope")
            .await
            .status(),
        StatusCode::UNAUTHORIZED,
        "not locked: the success reset this address's count"
    );

    // A fourth failure (from another address) reaches the account-wide limit: every
    // address waits, but at most the 60 s window.
    login_from(&app, "192.0.2.2", "spread@example.com", "nope nope nope").await;
    let res = login_from(&app, "192.0.2.3", "spread@example.com", PASSWORD).await;
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(retry_after(&res) <= 60);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeated_pair_lock_lasts_longer() {
    let (_ctx, app, _mail) = auth_with(&[("THROTTLE_LOGIN_PAIR_FAILURES", "2/2")]).await;
    register(&app, "esc@example.com", PASSWORD).await;
    let ip = "192.0.2.50";
    for _ in 0..2 {
        login_from(&app, ip, "esc@example.com", "wrong wrong wrong").await;
    }
    let first = login_from(&app, ip, "esc@example.com", PASSWORD).await;
    assert_eq!(first.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(retry_after(&first) <= 2);
    // After it lifts, the next lock doubles.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    for _ in 0..2 {
        let res = login_from(&app, ip, "esc@example.com", "wrong wrong wrong").await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    }
    let second = login_from(&app, ip, "esc@example.com", PASSWORD).await;
    assert_eq!(second.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(retry_after(&second) >= 3, "{}", retry_after(&second));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_cannot_spray_many_accounts() {
    let (_ctx, app, _mail) = auth_with(&[("THROTTLE_LOGIN_IP", "5/300")]).await;
    let ip = "198.51.100.99";
    for i in 0..5 {
        let res = login_from(&app, ip, &format!("user{i}@example.com"), "some password").await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    }
    let res = login_from(&app, ip, "user9@example.com", "some password").await;
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    // Another address is unaffected.
    let res = login_from(&app, "198.51.100.100", "user9@example.com", "some password").await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
}
