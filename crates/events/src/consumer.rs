//! Durable idempotent consumers and the in-memory broadcast listener.

use std::{
    collections::BTreeMap,
    panic::AssertUnwindSafe,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use diesel_async::{AsyncConnection, AsyncPgConnection};
use futures_util::{FutureExt, StreamExt, future::BoxFuture};
use lapin::{
    Channel, Confirmation, Connection,
    message::Delivery,
    options::{
        BasicAckOptions, BasicConsumeOptions, BasicNackOptions, BasicPublishOptions,
        BasicQosOptions, QueueDeclareOptions,
    },
    types::{AMQPValue, FieldTable, ShortString},
};
use tokio::sync::watch;
use tracing::Instrument;
use uuid::Uuid;
use zimmer_config::Backoff;
use zimmer_db::{DbPool, models::NewInboxRow, schema::inbox};
use zimmer_telemetry::Metrics;

use crate::{
    broker::{AMQP_OP_TIMEOUT, Broker, BrokerError, bounded, close_channel, open_channel_on},
    envelope::{DecodeError, Envelope, int_header, string_headers},
    topology,
};

/// Header carrying how many times a message went through the retry queue.
pub const RETRY_HEADER: &str = "x-retry-count";

const RETRY_CAP: Duration = Duration::from_secs(60);
/// Redelivery schedule: 1 s, 2 s, 4 s… capped at a minute.
const RETRY: Backoff = Backoff::new(Duration::from_secs(1), RETRY_CAP);
/// How long to wait for lapin to recover a channel before rebuilding it ourselves.
const RECOVERY_TIMEOUT: Duration = Duration::from_secs(90);
const REBUILD_MIN: Duration = Duration::from_millis(500);
const REBUILD_MAX: Duration = Duration::from_secs(10);
/// Pause before requeueing while no database connection is available.
const DB_BACKOFF: Backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(30));
const STATUS_POLL: Duration = Duration::from_millis(250);
/// How often a consumer samples its queue depth (consumer lag) for `/metrics`.
const QUEUE_DEPTH_INTERVAL: Duration = Duration::from_secs(15);

/// Why a handler failed, which decides what happens to the message.
#[derive(Debug)]
pub enum HandlerError {
    /// Might succeed later (database hiccup, another service down): retried with backoff,
    /// then dead-lettered after `max_retries`.
    Transient(anyhow::Error),
    /// Will never succeed (malformed data, impossible state): dead-lettered at once.
    Permanent(anyhow::Error),
}

impl HandlerError {
    pub fn transient(e: impl Into<anyhow::Error>) -> Self {
        Self::Transient(e.into())
    }
    pub fn permanent(e: impl Into<anyhow::Error>) -> Self {
        Self::Permanent(e.into())
    }
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Transient(_))
    }
}

impl std::fmt::Display for HandlerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Transient(e) => write!(f, "transient: {e:#}"),
            Self::Permanent(e) => write!(f, "permanent: {e:#}"),
        }
    }
}

impl std::error::Error for HandlerError {}

/// Database errors are worth retrying (the transaction rolled back, nothing was applied).
impl From<diesel::result::Error> for HandlerError {
    fn from(e: diesel::result::Error) -> Self {
        Self::Transient(e.into())
    }
}

/// `event.data_as::<T>()?` failing means the payload does not match: retrying cannot help.
impl From<serde_json::Error> for HandlerError {
    fn from(e: serde_json::Error) -> Self {
        Self::Permanent(e.into())
    }
}

/// A payload this consumer cannot read (wrong type, unknown version, malformed): retrying
/// cannot help, so it is dead-lettered at once.
impl From<DecodeError> for HandlerError {
    fn from(e: DecodeError) -> Self {
        Self::Permanent(e.into())
    }
}

/// What a consumer does with an event, inside the transaction that records it in the inbox.
pub trait EventHandler: Send + Sync + 'static {
    fn handle<'a>(
        &'a self,
        conn: &'a mut AsyncPgConnection,
        event: &'a Envelope,
    ) -> BoxFuture<'a, Result<(), HandlerError>>;
}

