//! Money and trust (issue 13, items 1–2): a forged `Status=NOK` cannot free a discount code's
//! slot, a payment paid past the code's limits is credited but reviewed, the JSON callback tells
//! amounts and references only to the owner, discount checks are rate-limited, and one customer
//! holds at most one open reservation per code.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::time::Duration;

use common::*;
use reqwest::StatusCode;
use serde_json::{Value, json};
use zimmer_jwt::Role;
use zimmer_testkit::{TestApp, TestContext, eventually};

const WAIT: Duration = Duration::from_secs(30);

async fn code_stats(app: &TestApp, id: &Value) -> Value {
    code_view(app, id).await["redemptions"].clone()
}

async fn redemption_status(ctx: &TestContext, payment_id: i64) -> String {
    let mut conn = ctx.db.connect().await;
    use diesel::prelude::*;
    use diesel_async::RunQueryDsl;
    use zimmer_db::schema::discount_redemptions as r;
    r::table
        .filter(r::payment_id.eq(payment_id))
        .select(r::status)
        .first(&mut conn)
        .await
        .unwrap()
}

/// The job every second and payments expiring after 3 s.
fn expiring_in_3s() -> Vec<(&'static str, &'static str)> {
    let mut env = job("1");
    env.push(("PAYMENT_EXPIRE_AFTER_SECS", "3"));
    env
}

fn with_code(c: &Customer, code: &str) -> Value {
    json!({ "automation_id": c.automation_id, "tokens": 3, "discount_code": code })
}

/// Item 1: a `Status=NOK` anyone can send makes billing ask the gateway; while the session is
/// still at the bank the payment stays pending and keeps its discount slot, so the same
/// customer cannot start a second discounted purchase with a `per_user_limit = 1` code.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_nok_keeps_the_payment_pending_and_its_discount_reserved() {
    let (h, _, c) = shop("forger@example.com").await;
    create_code(
        &h.app,
        json!({ "code": "half", "percent_off": 50, "per_user_limit": 1 }),
    )
    .await;
    let first = init_expecting(&h.app, &c, with_code(&c, "half"), StatusCode::OK).await;
    let authority = authority_of(&first);

    // The forged redirect (the payer never went to the bank).
    let body: Value = callback_body(&h.app, &authority, "NOK").await;
    assert_eq!(body["status"], "pending", "{body}");
    let p = payment(&h.ctx, id_of(&first)).await;
    assert_eq!(p.status, "pending");
    assert_eq!(redemption_status(&h.ctx, p.id).await, "reserved");
    let session = h.fake.session(&authority).unwrap();
    assert_eq!(session.inquiry_calls, 1, "the gateway was asked");
    assert_eq!(session.verify_calls, 0);

    // The slot is still held: a second discounted purchase is refused.
    let err = init_expecting(
        &h.app,
        &c,
        with_code(&c, "half"),
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(err["code"], "discount_per_user_limit");

    // The payer pays after all: credited once, the redemption confirmed.
    assert!(h.fake.pay(&authority));
    internal(
        h.app
            .post(&format!("/internal/payments/{}/reconcile", p.id)),
    )
    .expect_status(StatusCode::OK)
    .await;
    assert_eq!(payment(&h.ctx, p.id).await.status, "succeeded");
    assert_eq!(redemption_status(&h.ctx, p.id).await, "confirmed");
    assert_eq!(outbox(&h.ctx, "payment.verified").await.len(), 1);
    // A NOK now changes nothing.
    let body: Value = callback_body(&h.app, &authority, "NOK").await;
    assert_eq!(body["status"], "succeeded");
}

/// Item 1: a NOK for a session the gateway reports paid is verified and credited, not
/// canceled; a NOK for a session the bank really ended releases the reservation at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nok_is_settled_by_what_the_gateway_says() {
    let (h, _, c) = shop("nok@example.com").await;
    create_code(&h.app, json!({ "code": "ten", "percent_off": 10 })).await;

    let paid = buy(&h.app, &c, 3).await;
    assert!(h.fake.pay(&authority_of(&paid)));
    let body: Value = callback_json(&h.app, &authority_of(&paid), "NOK")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body["status"], "succeeded", "{body}");
    assert_eq!(outbox(&h.ctx, "payment.verified").await.len(), 1);

    let res = init(&h.app, &c, with_code(&c, "ten")).await;
    let canceled: Value = res.json().await.unwrap();
    let (authority, status) = start_pay(&payment_url_of(&canceled), Some("NOK")).await;
    let body: Value = callback_body(&h.app, &authority, &status).await;
    assert_eq!(body["status"], "canceled");
    assert_eq!(
        redemption_status(&h.ctx, id_of(&canceled)).await,
        "released"
    );
    assert_eq!(h.fake.session(&authority).unwrap().verify_calls, 0);
    assert!(outbox(&h.ctx, "payment.failed").await.is_empty());
}

