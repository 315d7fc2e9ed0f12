//! The callback: only a verify with the stored amount counts, at most once, however often and
//! however concurrently the callback arrives; forged, canceled and unpaid callbacks credit
//! nothing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use common::*;
use reqwest::StatusCode;
use serde_json::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paid_callback_succeeds_once_and_redirects_to_the_panel() {
    let (h, a, c) = shop("paid@example.com").await;
    let res = init(
        &h.app,
        &c,
        serde_json::json!({ "automation_id": a, "tokens": 4, "return_path": "/payment/return?from=buy" }),
    )
    .await;
    let init: Value = res.json().await.unwrap();
    let (authority, status) = start_pay(&payment_url_of(&init), None).await;
    assert_eq!(status, "OK");

    // The browser, redirected by the gateway.
    let res = callback_browser(&h.app, &authority, &status).await;
    assert_eq!(res.status(), StatusCode::FOUND);
    let location = res.headers()["location"].to_str().unwrap();
    assert_eq!(
        location,
        format!(
            "{FRONTEND}/payment/return?from=buy&payment_id={}&Authority={authority}&Status=OK",
            id_of(&init)
        )
    );

    let p = payment(&h.ctx, id_of(&init)).await;
    assert_eq!(p.status, "succeeded");
    assert!(p.ref_id.is_some());
    assert_eq!(p.card_pan.as_deref(), Some("502229******5995"));
    assert!(p.verified_at.is_some());
    let events = outbox(&h.ctx, "payment.verified").await;
    assert_eq!(events.len(), 1);
    let data = &events[0]["data"];
    assert_eq!(data["payment_id"], p.id);
    assert_eq!(data["user_id"], c.user_id);
    assert_eq!(data["automation_id"], a);
    assert_eq!(data["user_automation_id"], c.user_automation_id);
    assert_eq!(data["tokens"], 4);
    assert_eq!(data["amount"], 60_000);
    assert_eq!(data["ref_id"], p.ref_id.unwrap());
    assert_eq!(events[0]["producer"], "billing");

    // The panel's result page calls again, with its Bearer: JSON, idempotent.
    let res = h
        .app
        .get(&format!(
            "/api/payments/zarinpal/callback?payment_id={}&Authority={authority}&Status=OK",
            p.id
        ))
        .bearer_auth(&c.token)
        .call_expecting(StatusCode::OK)
        .await;
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["payment_id"], p.id);
    assert_eq!(body["status"], "succeeded");
    assert_eq!(body["ref_id"], p.ref_id.unwrap());
    assert!(body["message"].is_string());

    let session = h.fake.session(&authority).unwrap();
    assert_eq!(
        session.verify_calls, 1,
        "a settled payment is not verified again"
    );
    assert_eq!(session.verified_100, 1);
    assert_eq!(outbox(&h.ctx, "payment.verified").await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_concurrent_callbacks_verify_and_credit_once() {
    let (h, _, c) = shop("race@example.com").await;
    let init = buy(&h.app, &c, 3).await;
    let (authority, status) = start_pay(&payment_url_of(&init), None).await;

    let calls = (0..10).map(|i| {
        let app = &h.app;
        let (authority, status) = (authority.clone(), status.clone());
        async move {
            if i % 2 == 0 {
                callback_json(app, &authority, &status).await
            } else {
                callback_browser(app, &authority, &status).await
            }
        }
    });
    let answers = futures_util::future::join_all(calls).await;
    for (i, res) in answers.into_iter().enumerate() {
        if i % 2 == 0 {
            assert_eq!(res.status(), StatusCode::OK);
            let body: Value = res.json().await.unwrap();
            // Losers of the claim wait for the winner and answer its outcome.
            assert_eq!(body["status"], "succeeded", "{body}");
        } else {
            assert_eq!(res.status(), StatusCode::FOUND);
        }
    }
    let session = h.fake.session(&authority).unwrap();
    assert_eq!(session.verify_calls, 1, "exactly one caller verified");
    assert_eq!(session.verified_100, 1);
    assert_eq!(outbox(&h.ctx, "payment.verified").await.len(), 1);
    assert_eq!(payment(&h.ctx, id_of(&init)).await.status, "succeeded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_authority_is_404_and_changes_nothing() {
    let (h, _, c) = shop("forged@example.com").await;
    let init = buy(&h.app, &c, 3).await;
    let real = authority_of(&init);
    h.fake.pay(&real);

    let made_up = "A00000000000000000000000000000000000";
    for (authority, status) in [
        (made_up, "OK"),
        (made_up, "NOK"),
        ("A000'%20OR%201=1", "OK"),
        ("..%2F..%2Fetc", "OK"),
    ] {
        for res in [
            callback_json(&h.app, authority, status).await,
            callback_browser(&h.app, authority, status).await,
        ] {
            assert_eq!(res.status(), StatusCode::NOT_FOUND, "{authority}");
            let body: Value = res.json().await.unwrap();
            assert_eq!(body["code"], "not_found");
        }
    }
    // The real authority with someone else's payment id: not found either.
    h.app
        .get(&format!(
            "/api/payments/zarinpal/callback?payment_id=999999&Authority={real}&Status=OK"
        ))
        .header("Accept", "application/json")
        .expect_status(StatusCode::NOT_FOUND)
        .await;
    // Missing or bad parameters: a clear 422, not a 500.
    for q in [
        "",
        "?Status=OK",
        &format!("?Authority={real}"),
        &format!("?Authority={real}&Status=MAYBE"),
    ] {
        assert_eq!(
            h.app
                .get(&format!("/api/payments/zarinpal/callback{q}"))
                .status()
                .await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{q}"
        );
    }

    let p = payment(&h.ctx, id_of(&init)).await;
    assert_eq!(p.status, "pending");
    assert_eq!(p.verify_attempts, 0);
    assert_eq!(h.fake.session(&real).unwrap().verify_calls, 0);
    assert!(outbox(&h.ctx, "payment.verified").await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nok_cancels_without_a_verify_and_a_replayed_ok_credits_nothing() {
    let (h, _, c) = shop("cancel@example.com").await;
    let init = buy(&h.app, &c, 3).await;
    let (authority, status) = start_pay(&payment_url_of(&init), Some("NOK")).await;
    assert_eq!(status, "NOK");

    let res = callback_browser(&h.app, &authority, "NOK").await;
    assert_eq!(res.status(), StatusCode::FOUND);
    assert!(
        res.headers()["location"]
            .to_str()
            .unwrap()
            .ends_with("&Status=NOK")
    );
    let p = payment(&h.ctx, id_of(&init)).await;
    assert_eq!(p.status, "canceled");
    assert_eq!(h.fake.session(&authority).unwrap().verify_calls, 0);

    // Someone replays the URL with Status=OK: the verify says unpaid; it stays canceled.
    let body = callback_body(&h.app, &authority, "OK").await;
    assert_eq!(body["status"], "canceled");
    assert_eq!(payment(&h.ctx, id_of(&init)).await.status, "canceled");
    assert!(outbox(&h.ctx, "payment.verified").await.is_empty());
    assert!(outbox(&h.ctx, "payment.failed").await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unpaid_session_fails_without_credit() {
    let (h, _, c) = shop("unpaid@example.com").await;
    let init = buy(&h.app, &c, 3).await;
    // The bank declined, yet the redirect says OK: verify answers -51, inquiry FAILED.
    let (authority, status) = start_pay(&payment_url_of(&init), Some("unpaid")).await;
    assert_eq!(status, "OK");

    let body = callback_body(&h.app, &authority, &status).await;
    assert_eq!(body["status"], "failed", "{body}");
    let p = payment(&h.ctx, id_of(&init)).await;
    assert_eq!(p.status, "failed");
    assert_eq!(p.failure_reason.as_deref(), Some("not_paid"));
    assert!(p.ref_id.is_none());
    assert!(outbox(&h.ctx, "payment.verified").await.is_empty());
    let failed = outbox(&h.ctx, "payment.failed").await;
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0]["data"]["payment_id"], p.id);
    assert_eq!(failed[0]["data"]["user_id"], c.user_id);

    // Again: a closed payment is not verified from the callback a second time.
    callback_json(&h.app, &authority, &status).await;
    assert_eq!(h.fake.session(&authority).unwrap().verify_calls, 1);
    assert_eq!(outbox(&h.ctx, "payment.failed").await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn still_at_the_bank_stays_pending_for_the_reconciler() {
    let (h, _, c) = shop("inbank@example.com").await;
    let init = buy(&h.app, &c, 3).await;
    let (authority, status) = start_pay(&payment_url_of(&init), Some("in_bank")).await;

    let body: Value = callback_body(&h.app, &authority, &status).await;
    assert_eq!(body["status"], "pending");
    let p = payment(&h.ctx, id_of(&init)).await;
    assert_eq!(p.status, "pending");
    assert!(p.next_check_at.is_some(), "scheduled for another look");
    assert_eq!(p.verify_attempts, 1);
    assert!(outbox(&h.ctx, "payment.failed").await.is_empty());

    // Replaying the callback right away does not turn into more gateway calls.
    for _ in 0..5 {
        let body: Value = callback_body(&h.app, &authority, &status).await;
        assert_eq!(body["status"], "pending");
    }
    assert_eq!(h.fake.session(&authority).unwrap().verify_calls, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_amount_mismatch_needs_review_and_never_credits() {
    let (h, _, c) = shop("mismatch@example.com").await;
    let init = buy(&h.app, &c, 3).await;
    let (authority, status) = start_pay(&payment_url_of(&init), None).await;
    // Our stored amount no longer matches what was paid (a bug or tampering): -50.
    {
        use diesel::prelude::*;
        use diesel_async::RunQueryDsl;
        use zimmer_db::schema::payments;
        let mut conn = h.ctx.db.connect().await;
        diesel::update(payments::table.find(id_of(&init)))
            .set(payments::amount.eq(30_000))
            .execute(&mut conn)
            .await
            .unwrap();
    }
    let body: Value = callback_body(&h.app, &authority, &status).await;
    assert_eq!(body["payment_status"], "needs_review");
    assert_eq!(body["status"], "pending");
    assert_eq!(payment(&h.ctx, id_of(&init)).await.status, "needs_review");
    assert!(outbox(&h.ctx, "payment.verified").await.is_empty());
    // Not verified again by later callbacks.
    callback_json(&h.app, &authority, &status).await;
    assert_eq!(h.fake.session(&authority).unwrap().verify_calls, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_auto_verifying_terminal_answering_101_first_is_success_once() {
    let (h, _, c) = shop("auto@example.com").await;
    h.fake.set_auto_verify(true);
    let init = buy(&h.app, &c, 3).await;
    let (authority, status) = start_pay(&payment_url_of(&init), None).await;
    let body: Value = callback_body(&h.app, &authority, &status).await;
    assert_eq!(body["status"], "succeeded");
    assert_eq!(h.fake.session(&authority).unwrap().verified_100, 0);
    callback_json(&h.app, &authority, &status).await;
    assert_eq!(outbox(&h.ctx, "payment.verified").await.len(), 1);
}