/// A durable consumer: queue `<exchange>.<name>` bound to `bindings`.
#[derive(Debug, Clone)]
pub struct ConsumerSpec {
    /// Also the inbox's `consumer` column: renaming a consumer forgets what it handled.
    pub name: &'static str,
    /// Routing keys (event types; topic wildcards allowed).
    pub bindings: Vec<String>,
    pub prefetch: u16,
    pub max_retries: u32,
}

impl ConsumerSpec {
    pub const DEFAULT_PREFETCH: u16 = 16;
    pub const DEFAULT_MAX_RETRIES: u32 = 5;

    pub fn new<I, S>(name: &'static str, bindings: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self {
            name,
            bindings: bindings.into_iter().map(Into::into).collect(),
            prefetch: Self::DEFAULT_PREFETCH,
            max_retries: Self::DEFAULT_MAX_RETRIES,
        }
    }
}

/// What [`apply_once`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// First time: the handler ran and its effect committed with the inbox row.
    Applied,
    /// Handled before by this consumer: nothing done.
    Duplicate,
}

/// In ONE transaction: record `(consumer, event.id)` in the inbox and, only if it was not
/// there, run the handler on the same connection. Commit makes both visible together;
/// a handler error rolls both back.
pub async fn apply_once(
    conn: &mut AsyncPgConnection,
    consumer: &str,
    event: &Envelope,
    handler: &dyn EventHandler,
) -> Result<Outcome, HandlerError> {
    // Scoped: `RunQueryDsl::load` would shadow `AtomicBool::load` in this module.
    use diesel_async::RunQueryDsl;
    conn.transaction(async |conn| {
        let inserted = diesel::insert_into(inbox::table)
            .values(NewInboxRow {
                consumer,
                event_id: event.id,
                event_type: &event.event_type,
            })
            .on_conflict_do_nothing()
            .execute(conn)
            .await?;
        if inserted == 0 {
            return Ok(Outcome::Duplicate);
        }
        handler.handle(conn, event).await?;
        Ok(Outcome::Applied)
    })
    .await
}

/// The delay before retry number `retry` (0-based): 1s, 2s, 4s… capped at a minute.
pub fn retry_delay(retry: u32) -> Duration {
    RETRY.nth(retry)
}

/// Handle on a consumer loop.
#[derive(Clone)]
pub struct ConsumerHandle {
    state: Arc<HandleState>,
}

struct HandleState {
    name: &'static str,
    running: AtomicBool,
    consuming: watch::Sender<bool>,
    stop: watch::Sender<bool>,
}

impl ConsumerHandle {
    fn new(name: &'static str) -> Self {
        Self {
            state: Arc::new(HandleState {
                name,
                running: AtomicBool::new(true),
                consuming: watch::channel(false).0,
                stop: watch::channel(false).0,
            }),
        }
    }

    pub fn name(&self) -> &'static str {
        self.state.name
    }

    /// False once the loop has ended (stopped, broker shut down, or died): a liveness failure.
    pub fn is_running(&self) -> bool {
        self.state.running.load(Ordering::SeqCst)
    }

    /// True while subscribed to the queue (false while the broker is away).
    pub fn is_consuming(&self) -> bool {
        *self.state.consuming.borrow()
    }

    /// Waits up to `timeout` until the consumer is subscribed.
    pub async fn wait_consuming(&self, timeout: Duration) -> bool {
        let mut rx = self.state.consuming.subscribe();
        tokio::time::timeout(timeout, rx.wait_for(|c| *c))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    /// Stops consuming (after the message in hand); unacked prefetched messages are requeued.
    pub fn stop(&self) {
        self.state.stop.send_replace(true);
    }

    /// A `/healthz` check named after the consumer: fails when its loop has ended.
    pub fn liveness_check(&self) -> zimmer_health::Check {
        let handle = self.clone();
        zimmer_health::Check::flag(self.state.name, "consumer stopped", move || {
            handle.is_running()
        })
    }

    fn set_consuming(&self, value: bool) {
        self.state.consuming.send_if_modified(|c| {
            let changed = *c != value;
            *c = value;
            changed
        });
    }

    async fn stopped(&self) {
        let mut rx = self.state.stop.subscribe();
        let _ = rx.wait_for(|s| *s).await;
    }

    fn stop_requested(&self) -> bool {
        *self.state.stop.borrow()
    }
}

