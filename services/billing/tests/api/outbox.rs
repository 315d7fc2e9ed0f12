//! RabbitMQ down during the callback: the payment still succeeds (the event waits in the
//! outbox, written in the same transaction), `payment.verified` is published exactly once when
//! the broker returns, and the marketplace then credits the tokens exactly once.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::time::Duration;

use common::*;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use reqwest::StatusCode;
use serde_json::Value;
use zimmer_db::schema::user_automations;
use zimmer_fake_zarinpal::FakeZarinpal;
use zimmer_testkit::{EventObserver, TestContext, ToggleProxy, eventually};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_outage_delays_the_credit_but_loses_nothing() {
    let ctx = TestContext::new().await;
    let fake = FakeZarinpal::start().await.unwrap();
    // Billing reaches RabbitMQ only through a proxy the test cuts and restores.
    let proxy = ToggleProxy::start("127.0.0.1:5672", false).await;
    let amqp_url = format!("amqp://guest:guest@127.0.0.1:{}/%2f", proxy.port);
    let billing = spawn_billing(&ctx, &fake, &[("AMQP_URL", amqp_url.as_str())]).await;
    // The real marketplace, in-process, on the real broker: it credits the tokens.
    let _market = ctx
        .spawn(ctx.settings("marketplace", &[]), zimmer_marketplace::build)
        .await;

    // An observer queue bound to this test's exchange.
    let mut observer = EventObserver::start(&ctx, "payment.verified").await;

    let a = automation(&ctx, "A", 15_000).await;
    let c = customer(&ctx, "outage@example.com", a).await;
    let balance = || {
        let url = ctx.db.url.clone();
        let id = c.user_automation_id;
        async move {
            let mut conn = zimmer_testkit::connect(&url).await;
            user_automations::table
                .find(id)
                .select(user_automations::tokens_remaining)
                .first::<i64>(&mut conn)
                .await
                .unwrap()
        }
    };
    let before = balance().await;

    // The broker is unreachable for billing: the whole purchase still works.
    let init = buy(&billing, &c, 7).await;
    let (authority, status) = start_pay(&payment_url_of(&init), None).await;
    let res = callback_json(&billing, &authority, &status).await;
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["status"], "succeeded");
    assert_eq!(payment(&ctx, id_of(&init)).await.status, "succeeded");
    assert_count(
        &ctx,
        "SELECT count(*) AS n FROM outbox WHERE event_type = 'payment.verified' AND published_at IS NULL",
        1,
    )
    .await;
    assert!(
        observer.next(Duration::from_millis(500)).await.is_none(),
        "nothing can have been published yet"
    );
    assert_eq!(balance().await, before, "no credit without the event");

    // The broker returns: published once, credited once.
    proxy.enable();
    let envelope = observer
        .next(Duration::from_secs(60))
        .await
        .expect("payment.verified published after the broker came back");
    assert_eq!(envelope["type"], "payment.verified");
    assert_eq!(envelope["data"]["payment_id"], id_of(&init));
    assert_eq!(envelope["data"]["tokens"], 7);

    eventually(
        "the marketplace credits the tokens",
        Duration::from_secs(30),
        || async { balance().await == before + 7 },
    )
    .await;
    // Replays of the callback change nothing anywhere.
    for _ in 0..3 {
        callback_json(&billing, &authority, &status).await;
    }
    assert!(
        observer.next(Duration::from_secs(2)).await.is_none(),
        "published exactly once"
    );
    assert_eq!(balance().await, before + 7, "credited exactly once");
    assert_count(
        &ctx,
        &format!(
            "SELECT count(*) AS n FROM token_ledger WHERE source_key = 'payment:{}'",
            id_of(&init)
        ),
        1,
    )
    .await;
}