/// Item 1, the attack of the issue: `per_user_limit = 1`, 50 % off; init, forged NOK, init
/// again, ..., then pay everything. The second init is refused while the first can be paid;
/// once the first has expired the slot is free, and when both are then paid, both payers are
/// credited but the code ends with exactly one confirmed redemption: the other is over-limit
/// and its payment needs review.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_forged_nok_attack_ends_with_the_limit_confirmed_and_the_rest_reviewed() {
    let h = harness(&expiring_in_3s()).await;
    let c = customer_of_a(&h, "attacker@example.com").await;
    let code = create_code(
        &h.app,
        json!({ "code": "half", "percent_off": 50, "per_user_limit": 1 }),
    )
    .await;

    let first = init_expecting(&h.app, &c, with_code(&c, "half"), StatusCode::OK).await;
    assert_eq!(first["amount"], 22_500);
    callback_json(&h.app, &authority_of(&first), "NOK").await;
    let res = init(&h.app, &c, with_code(&c, "half")).await;
    assert_eq!(
        res.status(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "a forged NOK does not free the slot"
    );

    // The first session is never paid in time: expired, its slot released.
    eventually("the first payment expires", WAIT, || async {
        payment(&h.ctx, id_of(&first)).await.status == "expired"
    })
    .await;
    let second = init_expecting(&h.app, &c, with_code(&c, "half"), StatusCode::OK).await;
    callback_json(&h.app, &authority_of(&second), "NOK").await;
    let res = init(&h.app, &c, with_code(&c, "half")).await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);

    // The attacker pays both and comes back with Status=OK.
    assert!(h.fake.pay(&authority_of(&first)));
    assert!(h.fake.pay(&authority_of(&second)));
    for p in [&first, &second] {
        callback_json(&h.app, &authority_of(p), "OK").await;
    }
    eventually("both paid payments are credited", WAIT, || async {
        outbox(&h.ctx, "payment.verified").await.len() == 2
    })
    .await;

    let stats = code_stats(&h.app, &code["id"]).await;
    assert_eq!(stats["confirmed"], 1, "{stats}");
    assert_eq!(stats["over_limit"], 1, "{stats}");
    let statuses = [
        payment(&h.ctx, id_of(&first)).await,
        payment(&h.ctx, id_of(&second)).await,
    ];
    assert_eq!(
        statuses.iter().filter(|p| p.status == "succeeded").count(),
        1
    );
    let reviewed: Vec<_> = statuses
        .iter()
        .filter(|p| p.status == "needs_review")
        .collect();
    assert_eq!(reviewed.len(), 1);
    assert_eq!(
        reviewed[0].failure_reason.as_deref(),
        Some("discount_over_limit")
    );
    assert!(reviewed[0].ref_id.is_some(), "verified and recorded");
    // Nothing lost, nothing doubled: one credit per paid payment.
    let mut credited: Vec<i64> = outbox(&h.ctx, "payment.verified")
        .await
        .iter()
        .map(|e| e["data"]["payment_id"].as_i64().unwrap())
        .collect();
    credited.sort_unstable();
    assert_eq!(credited, vec![id_of(&first), id_of(&second)]);
    // A review case is not claimed again: no second credit later.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(outbox(&h.ctx, "payment.verified").await.len(), 2);
}

/// Item 1: a payment that expired and was paid later, after another customer took the code's
/// last slot: credited, its redemption over-limit, the payment under review; the customer who
/// held the slot keeps it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_payment_past_the_codes_limit_is_credited_and_reviewed() {
    let h = harness(&expiring_in_3s()).await;
    let late = customer_of_a(&h, "late@example.com").await;
    let a = late.automation_id;
    let other = customer(&h.ctx, "other@example.com", a).await;
    let code = create_code(
        &h.app,
        json!({ "code": "one", "percent_off": 20, "max_redemptions": 1 }),
    )
    .await;
    let res = init(&h.app, &late, with_code(&late, "one")).await;
    let first: Value = res.json().await.unwrap();
    eventually("it expires", WAIT, || async {
        payment(&h.ctx, id_of(&first)).await.status == "expired"
    })
    .await;
    let second = init_expecting(&h.app, &other, with_code(&other, "one"), StatusCode::OK).await;

    // Both pay; the job settles them in whatever order.
    assert!(h.fake.pay(&authority_of(&first)));
    assert!(h.fake.pay(&authority_of(&second)));
    eventually("both are credited", WAIT, || async {
        outbox(&h.ctx, "payment.verified").await.len() == 2
    })
    .await;
    let late_payment = payment(&h.ctx, id_of(&first)).await;
    assert_eq!(late_payment.status, "needs_review");
    assert_eq!(
        late_payment.failure_reason.as_deref(),
        Some("discount_over_limit")
    );
    assert_eq!(redemption_status(&h.ctx, id_of(&first)).await, "over_limit");
    assert_eq!(payment(&h.ctx, id_of(&second)).await.status, "succeeded");
    assert_eq!(redemption_status(&h.ctx, id_of(&second)).await, "confirmed");
    let stats = code_stats(&h.app, &code["id"]).await;
    assert_eq!(stats["confirmed"], 1, "{stats}");
    assert_eq!(stats["over_limit"], 1, "{stats}");
}

