//! The events tests' own helpers on top of the test kit's database, proxy and polling: a pool
//! on the test's database, an exchange of its own per test, a probe queue to see what reaches
//! the broker, publishing, and a recording handler.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use std::{
    sync::{
        Arc, Mutex, OnceLock,
        atomic::{AtomicU32, Ordering},
    },
    time::Duration,
};

use diesel::sql_types::Text;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use lapin::{
    BasicProperties, Channel, Connection, ConnectionProperties,
    message::Delivery,
    options::{
        BasicAckOptions, BasicConsumeOptions, BasicGetOptions, BasicPublishOptions,
        ConfirmSelectOptions, QueueBindOptions, QueueDeclareOptions,
    },
    types::{AMQPValue, FieldTable},
};
use uuid::Uuid;
use zimmer_config::{AmqpSettings, DatabaseSettings, Secret};
use zimmer_db::DbPool;
use zimmer_events::{
    BoxFuture, Broker, BrokerOptions, ConsumerHandle, ConsumerSpec, Envelope, EventHandler,
    HandlerError, spawn_consumer,
};
use zimmer_telemetry::Metrics;
use zimmer_testkit::ToggleProxy;

pub const WAIT: Duration = Duration::from_secs(30);

pub fn amqp_url() -> String {
    std::env::var("AMQP_URL")
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| "amqp://guest:guest@127.0.0.1:5672/%2f".to_owned())
}

/// Installs tracing + OpenTelemetry once per test process, so spans carry trace context as
/// in the services. Logs only with `RUST_LOG` set, through the test writer (captured).
pub fn init_telemetry() {
    use opentelemetry::trace::TracerProvider as _;
    use tracing_subscriber::{EnvFilter, Layer, layer::SubscriberExt, util::SubscriberInitExt};
    static INIT: OnceLock<()> = OnceLock::new();
    INIT.get_or_init(|| {
        opentelemetry::global::set_text_map_propagator(
            opentelemetry_sdk::propagation::TraceContextPropagator::new(),
        );
        let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder().build();
        let tracer = provider.tracer("zimmer-events-test");
        opentelemetry::global::set_tracer_provider(provider);
        let logs = std::env::var_os("RUST_LOG").map(|_| {
            tracing_subscriber::fmt::layer()
                .with_test_writer()
                .with_filter(EnvFilter::from_default_env())
        });
        let _ = tracing_subscriber::registry()
            .with(tracing_opentelemetry::layer().with_tracer(tracer))
            .with(logs)
            .try_init();
    });
}

/// The test kit's database of the test's own, with a pool on it as the services build theirs.
pub struct Db {
    pub pool: DbPool,
    /// Dropped after the pool: the database goes last.
    database: zimmer_testkit::TestDb,
}

impl Db {
    pub async fn new() -> Db {
        let database = zimmer_testkit::TestDb::new().await;
        let pool = zimmer_db::connect_pool(
            &DatabaseSettings {
                url: Secret::new(database.url.clone()),
                pool_size: 8,
                wait_timeout: Duration::from_secs(5),
                statement_timeout: Duration::from_secs(15),
            },
            "zimmer-events-test",
        )
        .expect("pool");
        Db { pool, database }
    }

    pub async fn exec(&self, sql: &str) {
        let mut conn = self.pool.get().await.unwrap();
        diesel::sql_query(sql).execute(&mut conn).await.unwrap();
    }

    pub async fn count(&self, sql: &str) -> i64 {
        zimmer_testkit::count(&mut self.pool.get().await.unwrap(), sql).await
    }

    /// Waits (up to [`WAIT`]) until the count query returns `expected`; panics with `what`.
    pub async fn wait_count(&self, what: &str, sql: &str, expected: i64) {
        zimmer_testkit::eventually(what, WAIT, || async { self.count(sql).await == expected })
            .await;
    }

    /// The table the test handlers write their effect to.
    pub async fn create_effects_table(&self) {
        self.exec(
            "CREATE TABLE test_effects (id BIGSERIAL PRIMARY KEY, event_id UUID NOT NULL, \
             created_at TIMESTAMPTZ NOT NULL DEFAULT now())",
        )
        .await;
    }