/// Flags the loop as ended however its task ends (panic included).
struct RunningGuard(ConsumerHandle);

impl Drop for RunningGuard {
    fn drop(&mut self) {
        self.0.set_consuming(false);
        self.0.state.running.store(false, Ordering::SeqCst);
        // Cancellation (runtime shutdown, abort) is normal at exit; a panic is not.
        if std::thread::panicking() {
            tracing::error!(consumer = self.0.name(), "consumer loop panicked");
        }
    }
}

enum SessionEnd {
    Stop,
    Rebuild(String),
}

/// Drives `session` until stopped, rebuilding it (new channel, re-declared topology, new
/// subscription) whenever it ends, with a capped backoff so a broken setup never spins.
async fn supervise<S, Fut>(broker: Broker, handle: ConsumerHandle, mut session: S)
where
    S: FnMut(Arc<Connection>) -> Fut,
    Fut: Future<Output = SessionEnd>,
{
    let _guard = RunningGuard(handle.clone());
    let mut backoff = Backoff::new(REBUILD_MIN, REBUILD_MAX);
    loop {
        if handle.stop_requested() || broker.is_shut_down() {
            return;
        }
        let conn = tokio::select! {
            c = broker.wait_connection() => c,
            _ = handle.stopped() => return,
        };
        let Some(conn) = conn else {
            return; // broker shut down
        };
        let started = std::time::Instant::now();
        let end = session(conn).await;
        handle.set_consuming(false);
        let delay = match end {
            SessionEnd::Stop => return,
            SessionEnd::Rebuild(reason) => {
                if started.elapsed() > Duration::from_secs(30) {
                    backoff.reset();
                }
                let delay = backoff.next_delay();
                tracing::warn!(consumer = handle.name(), reason = %reason, retry_in_ms = delay.as_millis() as u64, "consumer subscription lost; re-subscribing");
                delay
            }
        };
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = handle.stopped() => return,
        }
    }
}

/// Resolves when the channel stops being usable. lapin does not always tell consumers: when
/// the connection drops it marks channels `Reconnecting` and leaves the delivery stream
/// pending (for ever, if its recovery gives up), so the session watches the status too.
async fn channel_down(channel: &Channel) {
    while channel.status().connected() {
        tokio::time::sleep(STATUS_POLL).await;
    }
}

/// What a session waits on between deliveries: the next item of its delivery stream (an
/// error once the channel goes down, see [`channel_down`]), or the end of the session when its
/// consumer is stopped (the channel closed first) or the broker shuts down.
async fn next_delivery(
    consumer: &mut lapin::Consumer,
    channel: &Channel,
    handle: &ConsumerHandle,
    broker: &Broker,
) -> Result<Option<lapin::Result<Delivery>>, SessionEnd> {
    tokio::select! {
        d = consumer.next() => Ok(d),
        _ = channel_down(channel) => Ok(Some(Err(lapin::ErrorKind::InvalidChannelState(
            lapin::ChannelState::Reconnecting,
            "channel went down",
        ).into()))),
        _ = handle.stopped() => {
            close_channel(channel).await;
            Err(SessionEnd::Stop)
        }
        _ = broker.shutdown_signal() => Err(SessionEnd::Stop),
    }
}

/// After the channel went down: true once lapin has recovered it (the subscription carries
/// on), false when it will not come back on this connection: closed or failed, the
/// connection replaced by the supervisor, or taking too long.
async fn await_recovery(broker: &Broker, conn: &Arc<Connection>, channel: &Channel) -> bool {
    let recovered = async {
        loop {
            let status = channel.status();
            if status.connected() {
                return true;
            }
            if !status.reconnecting() {
                return false;
            }
            tokio::time::sleep(STATUS_POLL).await;
        }
    };
    tokio::select! {
        r = recovered => r,
        _ = broker.connection_lost(conn) => false,
        _ = tokio::time::sleep(RECOVERY_TIMEOUT) => false,
    }
}