/// Item 1 (second part): the JSON callback tells `ref_id` and the amount only to the owner;
/// an anonymous caller or another customer gets the status and message; `card_pan` appears
/// only in the owner's own payment. The browser's 302 flow is unchanged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_json_callback_tells_details_only_to_the_owner() {
    let (h, a, owner) = shop("owner@example.com").await;
    let stranger = customer(&h.ctx, "stranger@example.com", a).await;
    let init = buy(&h.app, &owner, 3).await;
    let (authority, status) = start_pay(&payment_url_of(&init), None).await;

    // The gateway's redirect: 302 to the panel, as before.
    let res = callback_browser(&h.app, &authority, &status).await;
    assert_eq!(res.status(), StatusCode::FOUND);
    assert_eq!(
        res.headers()["location"].to_str().unwrap(),
        format!(
            "{FRONTEND}/payment/return?payment_id={}&Authority={authority}&Status=OK",
            id_of(&init)
        )
    );

    let url = format!(
        "/api/payments/zarinpal/callback?payment_id={}&Authority={authority}&Status=OK",
        id_of(&init)
    );
    let ask = |token: Option<&str>| {
        let mut req = h.app.get(&url).header("Accept", "application/json");
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send()
    };
    let minimal = |body: &Value| {
        let keys: Vec<&String> = body.as_object().unwrap().keys().collect();
        assert_eq!(keys.len(), 3, "only the status and message: {body}");
        assert_eq!(body["status"], "succeeded");
        assert_eq!(body["payment_status"], "succeeded");
        assert!(body["message"].is_string());
    };
    let anonymous: Value = ask(None).await.unwrap().json().await.unwrap();
    minimal(&anonymous);
    let other: Value = ask(Some(&stranger.token))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    minimal(&other);
    let staff_id = h.ctx.create_user("staff@example.com", Role::Manager).await;
    let staff = h
        .ctx
        .mint_access_token(staff_id, Role::Manager, uuid::Uuid::new_v4());
    minimal(&ask(Some(&staff)).await.unwrap().json().await.unwrap());
    minimal(
        &ask(Some("not-a-token"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap(),
    );

    let mine: Value = ask(Some(&owner.token)).await.unwrap().json().await.unwrap();
    let p = payment(&h.ctx, id_of(&init)).await;
    assert_eq!(mine["payment_id"], p.id);
    assert_eq!(mine["status"], "succeeded");
    assert_eq!(mine["ref_id"], p.ref_id.unwrap());
    assert_eq!(mine["amount"], 45_000);
    assert!(mine.get("card_pan").is_none(), "{mine}");

    // The card only in the owner's own payment.
    let res = owner
        .get(&h.app, &format!("/api/user/payments/{}", p.id))
        .call()
        .await;
    let own: Value = res.json().await.unwrap();
    assert_eq!(own["card_pan"], "502229******5995");
    stranger
        .get(&h.app, &format!("/api/user/payments/{}", p.id))
        .expect_status(StatusCode::NOT_FOUND)
        .await;
}

async fn validate_as(app: &TestApp, token: &str, ip: &str) -> reqwest::Response {
    app.post("/api/discounts/validate")
        .bearer_auth(token)
        .header("X-Real-IP", ip)
        .json(&json!({ "code": "guess", "amount": 10_000 }))
        .call()
        .await
}

/// A refusal for too many requests: its `Retry-After`, in seconds.
fn retry_after_429(res: &reqwest::Response) -> u64 {
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    zimmer_testkit::retry_after(res)
}

/// Item 2: validation is limited per user (20 per 10 minutes by default) and, separately, per
/// client IP, with 429, `Retry-After` and a JSON detail.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discount_validation_is_rate_limited_per_user_and_per_ip() {
    let (h, a, guesser) = shop("guesser@example.com").await;
    // Per user, the default budget: 20, then 429 even from a fresh address.
    for i in 0..20 {
        let res = validate_as(&h.app, &guesser.token, &format!("10.0.0.{i}")).await;
        assert_eq!(res.status(), StatusCode::OK, "call {i}");
    }
    let res = validate_as(&h.app, &guesser.token, "10.0.1.1").await;
    let retry = retry_after_429(&res);
    assert!((1..=600).contains(&retry), "{retry}");
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["code"], "rate_limited");
    assert!(body["detail"].is_string());

    // Per IP: many accounts behind one address share its budget.
    let mut ok = 0;
    for i in 0..25 {
        let c = customer(&h.ctx, &format!("sock{i}@example.com"), a).await;
        let res = validate_as(&h.app, &c.token, "10.9.9.9").await;
        match res.status() {
            StatusCode::OK => ok += 1,
            StatusCode::TOO_MANY_REQUESTS => {
                assert!(res.headers().contains_key("retry-after"));
            }
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!(ok, 20, "the IP's budget");
}

/// Item 2: the limits are configuration; with Redis unreachable validation fails open (the
/// purchase still enforces a code's limits in PostgreSQL).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_validation_limit_is_configurable_and_fails_open_without_redis() {
    let h = harness(&[
        ("DISCOUNT_VALIDATE_LIMIT", "3"),
        ("DISCOUNT_VALIDATE_WINDOW_SECS", "60"),
    ])
    .await;
    let c = customer_of_a(&h, "cfg@example.com").await;
    for _ in 0..3 {
        assert_eq!(
            validate_as(&h.app, &c.token, "10.1.1.1").await.status(),
            StatusCode::OK
        );
    }
    let res = validate_as(&h.app, &c.token, "10.1.1.1").await;
    let retry = retry_after_429(&res);
    assert!((1..=60).contains(&retry), "{retry}");

    let down = spawn_billing(
        &h.ctx,
        &h.fake,
        &[
            ("DISCOUNT_VALIDATE_LIMIT", "3"),
            ("REDIS_URL", "redis://127.0.0.1:1"),
        ],
    )
    .await;
    for _ in 0..6 {
        assert_eq!(
            validate_as(&down, &c.token, "10.1.1.1").await.status(),
            StatusCode::OK
        );
    }
}