    pub async fn effects(&self, event_id: Uuid) -> i64 {
        self.count(&format!(
            "SELECT count(*) AS n FROM test_effects WHERE event_id = '{event_id}'"
        ))
        .await
    }
}

/// Settings with an exchange of the test's own; transient so the broker forgets it all.
pub fn amqp_settings() -> AmqpSettings {
    amqp_settings_with_url(amqp_url())
}

pub fn amqp_settings_with_url(url: String) -> AmqpSettings {
    AmqpSettings {
        url: Secret::new(url),
        exchange: format!("t{}.events", Uuid::new_v4().simple()),
        transient: true,
    }
}

/// `spawn_consumer` of `spec` and `handler` on the test's database, broker and metrics.
pub fn spawn_on(
    db: &Db,
    broker: &Broker,
    metrics: &Metrics,
    spec: ConsumerSpec,
    handler: Arc<dyn EventHandler>,
) -> ConsumerHandle {
    spawn_consumer(
        db.pool.clone(),
        broker.clone(),
        spec,
        handler,
        metrics.clone(),
    )
}

/// A consumer of `queue` on `channel` (acks are the caller's).
pub async fn consume(channel: &Channel, queue: &str, tag: &str) -> lapin::Consumer {
    channel
        .basic_consume(
            queue.into(),
            tag.into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap()
}

pub async fn connect() -> Connection {
    Connection::connect(&amqp_url(), ConnectionProperties::default())
        .await
        .expect("connect to RabbitMQ (AMQP_URL)")
}

/// A test-side queue bound to the test exchange: shows exactly what the broker routed.
pub struct Probe {
    pub conn: Connection,
    pub channel: Channel,
    pub queue: String,
    consumer: lapin::Consumer,
}

impl Probe {
    pub async fn bind(settings: &AmqpSettings, binding: &str) -> Probe {
        let conn = Connection::connect(settings.url.expose(), ConnectionProperties::default())
            .await
            .unwrap();
        let channel = conn.create_channel().await.unwrap();
        zimmer_events::topology::declare_exchanges(&channel, settings)
            .await
            .unwrap();
        let queue = format!("{}.probe.{}", settings.exchange, Uuid::new_v4().simple());
        let mut args = FieldTable::default();
        args.insert("x-expires".into(), AMQPValue::LongLongInt(300_000));
        channel
            .queue_declare(
                queue.as_str().into(),
                QueueDeclareOptions::exclusive().auto_delete(),
                args,
            )
            .await
            .unwrap();
        channel
            .queue_bind(
                queue.as_str().into(),
                settings.exchange.as_str().into(),
                binding.into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
            .unwrap();
        let consumer = consume(&channel, &queue, "").await;
        Probe {
            conn,
            channel,
            queue,
            consumer,
        }
    }

    /// The next message within `timeout` (acked), or None.
    pub async fn next(&mut self, timeout: Duration) -> Option<Delivery> {
        use futures_util::StreamExt;
        let d = tokio::time::timeout(timeout, self.consumer.next())
            .await
            .ok()??
            .ok()?;
        d.acker.ack(BasicAckOptions::default()).await.unwrap();
        Some(d)
    }
}

/// Publishes a raw message to the test exchange with publisher confirms.
pub async fn publish_raw(
    channel: &Channel,
    settings: &AmqpSettings,
    routing_key: &str,
    body: &[u8],
    properties: BasicProperties,
) {
    let confirm = channel
        .basic_publish(
            settings.exchange.as_str().into(),
            routing_key.into(),
            BasicPublishOptions::default(),
            body,
            properties,
        )
        .await
        .unwrap()
        .await
        .unwrap();
    assert!(confirm.is_ack());
}

pub async fn publisher_channel(conn: &Connection) -> Channel {
    let channel = conn.create_channel().await.unwrap();
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    channel
}

pub async fn publish_envelope(
    channel: &Channel,
    settings: &AmqpSettings,
    envelope: &Envelope,
    headers: &std::collections::HashMap<String, String>,
) {
    publish_raw(
        channel,
        settings,
        &envelope.event_type,
        &serde_json::to_vec(envelope).unwrap(),
        envelope.amqp_properties(headers),
    )
    .await;
}

/// Reads one message from `queue` (basic.get, auto-ack), waiting up to `timeout`.
pub async fn get_one(channel: &Channel, queue: &str, timeout: Duration) -> Option<Delivery> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(m) = channel
            .basic_get(queue.into(), BasicGetOptions { no_ack: true })
            .await
            .unwrap()
        {
            return Some(m.delivery);
        }
        if tokio::time::Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Lets a test hold the handler inside its transaction until the test says go.
#[derive(Default)]
pub struct Gate {
    pub entered: tokio::sync::Notify,
    pub release: tokio::sync::Notify,
}

/// A handler whose effect is a row in `test_effects`, written BEFORE it decides to fail, so a
/// failed attempt that left its effect behind would show.
#[derive(Default)]
pub struct RecordingHandler {
    pub calls: AtomicU32,
    /// The first N calls fail transiently.
    pub fail_transient_first: u32,
    pub fail_permanently: bool,
    /// Holds the first call (after its effect) until released.
    pub gate: Option<Arc<Gate>>,
    /// The trace id seen inside the handler, per call.
    pub trace_ids: Mutex<Vec<Option<String>>>,
    /// The retry header seen per call isn't visible to handlers; the envelope ids are.
    pub seen: Mutex<Vec<Uuid>>,
}

impl RecordingHandler {
    pub fn calls(&self) -> u32 {
        AtomicU32::load(&self.calls, Ordering::SeqCst) // method syntax hits RunQueryDsl::load
    }
}

impl EventHandler for RecordingHandler {
    fn handle<'a>(
        &'a self,
        conn: &'a mut AsyncPgConnection,
        event: &'a Envelope,
    ) -> BoxFuture<'a, Result<(), HandlerError>> {
        Box::pin(async move {
            let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
            self.trace_ids
                .lock()
                .unwrap()
                .push(zimmer_telemetry::current_trace_id());
            self.seen.lock().unwrap().push(event.id);
            diesel::sql_query("INSERT INTO test_effects (event_id) VALUES ($1::uuid)")
                .bind::<Text, _>(event.id.to_string())
                .execute(conn)
                .await?;
            if n == 1
                && let Some(gate) = &self.gate
            {
                gate.entered.notify_one();
                let _ = tokio::time::timeout(WAIT, gate.release.notified()).await;
            }
            if self.fail_permanently {
                return Err(HandlerError::permanent(anyhow::anyhow!(
                    "this event can never be handled"
                )));
            }
            if n <= self.fail_transient_first {
                return Err(HandlerError::transient(anyhow::anyhow!(
                    "flaky dependency (attempt {n})"
                )));
            }
            Ok(())
        })
    }
}

