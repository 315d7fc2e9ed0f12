//! `payment.verified` credits purchased tokens exactly once: duplicate deliveries, a
//! redelivery after a crash between the committed credit and the ack, and a second event
//! about the same payment all leave one credit. A malformed event is dead-lettered, never
//! credited to the wrong balance.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::collections::HashMap;

use common::*;
use lapin::options::BasicPublishOptions;
use reqwest::StatusCode;
use serde_json::json;
use zimmer_events::{Broker, Envelope, Outcome, apply_once, topology};
use zimmer_marketplace::workers::payments::{PAYMENTS_CONSUMER, PaymentCredits};
use zimmer_testkit::{TestApp, TestContext, eventually};

/// Publishes `envelope` on the test's exchange, confirmed, as billing's relay would.
async fn publish(channel: &lapin::Channel, exchange: &str, envelope: &Envelope) {
    let confirm = channel
        .basic_publish(
            exchange.into(),
            envelope.event_type.as_str().into(),
            BasicPublishOptions::default(),
            &serde_json::to_vec(envelope).unwrap(),
            envelope.amqp_properties(&HashMap::new()),
        )
        .await
        .unwrap();
    confirm.await.unwrap();
}

/// The service's Prometheus text.
async fn metrics(app: &TestApp) -> String {
    app.get("/metrics").call().await.text().await.unwrap()
}

/// The value of `zimmer_events_consumed_total` for this consumer and outcome.
async fn consumed(app: &TestApp, outcome: &str) -> u64 {
    let labels = [("outcome", outcome), ("consumer", PAYMENTS_CONSUMER)];
    zimmer_testkit::metric_sum(&metrics(app).await, "zimmer_events_consumed_total", &labels)
}

async fn setup(ctx: &TestContext, app: &TestApp) -> (i64, i64, i64, lapin::Channel, Broker) {
    let automation_id = automation_with(app, json!({ "demo_tokens": 5 })).await;
    let (user_id, access) = customer(ctx, "payer@example.com").await;
    let ua = add(app, &access, automation_id).await;
    // Declare the consumer's queue (idempotent, same arguments as the service) so nothing
    // published before the service subscribes is lost.
    let settings = ctx.settings("marketplace", &[]);
    let broker = Broker::start(&settings.amqp, "test-billing");
    let (_conn, channel) = broker.open_channel(WAIT, true).await.unwrap();
    topology::declare_consumer_queues(
        &channel,
        &settings.amqp,
        PAYMENTS_CONSUMER,
        &["payment.verified".to_owned()],
    )
    .await
    .unwrap();
    (automation_id, user_id, ua, channel, broker)
}