/// Item 2: one open reservation per user and code. Many purchases started at once by one
/// customer with a `max_redemptions = 3` code hold one slot between them (each new one
/// replaces the previous), so other customers can still use the code.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_customer_cannot_hoard_a_codes_slots() {
    let h = harness(&[]).await;
    let a = automation(&h.ctx, "A", 15_000).await;
    let code = create_code(
        &h.app,
        json!({ "code": "few", "percent_off": 30, "max_redemptions": 3 }),
    )
    .await;
    let hoarder = customer(&h.ctx, "hoarder@example.com", a).await;
    let calls = (0..6).map(|_| init(&h.app, &hoarder, with_code(&hoarder, "few")));
    let answers = futures_util::future::join_all(calls).await;
    let mut ids = Vec::new();
    for res in answers {
        assert_eq!(res.status(), StatusCode::OK);
        ids.push(id_of(&res.json::<Value>().await.unwrap()));
    }
    assert_eq!(
        count(
            &h.ctx,
            &format!(
                "SELECT count(*) AS n FROM discount_redemptions \
                 WHERE user_id = {} AND status = 'reserved'",
                hoarder.user_id
            )
        )
        .await,
        1,
        "one open reservation"
    );
    // Two other customers still get the code.
    for i in 0..2 {
        let c = customer(&h.ctx, &format!("fair{i}@example.com"), a).await;
        let res = init(&h.app, &c, with_code(&c, "few")).await;
        assert_eq!(res.status(), StatusCode::OK);
    }
    let stats = code_stats(&h.app, &code["id"]).await;
    assert_eq!(stats["reserved"], 3, "{stats}");

    // The hoarder pays two of the replaced purchases anyway: both credited; the first takes
    // over the hoarder's open slot, the second is over the limit and reviewed.
    for id in &ids[..2] {
        let authority = payment(&h.ctx, *id).await.authority.unwrap();
        assert!(h.fake.pay(&authority));
        callback_json(&h.app, &authority, "OK").await;
    }
    assert_eq!(outbox(&h.ctx, "payment.verified").await.len(), 2);
    let stats = code_stats(&h.app, &code["id"]).await;
    assert_eq!(stats["confirmed"], 1, "{stats}");
    assert_eq!(stats["over_limit"], 1, "{stats}");
    assert_eq!(stats["reserved"], 2, "the others keep theirs: {stats}");
}
