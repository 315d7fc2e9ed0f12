//! Test helpers: a database of its own per test, an exchange of its own per test, a probe
//! queue to see what reaches the broker, and a TCP proxy to take the broker "down" and back.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use std::{
    future::Future,
    net::SocketAddr,
    sync::{
        Arc, Mutex, OnceLock,
        atomic::{AtomicU32, Ordering},
    },
    time::Duration,
};

use diesel::sql_types::{BigInt, Text};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use lapin::{
    BasicProperties, Channel, Connection, ConnectionProperties,
    message::Delivery,
    options::{
        BasicAckOptions, BasicConsumeOptions, BasicGetOptions, BasicPublishOptions,
        ConfirmSelectOptions, QueueBindOptions, QueueDeclareOptions,
    },
    types::{AMQPValue, FieldTable},
};
use tokio::{net::TcpSocket, task::JoinHandle};
use uuid::Uuid;
use zimmer_config::{AmqpSettings, DatabaseSettings, Secret};
use zimmer_db::DbPool;
use zimmer_events::{
    BoxFuture, Broker, BrokerOptions, ConsumerHandle, ConsumerSpec, Envelope, EventHandler,
    HandlerError, spawn_consumer,
};
use zimmer_telemetry::Metrics;

pub const WAIT: Duration = Duration::from_secs(30);

pub fn database_url() -> String {
    std::env::var("DATABASE_URL")
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/zimmer".to_owned())
}

pub fn amqp_url() -> String {
    std::env::var("AMQP_URL")
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| "amqp://guest:guest@127.0.0.1:5672/%2f".to_owned())
}