/// A session's delivery stream failed (`error`) or ended (`None`). After a failure it waits
/// for lapin to recover the channel (`None`: the subscription carries on); otherwise the
/// channel is closed and the session ends to be rebuilt.
async fn stream_lost(
    broker: &Broker,
    conn: &Arc<Connection>,
    channel: &Channel,
    handle: &ConsumerHandle,
    error: Option<lapin::Error>,
) -> Option<SessionEnd> {
    let reason = match error {
        Some(e) => {
            handle.set_consuming(false);
            tracing::warn!(consumer = handle.name(), error = %e, "consumer channel down; waiting for recovery");
            if await_recovery(broker, conn, channel).await {
                tracing::info!(consumer = handle.name(), "consumer channel recovered");
                handle.set_consuming(true);
                return None;
            }
            "channel not recovered"
        }
        None => "subscription cancelled",
    };
    close_channel(channel).await;
    Some(SessionEnd::Rebuild(reason.to_owned()))
}

/// Sets the channel's prefetch, declares its queues (`declare`) and starts consuming `queue`;
/// if any step fails the channel is closed, so a half-prepared channel never lingers.
async fn start_consuming(
    channel: Channel,
    prefetch: u16,
    declare: impl AsyncFnOnce(&Channel) -> Result<(), BrokerError>,
    queue: &str,
    tag: &str,
) -> Result<(Channel, lapin::Consumer), BrokerError> {
    let consumer = async {
        bounded(
            "basic.qos",
            channel.basic_qos(prefetch, BasicQosOptions::default()),
        )
        .await?;
        declare(&channel).await?;
        bounded(
            "basic.consume",
            channel.basic_consume(
                queue.into(),
                tag.into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            ),
        )
        .await
    }
    .await;
    match consumer {
        Ok(c) => Ok((channel, c)),
        Err(e) => {
            close_channel(&channel).await;
            Err(e)
        }
    }
}

/// Why an ack/nack did not reach the broker, if it did not.
fn settle_failure(
    result: Result<lapin::Result<bool>, tokio::time::error::Elapsed>,
) -> Option<String> {
    match result {
        Ok(Ok(true)) => None,
        Ok(Ok(false)) => Some("channel closed since the delivery".to_owned()),
        Ok(Err(e)) => Some(e.to_string()),
        Err(_) => Some("timed out".to_owned()),
    }
}

/// A durable, idempotent consumer (see the crate docs for the delivery contract).
pub fn spawn_consumer(
    pool: DbPool,
    broker: Broker,
    spec: ConsumerSpec,
    handler: Arc<dyn EventHandler>,
    metrics: Metrics,
) -> ConsumerHandle {
    let handle = ConsumerHandle::new(spec.name);
    let worker = Arc::new(Worker {
        pool,
        broker: broker.clone(),
        queue: topology::queue_name(broker.settings(), spec.name),
        spec,
        handler,
        metrics,
        db_backoff: std::sync::Mutex::new(DB_BACKOFF),
    });
    let h = handle.clone();
    tokio::spawn(supervise(broker, handle.clone(), move |conn| {
        let worker = worker.clone();
        let h = h.clone();
        async move { worker.session(conn, h).await }
    }));
    handle
}

struct Worker {
    pool: DbPool,
    broker: Broker,
    spec: ConsumerSpec,
    queue: String,
    handler: Arc<dyn EventHandler>,
    metrics: Metrics,
    /// Current pause before requeueing when no database connection is available.
    db_backoff: std::sync::Mutex<Backoff>,
}