/// Broker options with lapin's recovery bounds shortened, so an outage "longer than lapin's
/// own recovery" (after which the supervisor replaces the connection) takes seconds; the
/// mechanism is the same as with the defaults.
pub fn short_recovery() -> BrokerOptions {
    BrokerOptions {
        recovery_retries: 1,
        recovery_max_delay: Duration::from_millis(500),
        abandon_after: Duration::from_secs(3),
    }
}

/// A proxy in front of RabbitMQ and settings for an exchange of the test's own: the first
/// through the proxy (for the code under test), the second straight to RabbitMQ (for the test's
/// own probe and publisher, which see and send across the outage). The test takes the broker
/// "down" with [`ToggleProxy::close`] (connections cut, port closed: a broker stopped) and
/// back with [`ToggleProxy::reopen`] (same port). Not `disable`: lapin takes a connect that is
/// accepted and hung up on as a failed handshake and ends the connection in an error, so a
/// long outage would never reach the stuck reconnect the supervisor exists for.
pub async fn proxied() -> (ToggleProxy, AmqpSettings, AmqpSettings) {
    let uri: lapin::uri::AMQPUri = amqp_url().parse().unwrap();
    let upstream = format!("{}:{}", uri.authority.host, uri.authority.port);
    let proxy = ToggleProxy::start(&upstream, true).await;
    let settings = amqp_settings_with_url(proxy.url_via(&amqp_url()));
    let direct = AmqpSettings {
        url: Secret::new(amqp_url()),
        ..settings.clone()
    };
    (proxy, settings, direct)
}