/// `url` with its database name replaced.
fn with_database(url: &str, db: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map(|i| i + 3).unwrap_or(0);
    let host_end = base[scheme_end..]
        .find('/')
        .map(|i| scheme_end + i)
        .unwrap_or(base.len());
    let mut out = format!("{}/{db}", &base[..host_end]);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
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

/// A freshly created and migrated database, dropped WITH (FORCE) when this value drops
/// (also when the test panics).
pub struct TestDb {
    pub name: String,
    pub url: String,
    pub pool: DbPool,
}

impl TestDb {
    pub async fn new() -> TestDb {
        let name = format!("zimmer_test_events_{}", Uuid::new_v4().simple());
        let admin = with_database(&database_url(), "postgres");
        let mut conn = AsyncPgConnection::establish(&admin)
            .await
            .expect("connect to PostgreSQL (DATABASE_URL)");
        diesel::sql_query(format!("CREATE DATABASE \"{name}\""))
            .execute(&mut conn)
            .await
            .expect("create test database");
        let url = with_database(&database_url(), &name);
        zimmer_db::migrate(&url).await.expect("migrate");
        let pool = zimmer_db::connect_pool(
            &DatabaseSettings {
                url: Secret::new(url.clone()),
                pool_size: 8,
                wait_timeout: Duration::from_secs(5),
                statement_timeout: Duration::from_secs(15),
            },
            "zimmer-events-test",
        )
        .expect("pool");
        TestDb { name, url, pool }
    }

    pub async fn exec(&self, sql: &str) {
        let mut conn = self.pool.get().await.unwrap();
        diesel::sql_query(sql).execute(&mut conn).await.unwrap();
    }

    pub async fn count(&self, sql: &str) -> i64 {
        #[derive(diesel::QueryableByName)]
        struct N {
            #[diesel(sql_type = BigInt)]
            n: i64,
        }
        let mut conn = self.pool.get().await.unwrap();
        diesel::sql_query(sql)
            .get_result::<N>(&mut conn)
            .await
            .unwrap()
            .n
    }

    /// Waits (up to [`WAIT`]) until the count query returns `expected`.
    pub async fn wait_count(&self, sql: &str, expected: i64) -> bool {
        eventually(WAIT, || async { self.count(sql).await == expected }).await
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

impl Drop for TestDb {
    fn drop(&mut self) {
        let name = self.name.clone();
        let admin = with_database(&database_url(), "postgres");
        // Drop cannot await: do it on a thread with its own runtime.
        let done = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let mut conn = AsyncPgConnection::establish(&admin).await?;
                diesel::sql_query(format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                    .execute(&mut conn)
                    .await?;
                Ok::<_, anyhow::Error>(())
            })
        })
        .join();
        if !matches!(done, Ok(Ok(()))) {
            eprintln!("warning: could not drop test database {}", self.name);
        }
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
    db: &TestDb,
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

/// Polls `check` until it is true or `timeout` passes.
pub async fn eventually<F, Fut>(timeout: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if check().await {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
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

/// A TCP proxy in front of RabbitMQ that a test can take down (connections cut, port closed)
/// and bring back up on the same port: a broker restart we can cause from a test.
pub struct Proxy {
    pub port: u16,
    target: SocketAddr,
    accept: Mutex<Option<JoinHandle<()>>>,
    conns: Arc<Mutex<Vec<JoinHandle<()>>>>,
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
/// own probe and publisher, which see and send across the outage).
pub async fn proxied() -> (Proxy, AmqpSettings, AmqpSettings) {
    let proxy = Proxy::start().await;
    let settings = amqp_settings_with_url(proxy.url());
    let direct = AmqpSettings {
        url: Secret::new(amqp_url()),
        ..settings.clone()
    };
    (proxy, settings, direct)
}

impl Proxy {
    pub async fn start() -> Proxy {
        let uri: lapin::uri::AMQPUri = amqp_url().parse().unwrap();
        let target = tokio::net::lookup_host((uri.authority.host.as_str(), uri.authority.port))
            .await
            .unwrap()
            .next()
            .unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let proxy = Proxy {
            port,
            target,
            accept: Mutex::new(None),
            conns: Arc::new(Mutex::new(Vec::new())),
        };
        proxy.serve(listener);
        proxy
    }

    /// The broker's URL through the proxy.
    pub fn url(&self) -> String {
        let uri: lapin::uri::AMQPUri = amqp_url().parse().unwrap();
        let vhost = if uri.vhost == "/" {
            "%2f".to_owned()
        } else {
            uri.vhost.clone()
        };
        format!(
            "amqp://{}:{}@127.0.0.1:{}/{vhost}",
            uri.authority.userinfo.username, uri.authority.userinfo.password, self.port
        )
    }

    fn serve(&self, listener: tokio::net::TcpListener) {
        let target = self.target;
        let conns = self.conns.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                };
                let conn = tokio::spawn(async move {
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                conns.lock().unwrap().push(conn);
            }
        });
        *self.accept.lock().unwrap() = Some(task);
    }

    /// Broker "down": the port refuses connections and every open connection is cut.
    pub async fn down(&self) {
        if let Some(task) = self.accept.lock().unwrap().take() {
            task.abort();
        }
        for conn in self.conns.lock().unwrap().drain(..) {
            conn.abort();
        }
        // Let the aborted tasks drop their sockets.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    /// Broker "back": accept again on the same port.
    pub async fn up(&self) {
        let socket = TcpSocket::new_v4().unwrap();
        socket.set_reuseaddr(true).unwrap();
        let addr: SocketAddr = format!("127.0.0.1:{}", self.port).parse().unwrap();
        let mut attempts = 0;
        loop {
            match socket.bind(addr) {
                Ok(()) => break,
                Err(_) if attempts < 50 => {
                    attempts += 1;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => panic!("cannot rebind proxy port: {e}"),
            }
        }
        let listener = socket.listen(128).unwrap();
        self.serve(listener);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        if let Some(task) = self.accept.lock().unwrap().take() {
            task.abort();
        }
        for conn in self.conns.lock().unwrap().drain(..) {
            conn.abort();
        }
    }
}

/// A port nothing listens on.
pub async fn closed_port() -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    port
}
