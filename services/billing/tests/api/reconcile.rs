//! The reconciliation job, running for real in the service: a verify that timed out, a callback
//! that never came, a payer who paid a payment we had closed, a session that never got paid, a
//! claim whose process died, and two replicas at once — each settled once, never twice.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::time::Duration;

use common::*;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use reqwest::StatusCode;
use serde_json::{Value, json};
use zimmer_db::schema::payments;
use zimmer_fake_zarinpal::FakeZarinpal;
use zimmer_testkit::{TestContext, eventually};

const WAIT: Duration = Duration::from_secs(30);

async fn status_is(ctx: &TestContext, id: i64, status: &str) -> bool {
    payment(ctx, id).await.status == status
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_verify_that_times_out_stays_pending_and_the_job_credits_it_once() {
    // Fresh payments are the callback's for an hour: only the retry after the timeout is due.
    let mut env = job("3600");
    env.push(("ZARINPAL_TIMEOUT_MS", "500"));
    let h = harness(&env).await;
    let c = customer_of_a(&h, "timeout@example.com").await;
    let init = buy(&h.app, &c, 3).await;
    let (authority, status) = start_pay(&payment_url_of(&init), None).await;

    // The gateway verifies, but answers after our timeout: we learn nothing.
    h.fake.hang_next_verifies(1, Duration::from_secs(3));
    let body: Value = callback_body(&h.app, &authority, &status).await;
    assert_eq!(body["status"], "pending", "{body}");
    let p = payment(&h.ctx, id_of(&init)).await;
    assert_eq!(p.status, "pending", "never failed on a guess");
    assert!(outbox(&h.ctx, "payment.verified").await.is_empty());

    // The job looks again; the gateway now says 101 (verified before): success, once.
    eventually("the job settles the payment", WAIT, || {
        status_is(&h.ctx, id_of(&init), "succeeded")
    })
    .await;
    let p = payment(&h.ctx, id_of(&init)).await;
    assert!(p.ref_id.is_some());
    assert_eq!(p.verify_attempts, 2);
    let session = h.fake.session(&authority).unwrap();
    assert_eq!(session.verified_100, 1);
    assert_eq!(session.verify_calls, 2);
    assert_eq!(outbox(&h.ctx, "payment.verified").await.len(), 1);
    // Later callbacks change nothing.
    callback_json(&h.app, &authority, &status).await;
    assert_eq!(outbox(&h.ctx, "payment.verified").await.len(), 1);
    assert_eq!(h.fake.session(&authority).unwrap().verify_calls, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_callback_is_verified_by_the_job() {
    let h = harness(&job("1")).await;
    let c = customer_of_a(&h, "lost@example.com").await;
    let init = buy(&h.app, &c, 3).await;
    // The payer pays and closes the tab: no callback ever arrives.
    assert!(h.fake.pay(&authority_of(&init)));
    eventually("the job verifies the paid payment", WAIT, || {
        status_is(&h.ctx, id_of(&init), "succeeded")
    })
    .await;
    assert_eq!(outbox(&h.ctx, "payment.verified").await.len(), 1);
    assert_eq!(
        h.fake.session(&authority_of(&init)).unwrap().verified_100,
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_canceled_payment_that_was_paid_is_credited_from_the_unverified_list() {
    let h = harness(&job("1")).await;
    let c = customer_of_a(&h, "latepayer@example.com").await;
    let a = c.automation_id;
    create_code(&h.app, json!({ "code": "late", "percent_off": 10 })).await;
    let body = json!({ "automation_id": a, "tokens": 3, "discount_code": "late" });
    let init = init_expecting(&h.app, &c, body, StatusCode::OK).await;
    let authority = authority_of(&init);
    // A forged NOK: the gateway says the session is still at the bank, so it stays pending
    // (it no longer cancels; see trust.rs). The payer pays anyway.
    callback_json(&h.app, &authority, "NOK").await;
    assert_eq!(payment(&h.ctx, id_of(&init)).await.status, "pending");
    assert!(h.fake.pay(&authority));

    eventually("the unVerified walk credits it", WAIT, || {
        status_is(&h.ctx, id_of(&init), "succeeded")
    })
    .await;
    let events = outbox(&h.ctx, "payment.verified").await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["data"]["amount"], 40_500);
    // The payer paid the discounted price: the redemption is honoured.
    assert_eq!(redemptions_in(&h.ctx, "confirmed").await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_never_paid_expires_and_releases_its_discount() {
    let mut env = job("1");
    env.push(("PAYMENT_EXPIRE_AFTER_SECS", "2"));
    let h = harness(&env).await;
    let c = customer_of_a(&h, "abandoned@example.com").await;
    let a = c.automation_id;
    create_code(&h.app, json!({ "code": "x", "percent_off": 10 })).await;
    let body = json!({ "automation_id": a, "tokens": 3, "discount_code": "x" });
    let init = init_expecting(&h.app, &c, body, StatusCode::OK).await;
    // The payer reached the bank and left.
    eventually("the job expires it", WAIT, || {
        status_is(&h.ctx, id_of(&init), "expired")
    })
    .await;
    assert_eq!(redemptions_in(&h.ctx, "released").await, 1);
    assert!(outbox(&h.ctx, "payment.verified").await.is_empty());
    assert!(
        h.fake.session(&authority_of(&init)).unwrap().verify_calls >= 1,
        "expired only after asking the gateway"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claims_of_a_dead_process_and_requests_that_never_got_an_authority_are_recovered() {
    let h = harness(&job("1")).await;
    let c = customer_of_a(&h, "crash@example.com").await;
    let a = c.automation_id;
    let init = buy(&h.app, &c, 3).await;
    assert!(h.fake.pay(&authority_of(&init)));
    // A process claimed it and died mid-verify: `verifying` with a lease long past.
    let mut conn = h.ctx.db.connect().await;
    diesel::update(payments::table.find(id_of(&init)))
        .set((
            payments::status.eq("verifying"),
            payments::verify_attempts.eq(1),
            payments::next_check_at.eq(chrono::Utc::now() - chrono::Duration::minutes(5)),
        ))
        .execute(&mut conn)
        .await
        .unwrap();
    // And one died between the insert and the gateway's answer, an hour ago.
    let orphan: i64 = diesel::insert_into(payments::table)
        .values((
            payments::user_id.eq(c.user_id),
            payments::automation_id.eq(a),
            payments::user_automation_id.eq(c.user_automation_id),
            payments::amount.eq(45_000_i64),
            payments::tokens_purchased.eq(3_i64),
            payments::created_at.eq(chrono::Utc::now() - chrono::Duration::hours(1)),
        ))
        .returning(payments::id)
        .get_result(&mut conn)
        .await
        .unwrap();

    eventually("the stale claim is settled", WAIT, || {
        status_is(&h.ctx, id_of(&init), "succeeded")
    })
    .await;
    eventually("the orphan expires", WAIT, || {
        status_is(&h.ctx, orphan, "expired")
    })
    .await;
    assert_eq!(outbox(&h.ctx, "payment.verified").await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_reconciling_together_settle_each_payment_once() {
    let ctx = TestContext::new().await;
    let fake = FakeZarinpal::start().await.unwrap();
    let env = job("1");
    let one = spawn_billing(&ctx, &fake, &env).await;
    let _two = spawn_billing(&ctx, &fake, &env).await;
    let a = automation(&ctx, "A", 15_000).await;
    let mut ids = Vec::new();
    let mut authorities = Vec::new();
    for i in 0..6 {
        let c = customer(&ctx, &format!("replica{i}@example.com"), a).await;
        let init = buy(&one, &c, 3).await;
        assert!(fake.pay(&authority_of(&init)));
        ids.push(id_of(&init));
        authorities.push(authority_of(&init));
    }
    eventually("every payment settled", WAIT, || async {
        count(
            &ctx,
            "SELECT count(*) AS n FROM payments WHERE status = 'succeeded'",
        )
        .await
            == 6
    })
    .await;
    let events = outbox(&ctx, "payment.verified").await;
    assert_eq!(events.len(), 6);
    let mut paid: Vec<i64> = events
        .iter()
        .map(|e| e["data"]["payment_id"].as_i64().unwrap())
        .collect();
    paid.sort_unstable();
    ids.sort_unstable();
    assert_eq!(paid, ids, "one event per payment");
    for a in &authorities {
        assert_eq!(fake.session(a).unwrap().verified_100, 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_can_reconcile_a_payment_or_a_round_on_demand() {
    // The job is off: only the internal calls settle anything.
    let h = harness(&[("RECONCILE_MIN_AGE_SECS", "0")]).await;
    let c = customer_of_a(&h, "ondemand@example.com").await;
    let first = buy(&h.app, &c, 3).await;
    let second = buy(&h.app, &c, 4).await;
    assert!(h.fake.pay(&authority_of(&first)));
    assert!(h.fake.pay(&authority_of(&second)));
    let post = |path: String| internal(h.app.post(&path)).send();

    let res = post(format!("/internal/payments/{}/reconcile", id_of(&first)))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["checked"], true);
    assert_eq!(body["payment"]["status"], "succeeded");
    // Settled: a second call does not verify again.
    let body: Value = post(format!("/internal/payments/{}/reconcile", id_of(&first)))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["checked"], false);
    assert_eq!(
        h.fake.session(&authority_of(&first)).unwrap().verify_calls,
        1
    );
    let res = post("/internal/payments/999999/reconcile".to_owned())
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);

    // A whole round: the other one is due (minimum age 0) and settled.
    let report: Value = post("/internal/reconcile".to_owned())
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(report["succeeded"], 1, "{report}");
    assert_eq!(payment(&h.ctx, id_of(&second)).await.status, "succeeded");
    assert_eq!(outbox(&h.ctx, "payment.verified").await.len(), 2);

    let metrics = h.app.get("/metrics").call().await.text().await.unwrap();
    assert!(metrics.contains("zimmer_zarinpal_calls_total"), "{metrics}");
    assert!(metrics.contains("zimmer_billing_payment_outcomes_total"));
}
