//! Idempotent consumers: dedup through the inbox, retries with backoff, dead-lettering.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use common::{
    Db, RecordingHandler, WAIT, amqp_settings, connect, get_one, publish_envelope, publish_raw,
    publisher_channel,
};
use lapin::{Channel, Connection, message::Delivery};
use serde_json::json;
use zimmer_config::AmqpSettings;
use zimmer_events::{
    Broker, ConsumerHandle, ConsumerSpec, Envelope, EventHandler, OutboxRelay, RETRY_HEADER,
    spawn_broadcast_listener, topology,
};
use zimmer_telemetry::Metrics;
use zimmer_testkit::eventually;

const EVENT: &str = "test.happened";

struct Ctx {
    db: Db,
    settings: AmqpSettings,
    broker: Broker,
    metrics: Metrics,
    _conn: Connection,
    channel: Channel,
}

async fn ctx() -> Ctx {
    common::init_telemetry();
    let db = Db::new().await;
    db.create_effects_table().await;
    let settings = amqp_settings();
    let broker = Broker::start(&settings, "events-test");
    broker.wait_connected(WAIT).await.unwrap();
    let conn = connect().await;
    let channel = publisher_channel(&conn).await;
    Ctx {
        db,
        settings,
        broker,
        metrics: Metrics::new("events-test"),
        _conn: conn,
        channel,
    }
}