impl Worker {
    fn name(&self) -> &'static str {
        self.spec.name
    }

    async fn session(&self, conn: Arc<Connection>, handle: ConsumerHandle) -> SessionEnd {
        let (channel, mut consumer) = match self.subscribe(&conn).await {
            Ok(x) => x,
            Err(e) => return SessionEnd::Rebuild(format!("cannot subscribe: {e}")),
        };
        handle.set_consuming(true);
        tracing::info!(consumer = self.name(), queue = %self.queue, "consuming");
        // The first tick is immediate: the gauge exists as soon as the consumer subscribes.
        let mut depth_tick = tokio::time::interval(QUEUE_DEPTH_INTERVAL);
        depth_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            let next = tokio::select! {
                _ = depth_tick.tick() => {
                    self.sample_queue_depth(&conn).await;
                    continue;
                }
                next = next_delivery(&mut consumer, &channel, &handle, &self.broker) => next,
            };
            let next = match next {
                Ok(next) => next,
                Err(end) => return end,
            };
            match next {
                Some(Ok(delivery)) => {
                    if let Err(reason) = self.process(&channel, delivery).await {
                        close_channel(&channel).await;
                        return SessionEnd::Rebuild(reason);
                    }
                }
                lost => {
                    let error = lost.and_then(Result::err);
                    if let Some(end) =
                        stream_lost(&self.broker, &conn, &channel, &handle, error).await
                    {
                        return end;
                    }
                }
            }
        }
    }

    /// Consumer lag: the messages waiting in this consumer's queue and its dead-letter queue,
    /// read with passive declares on a short-lived channel (a failed passive declare closes
    /// its channel, so it must never be the consuming one). Best effort: on error the gauge
    /// keeps its last value until the next tick.
    async fn sample_queue_depth(&self, conn: &Connection) {
        let Ok(channel) = open_channel_on(conn, false).await else {
            return;
        };
        let queues = [
            ("main", self.queue.clone()),
            ("dead_letter", topology::dead_letter_queue_name(&self.queue)),
        ];
        for (kind, queue) in queues {
            let passive = QueueDeclareOptions {
                passive: true,
                ..QueueDeclareOptions::default()
            };
            match bounded(
                "queue.declare",
                channel.queue_declare(queue.as_str().into(), passive, FieldTable::default()),
            )
            .await
            {
                Ok(q) => self
                    .metrics
                    .events_queue_depth
                    .with_label_values(&[self.name(), kind])
                    .set(i64::from(q.message_count())),
                Err(_) => break,
            }
        }
        close_channel(&channel).await;
    }

    async fn subscribe(
        &self,
        conn: &Connection,
    ) -> Result<(Channel, lapin::Consumer), BrokerError> {
        // Confirm mode: the channel also republishes to the retry queue.
        let channel = open_channel_on(conn, true).await?;
        let tag = format!("{}.{}", self.name(), Uuid::new_v4().simple());
        let declare = async |channel: &Channel| {
            let settings = self.broker.settings();
            topology::declare_consumer_queues(channel, settings, self.name(), &self.spec.bindings)
                .await
                .map(drop)
        };
        start_consuming(
            channel,
            self.spec.prefetch.max(1),
            declare,
            &self.queue,
            &tag,
        )
        .await
    }

    fn consumed(&self, event_type: &str, outcome: &str) {
        self.metrics
            .events_consumed
            .with_label_values(&[self.name(), event_type, outcome])
            .inc();
    }

    /// Settles one delivery. `Err` asks for a fresh channel (the message was requeued).
    async fn process(&self, channel: &Channel, delivery: Delivery) -> Result<(), String> {
        let envelope = match serde_json::from_slice::<Envelope>(&delivery.data) {
            Ok(e) => e,
            Err(e) => {
                let message_id = delivery
                    .properties
                    .message_id()
                    .as_ref()
                    .map(|m| m.to_string());
                tracing::warn!(consumer = self.name(), message_id, error = %e, "unparseable event; dead-lettering");
                self.consumed("unparseable", "dead_lettered");
                self.dead_letter(&delivery, "unparseable").await;
                return Ok(());
            }
        };
        let retry_count = int_header(&delivery.properties, RETRY_HEADER)
            .and_then(|n| u32::try_from(n).ok())
            .unwrap_or(0);
        let span = tracing::info_span!(
            "event.consume",
            otel.name = %format!("consume {}", envelope.event_type),
            otel.kind = "consumer",
            messaging.system = "rabbitmq",
            consumer = self.name(),
            event_type = %envelope.event_type,
            event_id = %envelope.id,
            retry_count,
            redelivered = delivery.redelivered,
        );
        let mut headers = string_headers(&delivery.properties);
        if !headers.contains_key("traceparent")
            && let Some(tp) = &envelope.traceparent
        {
            headers.insert("traceparent".to_owned(), tp.clone());
        }
        zimmer_telemetry::set_parent_from(
            &span,
            headers.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        );
        self.settle(channel, &delivery, &envelope, retry_count)
            .instrument(span)
            .await
    }

    async fn settle(
        &self,
        channel: &Channel,
        delivery: &Delivery,
        envelope: &Envelope,
        retry_count: u32,
    ) -> Result<(), String> {
        let event_type = envelope.event_type.as_str();
        let mut conn = match self.pool.get().await {
            Ok(c) => {
                self.reset_db_backoff();
                c
            }
            Err(e) => {
                // The database, not the event, is at fault: do not burn retries; pause (so
                // this is no hot loop) and put the message back.
                let pause = self.next_db_backoff();
                tracing::warn!(consumer = self.name(), error = %e, pause_ms = pause.as_millis() as u64, "no database connection; requeueing");
                self.requeue_after(pause, delivery, event_type).await;
                return Ok(());
            }
        };
        let result = AssertUnwindSafe(apply_once(&mut conn, self.name(), envelope, &*self.handler))
            .catch_unwind()
            .await
            .unwrap_or_else(|_| Err(HandlerError::Permanent(anyhow::anyhow!("handler panicked"))));
        drop(conn);

        match result {
            Ok(Outcome::Applied) => {
                self.ack(delivery).await;
                self.consumed(event_type, "applied");
                tracing::debug!(consumer = self.name(), "event handled");
                Ok(())
            }
            Ok(Outcome::Duplicate) => {
                self.ack(delivery).await;
                self.consumed(event_type, "duplicate");
                tracing::info!(
                    consumer = self.name(),
                    "event already handled; acknowledged without effect"
                );
                Ok(())
            }
            Err(HandlerError::Transient(e)) if retry_count < self.spec.max_retries => {
                let delay = retry_delay(retry_count);
                match self
                    .schedule_retry(channel, delivery, retry_count + 1, delay)
                    .await
                {
                    Ok(()) => {
                        // The copy is safely in the retry queue: only now drop the original.
                        self.ack(delivery).await;
                        self.consumed(event_type, "retried");
                        tracing::warn!(
                            consumer = self.name(),
                            error = format!("{e:#}"),
                            retry = retry_count + 1,
                            delay_ms = delay.as_millis() as u64,
                            "event handler failed; retry scheduled"
                        );
                        Ok(())
                    }
                    Err(pe) => {
                        tracing::warn!(consumer = self.name(), error = format!("{e:#}"), publish_error = %pe, "event handler failed and the retry could not be scheduled; requeueing");
                        self.requeue_after(Duration::from_secs(1), delivery, event_type)
                            .await;
                        Err(format!("retry publish failed: {pe}"))
                    }
                }
            }
            Err(HandlerError::Transient(e)) => {
                tracing::error!(
                    consumer = self.name(),
                    error = format!("{e:#}"),
                    retries = retry_count,
                    "event handler kept failing; dead-lettering"
                );
                self.dead_letter(delivery, event_type).await;
                self.consumed(event_type, "dead_lettered");
                Ok(())
            }
            Err(HandlerError::Permanent(e)) => {
                if let Some(DecodeError::UnknownVersion {
                    event_type,
                    version,
                    known,
                }) = e.downcast_ref::<DecodeError>()
                {
                    // A newer producer than this consumer: it waits in the DLQ until the
                    // consumer is upgraded, then can be shovelled back.
                    tracing::error!(
                        consumer = self.name(),
                        event_type = %event_type,
                        version,
                        known_version = known,
                        "unknown event version {version} of {event_type}; dead-lettering"
                    );
                } else {
                    tracing::error!(
                        consumer = self.name(),
                        error = format!("{e:#}"),
                        "event handler failed permanently; dead-lettering"
                    );
                }
                self.dead_letter(delivery, event_type).await;
                self.consumed(event_type, "dead_lettered");
                Ok(())
            }
        }
    }

    fn reset_db_backoff(&self) {
        if let Ok(mut b) = self.db_backoff.lock() {
            b.reset();
        }
    }

    fn next_db_backoff(&self) -> Duration {
        match self.db_backoff.lock() {
            Ok(mut b) => b.next_delay(),
            Err(_) => Duration::from_secs(1),
        }
    }

    async fn ack(&self, delivery: &Delivery) {
        let result = tokio::time::timeout(
            AMQP_OP_TIMEOUT,
            delivery.acker.ack(BasicAckOptions::default()),
        )
        .await;
        if let Some(reason) = settle_failure(result) {
            // Redelivery follows; the inbox turns it into a no-op.
            tracing::warn!(consumer = self.name(), reason = %reason, "ack failed; the event will be redelivered and skipped");
        }
    }

    /// `nack(requeue=true)` after `pause`: the message goes back on its queue when the fault
    /// is not the event's (the database, the broker), and waiting first keeps that from
    /// becoming a hot loop.
    async fn requeue_after(&self, pause: Duration, delivery: &Delivery, event_type: &str) {
        tokio::time::sleep(pause).await;
        let _ = delivery
            .acker
            .nack(BasicNackOptions {
                requeue: true,
                multiple: false,
            })
            .await;
        self.consumed(event_type, "requeued");
    }

    /// `nack(requeue=false)`: the queue's dead-letter settings route it to `<queue>.dlq`.
    async fn dead_letter(&self, delivery: &Delivery, event_type: &str) {
        let nack = delivery.acker.nack(BasicNackOptions {
            requeue: false,
            multiple: false,
        });
        match settle_failure(tokio::time::timeout(AMQP_OP_TIMEOUT, nack).await) {
            None => {
                self.metrics
                    .events_dead_lettered
                    .with_label_values(&[self.name(), event_type])
                    .inc();
            }
            Some(reason) => {
                tracing::warn!(consumer = self.name(), reason = %reason, "dead-letter nack failed; the event will be redelivered")
            }
        }
    }

    /// Publishes a copy to `<queue>.retry` with a per-message TTL; when it expires the broker
    /// dead-letters it back to the queue. Confirmed, and `mandatory` so a missing retry queue
    /// is an error rather than a silent drop.
    async fn schedule_retry(
        &self,
        channel: &Channel,
        delivery: &Delivery,
        retry: u32,
        delay: Duration,
    ) -> Result<(), BrokerError> {
        let mut table: BTreeMap<ShortString, AMQPValue> = delivery
            .properties
            .headers()
            .as_ref()
            .map(|h| h.inner().clone())
            .unwrap_or_default();
        // Broker bookkeeping from earlier dead-lettering; we count with our own header.
        table.retain(|k, _| {
            !k.as_str().starts_with("x-death")
                && !k.as_str().starts_with("x-first-death")
                && !k.as_str().starts_with("x-last-death")
        });
        table.insert(
            RETRY_HEADER.into(),
            AMQPValue::LongLongInt(i64::from(retry)),
        );
        let properties = delivery
            .properties
            .clone()
            .with_headers(FieldTable::from(table))
            .with_expiration(delay.as_millis().to_string().into());
        let retry_queue = topology::retry_queue_name(&self.queue);
        let confirm = bounded(
            "basic.publish",
            channel.basic_publish(
                "".into(),
                retry_queue.as_str().into(),
                BasicPublishOptions {
                    mandatory: true,
                    immediate: false,
                },
                &delivery.data,
                properties,
            ),
        )
        .await?;
        match bounded("publisher confirm", confirm).await? {
            Confirmation::Ack(None) => Ok(()),
            Confirmation::Ack(Some(_)) => Err(BrokerError::NotAccepted("retry queue missing")),
            Confirmation::Nack(_) => Err(BrokerError::NotAccepted("retry nacked")),
            Confirmation::NotRequested => Err(BrokerError::NotAccepted("retry not confirmed")),
        }
    }
}

