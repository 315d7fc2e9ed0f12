//! A crash between "effect committed" and "message acked": the broker redelivers, the inbox
//! turns the redelivery into a no-op, the effect stays single.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::{collections::HashMap, sync::Arc, time::Duration};

use common::{
    Db, Gate, RecordingHandler, WAIT, amqp_settings, connect, publish_envelope, publisher_channel,
};
use futures_util::StreamExt;
use serde_json::json;
use zimmer_events::{
    Broker, BrokerOptions, ConsumerHandle, ConsumerSpec, Envelope, Outcome, apply_once, topology,
};
use zimmer_telemetry::Metrics;
use zimmer_testkit::eventually;

const EVENT: &str = "test.happened";

fn consumed(metrics: &Metrics, consumer: &str, outcome: &str) -> u64 {
    metrics
        .events_consumed
        .with_label_values(&[consumer, EVENT, outcome])
        .get()
}

/// The real consumer `name` of [`EVENT`], on the test's database and broker.
fn consumer_of(
    db: &Db,
    broker: &Broker,
    metrics: &Metrics,
    name: &'static str,
    handler: Arc<RecordingHandler>,
) -> ConsumerHandle {
    common::spawn_on(
        db,
        broker,
        metrics,
        ConsumerSpec::new(name, [EVENT]),
        handler,
    )
}

/// Deterministic: a "first instance" takes the delivery, applies it exactly as the consumer
/// does (`apply_once`: inbox + effect, committed), then dies without acking (its channel and
/// connection close). The real consumer then gets the broker's redelivery.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redelivery_after_commit_without_ack_is_a_noop() {
    common::init_telemetry();
    let db = Db::new().await;
    db.create_effects_table().await;
    let settings = amqp_settings();
    let metrics = Metrics::new("events-test");
    let handler = Arc::new(RecordingHandler::default());
    let name = "crashy";

    let conn = connect().await;
    let setup = conn.create_channel().await.unwrap();
    let queue = topology::declare_consumer_queues(&setup, &settings, name, &[EVENT.to_owned()])
        .await
        .unwrap();
    let publisher = publisher_channel(&conn).await;
    let envelope = Envelope::new("tester", EVENT, json!({"n": 1}));
    publish_envelope(&publisher, &settings, &envelope, &HashMap::new()).await;

    // The instance that crashes after its commit.
    {
        let crash_conn = connect().await;
        let crash_channel = crash_conn.create_channel().await.unwrap();
        let mut deliveries = common::consume(&crash_channel, &queue, "about-to-crash").await;
        let delivery = tokio::time::timeout(WAIT, deliveries.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert!(!delivery.redelivered);
        let received: Envelope = serde_json::from_slice(&delivery.data).unwrap();
        let mut db_conn = db.pool.get().await.unwrap();
        let outcome = apply_once(&mut db_conn, name, &received, &*handler)
            .await
            .unwrap();
        assert_eq!(outcome, Outcome::Applied);
        // Crash: no ack, the channel and connection go away.
        crash_channel.close(200, "crash".into()).await.unwrap();
        crash_conn.close(200, "crash".into()).await.unwrap();
    }
    assert_eq!(db.effects(envelope.id).await, 1);

    let broker = Broker::start(&settings, "events-test");
    let consumer = consumer_of(&db, &broker, &metrics, name, handler.clone());
    eventually("the redelivery is recognised", WAIT, || async {
        consumed(&metrics, name, "duplicate") == 1
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(db.effects(envelope.id).await, 1, "effect still once");
    assert_eq!(handler.calls(), 1, "the handler did not run again");
    assert_eq!(consumed(&metrics, name, "applied"), 0);
    assert!(consumer.is_running());
}

/// End to end through the real consumer: the broker connection is cut while the handler is
/// inside its transaction, the transaction then commits but the ack cannot reach the broker;
/// after the broker is back the message is redelivered, recognised, acked; and the consumer,
/// re-subscribed by itself, handles new events. Once with an outage lapin recovers from, once
/// with one it does not (the supervisor's new connection takes over).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumer_survives_a_short_broker_outage_and_redelivery_is_a_noop() {
    crash_between_commit_and_ack(Duration::from_secs(1), BrokerOptions::default()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumer_survives_a_long_broker_outage_and_redelivery_is_a_noop() {
    crash_between_commit_and_ack(Duration::from_secs(8), common::short_recovery()).await;
}

async fn crash_between_commit_and_ack(outage: Duration, options: BrokerOptions) {
    common::init_telemetry();
    let db = Db::new().await;
    db.create_effects_table().await;
    let (proxy, settings, direct) = common::proxied().await;
    let metrics = Metrics::new("events-test");
    let gate = Arc::new(Gate::default());
    let handler = Arc::new(RecordingHandler {
        gate: Some(gate.clone()),
        ..Default::default()
    });
    let name = "survivor";
    let broker = Broker::start_with(&settings, "events-test", options);
    let consumer = consumer_of(&db, &broker, &metrics, name, handler.clone());
    assert!(consumer.wait_consuming(WAIT).await);

    let conn = connect().await;
    let publisher = publisher_channel(&conn).await;
    let first = Envelope::new("tester", EVENT, json!({"n": 1}));
    publish_envelope(&publisher, &direct, &first, &HashMap::new()).await;

    // The handler has written its effect and waits inside the transaction.
    tokio::time::timeout(WAIT, gate.entered.notified())
        .await
        .expect("handler entered");
    proxy.close().await;
    eventually("the outage is noticed", WAIT, || async {
        !broker.is_connected()
    })
    .await;
    // Commit happens now; the ack has nowhere to go.
    gate.release.notify_one();
    tokio::time::sleep(outage).await;
    assert!(!consumer.is_consuming());
    assert_eq!(db.effects(first.id).await, 1, "committed during the outage");
    proxy.reopen().await;

    eventually(
        "redelivered after the outage and recognised",
        Duration::from_secs(60),
        || async { consumed(&metrics, name, "duplicate") == 1 },
    )
    .await;
    assert_eq!(db.effects(first.id).await, 1, "effect still once");
    assert_eq!(handler.calls(), 1);

    // Still consuming: a new event is handled.
    assert!(consumer.wait_consuming(WAIT).await);
    let second = Envelope::new("tester", EVENT, json!({"n": 2}));
    publish_envelope(&publisher, &direct, &second, &HashMap::new()).await;
    eventually("the new event is handled", WAIT, || async {
        db.effects(second.id).await == 1
    })
    .await;
    assert_eq!(handler.calls(), 2);
    assert!(consumer.is_running());
}