impl Ctx {
    fn consume(&self, spec: ConsumerSpec, handler: Arc<dyn EventHandler>) -> ConsumerHandle {
        common::spawn_on(&self.db, &self.broker, &self.metrics, spec, handler)
    }
    /// A consumer of `spec`, subscribed.
    async fn consuming(
        &self,
        spec: ConsumerSpec,
        handler: Arc<dyn EventHandler>,
    ) -> ConsumerHandle {
        let consumer = self.consume(spec, handler);
        assert!(consumer.wait_consuming(WAIT).await);
        consumer
    }
    /// A subscribed consumer `name` of [`EVENT`] with `handler`, and the handler to look at.
    async fn recording(
        &self,
        name: &'static str,
        handler: RecordingHandler,
    ) -> (Arc<RecordingHandler>, ConsumerHandle) {
        let handler = Arc::new(handler);
        let spec = ConsumerSpec::new(name, [EVENT]);
        (handler.clone(), self.consuming(spec, handler).await)
    }
    fn consumed(&self, consumer: &str, outcome: &str) -> u64 {
        self.consumed_type(consumer, EVENT, outcome)
    }
    fn consumed_type(&self, consumer: &str, event_type: &str, outcome: &str) -> u64 {
        self.metrics
            .events_consumed
            .with_label_values(&[consumer, event_type, outcome])
            .get()
    }
    fn dead_lettered(&self, consumer: &str, event_type: &str) -> u64 {
        self.metrics
            .events_dead_lettered
            .with_label_values(&[consumer, event_type])
            .get()
    }
    fn dlq(&self, consumer: &str) -> String {
        topology::dead_letter_queue_name(&topology::queue_name(&self.settings, consumer))
    }
    /// The next message in `consumer`'s dead-letter queue, waiting up to `within`.
    async fn dlq_message(&self, consumer: &str, within: Duration) -> Option<Delivery> {
        get_one(&self.channel, &self.dlq(consumer), within).await
    }
    /// The message that must reach `consumer`'s dead-letter queue within [`WAIT`], and the
    /// envelope it carries.
    async fn dead_envelope(&self, consumer: &str) -> (Delivery, Envelope) {
        let dead = self.dlq_message(consumer, WAIT).await;
        let dead = dead.unwrap_or_else(|| panic!("nothing in {consumer}'s dead-letter queue"));
        let envelope = serde_json::from_slice(&dead.data).unwrap();
        (dead, envelope)
    }
    async fn inbox(&self, consumer: &str) -> i64 {
        self.db
            .count(&format!(
                "SELECT count(*) AS n FROM inbox WHERE consumer = '{consumer}'"
            ))
            .await
    }
    async fn publish(&self, envelope: &Envelope) {
        publish_envelope(&self.channel, &self.settings, envelope, &HashMap::new()).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_event_five_times_has_one_effect() {
    let c = ctx().await;
    let (handler, consumer) = c.recording("idempotent", RecordingHandler::default()).await;

    let envelope = Envelope::new("tester", EVENT, json!({"k": 1}));
    let trace_id = "0af7651916cd43dd8448eb211c80319c";
    let headers = HashMap::from([(
        "traceparent".to_owned(),
        format!("00-{trace_id}-b7ad6b7169203331-01"),
    )]);
    for _ in 0..5 {
        publish_envelope(&c.channel, &c.settings, &envelope, &headers).await;
    }

    eventually("all five deliveries handled", WAIT, || async {
        c.consumed("idempotent", "applied") + c.consumed("idempotent", "duplicate") == 5
    })
    .await;
    assert_eq!(c.consumed("idempotent", "applied"), 1);
    assert_eq!(c.consumed("idempotent", "duplicate"), 4);
    assert_eq!(c.db.effects(envelope.id).await, 1, "effect exactly once");
    assert_eq!(handler.calls(), 1, "the handler is not even called again");
    assert_eq!(c.inbox("idempotent").await, 1);
    // The handler ran in a span whose parent is the message's traceparent.
    assert_eq!(
        handler
            .trace_ids
            .lock()
            .unwrap()
            .first()
            .cloned()
            .flatten()
            .as_deref(),
        Some(trace_id)
    );
    assert!(consumer.is_running());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transient_failures_are_retried_with_backoff_and_applied_once() {
    let c = ctx().await;
    let flaky = RecordingHandler {
        fail_transient_first: 2,
        ..Default::default()
    };
    let (handler, _consumer) = c.recording("flaky", flaky).await;

    let envelope = Envelope::new("tester", EVENT, json!({}));
    let started = Instant::now();
    c.publish(&envelope).await;
    eventually("applied after the retries", WAIT, || async {
        c.consumed("flaky", "applied") == 1
    })
    .await;
    let elapsed = started.elapsed();

    assert_eq!(handler.calls(), 3, "two failures, then success");
    assert_eq!(c.consumed("flaky", "retried"), 2);
    // Each failed attempt wrote its effect too, and the rollback took it back.
    assert_eq!(c.db.effects(envelope.id).await, 1);
    assert_eq!(c.inbox("flaky").await, 1);
    // Retries wait 1 s, then 2 s: no hot loop.
    assert!(elapsed >= Duration::from_millis(2900), "{elapsed:?}");
    assert_eq!(c.dead_lettered("flaky", EVENT), 0);
    assert!(
        c.dlq_message("flaky", Duration::from_millis(500))
            .await
            .is_none()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_permanent_failure_goes_to_the_dead_letter_queue_at_once() {
    let c = ctx().await;
    let doomed = RecordingHandler {
        fail_permanently: true,
        ..Default::default()
    };
    let (handler, consumer) = c.recording("doomed", doomed).await;

    let envelope = Envelope::new("tester", EVENT, json!({"bad": true}));
    c.publish(&envelope).await;
    let (_, back) = c.dead_envelope("doomed").await;
    assert_eq!(back, envelope);
    assert_eq!(c.dead_lettered("doomed", EVENT), 1);
    assert_eq!(c.consumed("doomed", "dead_lettered"), 1);

    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(handler.calls(), 1, "no retry, no requeue");
    assert_eq!(
        c.db.effects(envelope.id).await,
        0,
        "its effect was rolled back"
    );
    assert_eq!(c.inbox("doomed").await, 0);
    assert!(consumer.is_running());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_are_bounded_then_the_event_is_dead_lettered() {
    let c = ctx().await;
    let handler = Arc::new(RecordingHandler {
        fail_transient_first: u32::MAX,
        ..Default::default()
    });
    let spec = ConsumerSpec {
        max_retries: 2,
        ..ConsumerSpec::new("hopeless", [EVENT])
    };
    let _consumer = c.consuming(spec, handler.clone()).await;

    let envelope = Envelope::new("tester", EVENT, json!({}));
    c.publish(&envelope).await;
    let (dead, back) = c.dead_envelope("hopeless").await;
    assert_eq!(back.id, envelope.id);
    let retries = dead
        .properties
        .headers()
        .as_ref()
        .and_then(|h| h.inner().get(RETRY_HEADER).cloned());
    assert_eq!(retries, Some(lapin::types::AMQPValue::LongLongInt(2)));
    assert_eq!(handler.calls(), 3, "first attempt + 2 retries");
    assert_eq!(c.consumed("hopeless", "retried"), 2);
    assert_eq!(c.dead_lettered("hopeless", EVENT), 1);
    assert_eq!(c.db.effects(envelope.id).await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unparseable_message_is_dead_lettered_and_counted() {
    let c = ctx().await;
    let (handler, _consumer) = c.recording("strict", RecordingHandler::default()).await;

    publish_raw(
        &c.channel,
        &c.settings,
        EVENT,
        b"{not json",
        lapin::BasicProperties::default(),
    )
    .await;
    let dead = c.dlq_message("strict", WAIT).await.expect("in the DLQ");
    assert_eq!(dead.data, b"{not json");
    assert_eq!(c.dead_lettered("strict", "unparseable"), 1);
    assert_eq!(handler.calls(), 0);

    // And the consumer goes on with good events.
    let envelope = Envelope::new("tester", EVENT, json!({}));
    c.publish(&envelope).await;
    eventually("the good event is applied", WAIT, || async {
        c.consumed("strict", "applied") == 1
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broadcast_listener_gets_its_event_types_only() {
    let c = ctx().await;
    // A listener of `session.revoked` and what it got.
    let listen = || {
        let seen = Arc::new(Mutex::new(Vec::<Envelope>::new()));
        let sink = seen.clone();
        let bindings = vec!["session.revoked".to_owned()];
        let listener = spawn_broadcast_listener(c.broker.clone(), bindings, move |e| {
            sink.lock().unwrap().push(e);
        });
        (seen, listener)
    };
    let (seen, listener) = listen();
    // A second instance: every instance gets every event.
    let (seen2, listener2) = listen();
    assert!(listener.wait_consuming(WAIT).await);
    assert!(listener2.wait_consuming(WAIT).await);

    let other = Envelope::new("auth", "user.updated", json!({}));
    let revoked = Envelope::new("auth", "session.revoked", json!({"session_id": "s1"}));
    c.publish(&other).await;
    c.publish(&revoked).await;
    eventually("each listener got its one event", WAIT, || async {
        seen.lock().unwrap().len() == 1 && seen2.lock().unwrap().len() == 1
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(*seen.lock().unwrap(), vec![revoked.clone()]);
    assert_eq!(*seen2.lock().unwrap(), vec![revoked]);

    listener.stop();
    eventually("the stopped listener ends", WAIT, || async {
        !listener.is_running()
    })
    .await;
    assert!(listener2.is_running());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_shutdown_stops_every_loop() {
    let c = ctx().await;
    let consumer = c.consume(
        ConsumerSpec::new("stopping", [EVENT]),
        Arc::new(RecordingHandler::default()),
    );
    let listener = spawn_broadcast_listener(c.broker.clone(), vec![EVENT.to_owned()], |_| {});
    let relay = OutboxRelay::spawn(
        c.db.pool.clone(),
        c.broker.clone(),
        "tester",
        c.metrics.clone(),
    );
    assert!(consumer.wait_consuming(WAIT).await);
    assert!(listener.wait_consuming(WAIT).await);
    assert!(c.broker.ping().await.is_ok());

    c.broker.shutdown().await;
    eventually("every loop ends", WAIT, || async {
        !consumer.is_running() && !listener.is_running() && !relay.is_running()
    })
    .await;
    assert!(!c.broker.is_connected());
    assert!(c.broker.ping().await.is_err());
}

/// A consumer of a contract event that records each payload it could read.
struct TypedHandler;

impl zimmer_events::EventHandler for TypedHandler {
    fn handle<'a>(
        &'a self,
        conn: &'a mut diesel_async::AsyncPgConnection,
        event: &'a Envelope,
    ) -> zimmer_events::BoxFuture<'a, Result<(), zimmer_events::HandlerError>> {
        Box::pin(async move {
            use diesel_async::RunQueryDsl;
            let _p: zimmer_events::contracts::PaymentFailed = event.decode()?;
            diesel::sql_query("INSERT INTO test_effects (event_id) VALUES ($1::uuid)")
                .bind::<diesel::sql_types::Text, _>(event.id.to_string())
                .execute(conn)
                .await?;
            Ok(())
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_event_version_is_dead_lettered_not_guessed_at() {
    use zimmer_events::contracts::PaymentFailed;
    let c = ctx().await;
    let consumer = c
        .consuming(
            ConsumerSpec::new("versioned", ["payment.failed"]),
            Arc::new(TypedHandler),
        )
        .await;

    let payload = PaymentFailed {
        payment_id: 7,
        user_id: 8,
        reason: Some("canceled".into()),
    };
    let known = Envelope::of("billing", &payload).unwrap();
    assert_eq!(known.version, 1);
    // A newer producer: same type, a payload version this consumer was not built with.
    let newer = Envelope {
        version: 2,
        ..Envelope::of("billing", &payload).unwrap()
    };
    c.publish(&newer).await;
    c.publish(&known).await;

    let (_, back) = c.dead_envelope("versioned").await;
    assert_eq!(back.id, newer.id);
    assert_eq!(back.version, 2);
    eventually("the known version is applied", WAIT, || async {
        c.consumed_type("versioned", "payment.failed", "applied") == 1
    })
    .await;
    assert_eq!(c.dead_lettered("versioned", "payment.failed"), 1);
    assert_eq!(c.db.effects(newer.id).await, 0, "no effect from version 2");
    assert_eq!(c.db.effects(known.id).await, 1);
    // Not retried: nothing waits in the retry queue and nothing else reaches the DLQ.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        c.dlq_message("versioned", Duration::from_millis(300))
            .await
            .is_none()
    );
    assert_eq!(c.consumed_type("versioned", "payment.failed", "retried"), 0);
    assert!(consumer.is_running());
}