/// Fan-out subscription without inbox, for state every instance keeps in memory (session
/// revocations): a queue of its own (exclusive, auto-delete) bound to `bindings`; `on_event`
/// gets each envelope and the message is acked after it returns. Re-subscribes after a
/// reconnect. Events published while disconnected are not seen.
pub fn spawn_broadcast_listener<F>(
    broker: Broker,
    bindings: Vec<String>,
    on_event: F,
) -> ConsumerHandle
where
    F: Fn(Envelope) + Send + Sync + 'static,
{
    let handle = ConsumerHandle::new("broadcast_listener");
    let on_event = Arc::new(on_event);
    let bindings = Arc::new(bindings);
    let b = broker.clone();
    let h = handle.clone();
    tokio::spawn(supervise(broker, handle.clone(), move |conn| {
        let on_event = on_event.clone();
        let bindings = bindings.clone();
        let broker = b.clone();
        let handle = h.clone();
        async move { broadcast_session(&broker, conn, &bindings, &*on_event, &handle).await }
    }));
    handle
}

async fn broadcast_session<F>(
    broker: &Broker,
    conn: Arc<Connection>,
    bindings: &[String],
    on_event: &F,
    handle: &ConsumerHandle,
) -> SessionEnd
where
    F: Fn(Envelope) + Send + Sync + 'static,
{
    let settings = broker.settings();
    // A new name per subscription: the old exclusive queue may linger until the broker notices
    // the old connection is gone.
    let queue = format!(
        "{}.broadcast.{}.{}",
        settings.exchange,
        broker.service(),
        Uuid::new_v4().simple()
    );
    let subscribed = async {
        let channel = open_channel_on(&conn, false).await?;
        let declare = async |channel: &Channel| {
            topology::declare_broadcast_queue(channel, settings, &queue, bindings).await
        };
        start_consuming(channel, 64, declare, &queue, "").await
    }
    .await;
    let (channel, mut consumer) = match subscribed {
        Ok(x) => x,
        Err(e) => return SessionEnd::Rebuild(format!("cannot subscribe: {e}")),
    };
    handle.set_consuming(true);
    tracing::info!(queue = %queue, "broadcast listener subscribed");
    loop {
        let next = match next_delivery(&mut consumer, &channel, handle, broker).await {
            Ok(next) => next,
            Err(end) => return end,
        };
        match next {
            Some(Ok(delivery)) => match serde_json::from_slice::<Envelope>(&delivery.data) {
                Ok(envelope) => {
                    let event_id = envelope.id;
                    let result = std::panic::catch_unwind(AssertUnwindSafe(|| on_event(envelope)));
                    if result.is_err() {
                        tracing::error!(event_id = %event_id, "broadcast callback panicked");
                    }
                    let _ = tokio::time::timeout(
                        AMQP_OP_TIMEOUT,
                        delivery.acker.ack(BasicAckOptions::default()),
                    )
                    .await;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "unparseable broadcast event; dropped");
                    let _ = tokio::time::timeout(
                        AMQP_OP_TIMEOUT,
                        delivery.acker.nack(BasicNackOptions {
                            requeue: false,
                            multiple: false,
                        }),
                    )
                    .await;
                }
            },
            lost => {
                let error = lost.and_then(Result::err);
                if let Some(end) = stream_lost(broker, &conn, &channel, handle, error).await {
                    return end;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_delays_double_and_cap() {
        assert_eq!(retry_delay(0), Duration::from_secs(1));
        assert_eq!(retry_delay(1), Duration::from_secs(2));
        assert_eq!(retry_delay(2), Duration::from_secs(4));
        assert_eq!(retry_delay(10), RETRY_CAP);
        assert_eq!(retry_delay(u32::MAX), RETRY_CAP);
    }

    #[test]
    fn handler_errors_classify() {
        let e: HandlerError = diesel::result::Error::NotFound.into();
        assert!(e.is_transient());
        let e: HandlerError = serde_json::from_str::<u8>("x").unwrap_err().into();
        assert!(!e.is_transient());
    }
}