fn verified(payment_id: i64, user_id: i64, automation_id: i64, ua: i64, tokens: i64) -> Envelope {
    Envelope::new(
        "billing",
        "payment.verified",
        json!({
            "payment_id": payment_id,
            "user_id": user_id,
            "automation_id": automation_id,
            "user_automation_id": ua,
            "tokens": tokens,
            "amount": tokens * 10_000,
            "ref_id": 201_234_567,
        }),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payment_is_credited_once_however_often_it_is_delivered() {
    let (ctx, app) = market().await;
    let (automation_id, user_id, ua, channel, _broker) = setup(&ctx, &app).await;
    let event = verified(42, user_id, automation_id, ua, 100);

    // A previous instance applied the event and crashed before acking it: its effect and
    // inbox row are committed, and the broker still holds the message.
    let mut conn = ctx.db.connect().await;
    let handler = PaymentCredits { low_threshold: 5 };
    let first = apply_once(&mut conn, PAYMENTS_CONSUMER, &event, &handler)
        .await
        .unwrap();
    assert_eq!(first, Outcome::Applied);
    assert_eq!(balances(&ctx, ua).await.0, 100);

    // The broker redelivers it, and duplicates arrive: five copies of the same event ...
    for _ in 0..5 {
        publish(&channel, &ctx.exchange, &event).await;
    }
    // ... and billing, retrying, emits a second event (new id) about the same payment.
    let again = verified(42, user_id, automation_id, ua, 100);
    publish(&channel, &ctx.exchange, &again).await;

    eventually("all six deliveries handled", WAIT, || async {
        consumed(&app, "duplicate").await == 5 && consumed(&app, "applied").await == 1
    })
    .await;
    assert_eq!(balances(&ctx, ua).await.0, 100, "credited exactly once");
    assert_db_count(
        &ctx,
        "SELECT count(*) AS n FROM token_ledger WHERE kind = 'purchase' AND source_key = 'payment:42'",
        1,
    )
    .await;
    let data = only_event_data(&ctx, "tokens.credited").await;
    assert_eq!(data["tokens"], 100);
    assert_eq!(data["balance"], 100);
    assert_eq!(data["source"], "payment");
    assert_eq!(data["user_id"], user_id);

    // A different payment is a different credit, delivered through the running consumer.
    let ev = verified(43, user_id, automation_id, ua, 7);
    publish(&channel, &ctx.exchange, &ev).await;
    eventually("payment 43 credited", WAIT, || async {
        balances(&ctx, ua).await.0 == 107
    })
    .await;
    // The customer sees paid tokens next to the untouched demo tokens.
    let access = ctx.mint_access_token(user_id, zimmer_jwt::Role::Customer, uuid::Uuid::new_v4());
    let path = format!("/api/user/automations/{automation_id}");
    let view = app
        .get(&path)
        .bearer_auth(&access)
        .json_expecting(StatusCode::OK)
        .await;
    assert_eq!(view["user_automation"]["tokens_remaining"], 107);
    assert_eq!(view["user_automation"]["demo_tokens"], 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payment_for_someone_elses_balance_is_dead_lettered_not_credited() {
    let (ctx, app) = market().await;
    let (automation_id, user_id, ua, channel, _broker) = setup(&ctx, &app).await;
    let stranger = ctx
        .create_user("stranger@example.com", zimmer_jwt::Role::Customer)
        .await;
    let ev = verified(77, stranger, automation_id, ua, 50);
    publish(&channel, &ctx.exchange, &ev).await;
    let ev = verified(78, user_id, automation_id, ua, 0);
    publish(&channel, &ctx.exchange, &ev).await;
    eventually("both dead-lettered", WAIT, || async {
        let text = metrics(&app).await;
        text.lines()
            .any(|l| l.starts_with("zimmer_events_dead_lettered_total{") && l.ends_with(" 2"))
    })
    .await;
    assert_eq!(balances(&ctx, ua).await.0, 0);
    assert_eq!(ledger_count(&ctx, "purchase").await, 0);
}

/// A `payment.verified` of a payload version this build does not know (a newer billing) is
/// dead-lettered and credits nothing; it is not guessed at. The known version still credits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payment_event_of_an_unknown_version_is_dead_lettered_not_credited() {
    let (ctx, app) = market().await;
    let (automation_id, user_id, ua, channel, _broker) = setup(&ctx, &app).await;
    let newer = Envelope {
        version: 2,
        ..verified(91, user_id, automation_id, ua, 40)
    };
    publish(&channel, &ctx.exchange, &newer).await;
    eventually("dead-lettered", WAIT, || async {
        let text = metrics(&app).await;
        text.lines().any(|l| {
            l.starts_with("zimmer_events_dead_lettered_total{")
                && l.contains("payment.verified")
                && l.ends_with(" 1")
        })
    })
    .await;
    assert_eq!(balances(&ctx, ua).await.0, 0, "nothing credited");
    assert_eq!(consumed(&app, "applied").await, 0);

    let ev = verified(91, user_id, automation_id, ua, 40);
    publish(&channel, &ctx.exchange, &ev).await;
    eventually("version 1 credited", WAIT, || async {
        balances(&ctx, ua).await.0 == 40
    })
    .await;
}
