//! Transactional outbox: `enqueue` writes the event in the caller's transaction, the relay
//! publishes it with publisher confirms and marks it published only after the broker acked.

use std::{
    collections::HashMap,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use chrono::{DateTime, Utc};
use diesel::{
    pg::Pg,
    prelude::*,
    query_builder::{AstPass, Query, QueryFragment, QueryId},
    sql_types::{BigInt, Double, Text, Untyped},
};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use futures_util::StreamExt;
use lapin::{Channel, Confirmation, Connection, options::BasicPublishOptions};
use serde::Serialize;
use tokio::sync::{Notify, mpsc};
use uuid::Uuid;
use zimmer_contracts::Event;
use zimmer_db::{DbPool, models::NewOutboxRow, schema::outbox};
use zimmer_telemetry::Metrics;

use crate::{
    broker::{AMQP_OP_TIMEOUT, Broker, BrokerError, close_channel, open_channel_on},
    envelope::{Envelope, message_properties},
    topology,
};

/// The PostgreSQL notification channel `enqueue` signals (payload = producer).
pub const OUTBOX_CHANNEL: &str = "zimmer_outbox";

const PUBLISH_TIMEOUT: Duration = Duration::from_secs(5);

fn serialization_error(e: serde_json::Error) -> diesel::result::Error {
    diesel::result::Error::SerializationError(Box::new(e))
}

/// Writes an event to the outbox inside the caller's transaction (same commit as the state
/// change), with the current trace context in `headers`, and notifies `zimmer_outbox` so the
/// relays wake at commit. Returns the event id.
pub async fn enqueue<T: Serialize>(
    conn: &mut AsyncPgConnection,
    producer: &str,
    event_type: &str,
    data: &T,
) -> diesel::QueryResult<Uuid> {
    let data = serde_json::to_value(data).map_err(serialization_error)?;
    enqueue_envelope(conn, &Envelope::new(producer, event_type, data)).await
}

/// Writes a contract event (see `zimmer_contracts`) to the outbox, like [`enqueue`]: its
/// `type` and `version` come from the payload's type. Returns the event id.
pub async fn enqueue_event<E: Event>(
    conn: &mut AsyncPgConnection,
    producer: &str,
    data: &E,
) -> diesel::QueryResult<Uuid> {
    let envelope = Envelope::of(producer, data).map_err(serialization_error)?;
    enqueue_envelope(conn, &envelope).await
}

/// Like [`enqueue`] for a prepared envelope (its id, type and producer are used as given).
/// When the envelope carries no `traceparent`, the current span's context is filled in.
pub async fn enqueue_envelope(
    conn: &mut AsyncPgConnection,
    envelope: &Envelope,
) -> diesel::QueryResult<Uuid> {
    let (payload, headers) = outbox_json(envelope).map_err(serialization_error)?;
    diesel::insert_into(outbox::table)
        .values(NewOutboxRow {
            id: envelope.id,
            producer: &envelope.producer,
            event_type: &envelope.event_type,
            payload: &payload,
            headers: &headers,
        })
        .execute(conn)
        .await?;
    // Delivered at commit (and never on rollback), which is exactly when the relay should look.
    diesel::sql_query("SELECT pg_notify($1, $2)")
        .bind::<Text, _>(OUTBOX_CHANNEL)
        .bind::<Text, _>(&envelope.producer)
        .execute(conn)
        .await?;
    Ok(envelope.id)
}

/// The `payload` and `headers` of `envelope`'s outbox row, exactly as [`enqueue_envelope`]
/// writes them (the current trace context filled in), for a producer that inserts the row in
/// its own statement with the change it reports. Such a producer sends no `zimmer_outbox`
/// signal: it wakes its own relay after the commit ([`RelayHandle::wake`]), because a
/// `pg_notify` makes PostgreSQL serialise every notifying commit (a global lock held through
/// the WAL flush); other replicas' relays still find the row by polling.
pub fn outbox_json(
    envelope: &Envelope,
) -> Result<(serde_json::Value, serde_json::Value), serde_json::Error> {
    let mut headers: HashMap<String, String> = zimmer_telemetry::current_context_headers();
    let mut envelope = envelope.clone();
    match &envelope.traceparent {
        // Keep what the caller set: headers and envelope must agree.
        Some(tp) => {
            headers.retain(|k, _| k != "tracestate");
            headers.insert("traceparent".to_owned(), tp.clone());
        }
        None => envelope.traceparent = headers.get("traceparent").cloned(),
    }
    Ok((
        serde_json::to_value(&envelope)?,
        serde_json::to_value(&headers)?,
    ))
}

/// Tuning of the relay; `Default` suits the services.
#[derive(Debug, Clone)]
pub struct RelayOptions {
    /// Rows claimed per statement.
    pub batch_size: i64,
    /// How long a claimed row stays invisible to other relays; longer than publishing a batch.
    pub lease: Duration,
    /// Fallback poll when no notification arrives.
    pub poll_interval: Duration,
    /// Published rows older than this are deleted (None keeps them forever).
    pub retention: Option<Duration>,
    /// The lease a producer writes into a row it hands to the relay in memory
    /// ([`RelayHandle::reserve`]): other relays leave the row alone that long, and if this
    /// process dies before publishing it, any relay claims it once the lease has run out.
    pub handoff_lease: Duration,
    /// Hand-offs waiting for the relay at most; beyond that producers fall back to the poll.
    pub handoff_capacity: usize,
}

impl Default for RelayOptions {
    fn default() -> Self {
        Self {
            batch_size: 100,
            lease: Duration::from_secs(60),
            poll_interval: Duration::from_secs(1),
            retention: Some(Duration::from_secs(7 * 24 * 3600)),
            handoff_lease: Duration::from_secs(15),
            handoff_capacity: 1024,
        }
    }
}

/// Publishes the outbox rows of one producer.
pub struct OutboxRelay;

impl OutboxRelay {
    pub fn spawn(
        pool: DbPool,
        broker: Broker,
        producer: &'static str,
        metrics: Metrics,
    ) -> RelayHandle {
        Self::spawn_with(pool, broker, producer, metrics, RelayOptions::default())
    }

    pub fn spawn_with(
        pool: DbPool,
        broker: Broker,
        producer: &'static str,
        metrics: Metrics,
        options: RelayOptions,
    ) -> RelayHandle {
        let shared = Arc::new(RelayShared {
            producer,
            notify: Notify::new(),
            running: AtomicBool::new(true),
            stop: AtomicBool::new(false),
        });
        let (handoff, handoffs) = mpsc::channel(options.handoff_capacity.max(1));
        let handoff_lease = options.handoff_lease;
        let relay = Relay {
            pool,
            broker,
            metrics,
            options,
            shared: shared.clone(),
            publisher: Publisher::default(),
            handoffs,
        };
        tokio::spawn(relay.run());
        RelayHandle {
            shared,
            handoff,
            handoff_lease,
        }
    }
}

/// `RunQueryDsl::load` (in scope for the queries) shadows `AtomicBool::load` in method syntax.
fn flag(b: &AtomicBool) -> bool {
    AtomicBool::load(b, Ordering::SeqCst)
}

/// Handle on a running relay.
#[derive(Clone)]
pub struct RelayHandle {
    shared: Arc<RelayShared>,
    handoff: mpsc::Sender<ClaimedRow>,
    handoff_lease: Duration,
}

/// A place in this instance's relay for one event its producer is about to commit in its own
/// statement ([`outbox_json`]): the row is written already leased for [`HandoffSlot::lease_secs`]
/// and, after the commit, [`HandoffSlot::send`] gives it to the relay, which publishes it and
/// marks it published without claiming it from the table first (the claim was a third of
/// the relay's statements per event under load, docs/performance.md). Dropping the slot
/// unused (the statement failed) frees the place.
pub struct HandoffSlot {
    permit: mpsc::OwnedPermit<ClaimedRow>,
    lease: Duration,
}

impl HandoffSlot {
    /// What the row's `locked_until` must be: `now() + make_interval(secs => lease_secs)`.
    pub fn lease_secs(&self) -> f64 {
        self.lease.as_secs_f64()
    }

    /// After the commit: the row as written (`payload` and `headers` exactly as stored).
    pub fn send(
        self,
        id: Uuid,
        event_type: &str,
        payload: serde_json::Value,
        headers: serde_json::Value,
    ) {
        self.permit.send(ClaimedRow {
            id,
            event_type: event_type.to_owned(),
            payload,
            headers,
            created_at: Utc::now(),
            attempts: 0,
        });
    }
}

struct RelayShared {
    producer: &'static str,
    notify: Notify,
    running: AtomicBool,
    stop: AtomicBool,
}

impl RelayHandle {
    /// Asks the relay to look at the outbox now (e.g. right after a commit).
    pub fn wake(&self) {
        self.shared.notify.notify_one();
    }

    /// A place for an in-memory hand-off ([`HandoffSlot`]), or `None` when the relay is
    /// behind (its queue is full) or has stopped: then the producer writes the row unleased
    /// and calls [`RelayHandle::wake`] after the commit, as without hand-offs.
    pub fn reserve(&self) -> Option<HandoffSlot> {
        if !self.is_running() {
            return None;
        }
        let permit = self.handoff.clone().try_reserve_owned().ok()?;
        Some(HandoffSlot {
            permit,
            lease: self.handoff_lease,
        })
    }

    /// False once the relay loop has ended (stopped, or died: a liveness failure).
    pub fn is_running(&self) -> bool {
        flag(&self.shared.running)
    }

    /// Stops the relay after its current batch.
    pub fn stop(&self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        self.shared.notify.notify_one();
    }

    /// A `/healthz` check: fails when the relay loop has ended.
    pub fn liveness_check(&self) -> zimmer_health::Check {
        let handle = self.clone();
        zimmer_health::Check::flag("outbox_relay", "outbox relay stopped", move || {
            handle.is_running()
        })
    }
}

/// Marks the relay as not running when its task ends, however it ends (panic included).
struct RunningGuard(Arc<RelayShared>);

impl Drop for RunningGuard {
    fn drop(&mut self) {
        self.0.running.store(false, Ordering::SeqCst);
        // Cancellation (runtime shutdown, abort) is normal at exit; a panic is not.
        if std::thread::panicking() {
            tracing::error!(producer = self.0.producer, "outbox relay panicked");
        }
    }
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[derive(QueryableByName)]
#[diesel(table_name = outbox)]
#[diesel(check_for_backend(diesel::pg::Pg))]
struct ClaimedRow {
    id: Uuid,
    event_type: String,
    payload: serde_json::Value,
    headers: serde_json::Value,
    created_at: DateTime<Utc>,
    attempts: i32,
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

#[derive(Debug, thiserror::Error)]
enum RelayError {
    #[error("database pool: {0}")]
    Pool(#[from] zimmer_db::PoolError),
    #[error("database: {0}")]
    Db(#[from] diesel::result::Error),
    #[error(transparent)]
    Broker(#[from] BrokerError),
    #[error("no event of the batch was confirmed")]
    NothingConfirmed,
}

/// The relay's publishing channel (confirm mode), rebuilt when its connection changes.
#[derive(Default)]
struct Publisher {
    conn: Option<Arc<Connection>>,
    channel: Option<Channel>,
    /// When the channel was first seen recovering (lapin replays it after a reconnect).
    recovering_since: Option<Instant>,
}

/// How long to wait for lapin to recover the publishing channel before replacing it.
const CHANNEL_RECOVERY_GRACE: Duration = Duration::from_secs(30);

impl Publisher {
    async fn channel(
        &mut self,
        broker: &Broker,
        conn: &Arc<Connection>,
    ) -> Result<Channel, BrokerError> {
        if let (Some(c), Some(ch)) = (&self.conn, &self.channel)
            && Arc::ptr_eq(c, conn)
        {
            if ch.status().connected() {
                self.recovering_since = None;
                return Ok(ch.clone());
            }
            // Dropping a channel lapin is recovering would only make it an orphan once
            // recovered: give lapin a while first.
            if ch.status().reconnecting()
                && self
                    .recovering_since
                    .get_or_insert_with(Instant::now)
                    .elapsed()
                    < CHANNEL_RECOVERY_GRACE
            {
                return Err(BrokerError::NotConnected);
            }
        }
        self.reset().await;
        let channel = open_channel_on(conn, true).await?;
        // Declared here too, so publishing never hits a missing exchange.
        topology::declare_exchanges(&channel, broker.settings()).await?;
        self.conn = Some(conn.clone());
        self.channel = Some(channel.clone());
        Ok(channel)
    }

    /// After a failed publish: drop the channel unless lapin is recovering it.
    async fn discard_if_broken(&mut self) {
        let recovering = self
            .channel
            .as_ref()
            .is_some_and(|ch| ch.status().reconnecting());
        if !recovering {
            self.reset().await;
        }
    }

    async fn reset(&mut self) {
        if let Some(channel) = self.channel.take() {
            close_channel(&channel).await;
        }
        self.conn = None;
        self.recovering_since = None;
    }
}

struct Relay {
    pool: DbPool,
    broker: Broker,
    metrics: Metrics,
    options: RelayOptions,
    shared: Arc<RelayShared>,
    publisher: Publisher,
    handoffs: mpsc::Receiver<ClaimedRow>,
}

impl Relay {
    fn producer(&self) -> &'static str {
        self.shared.producer
    }

    fn stopping(&self) -> bool {
        flag(&self.shared.stop) || self.broker.is_shut_down()
    }

    async fn run(mut self) {
        let _running = RunningGuard(self.shared.clone());
        let _listener = AbortOnDrop(tokio::spawn(listen(
            self.pool.clone(),
            self.producer(),
            self.shared.clone(),
        )));
        tracing::info!(producer = self.producer(), "outbox relay started");
        let mut last_prune: Option<Instant> = None;
        let mut last_count: Option<Instant> = None;
        while !self.stopping() {
            // Drain: full batches mean there may be more.
            loop {
                match self.relay_batch().await {
                    Ok(n) if n as i64 >= self.options.batch_size && !self.stopping() => continue,
                    Ok(_) => break,
                    // The channel is being recovered by lapin: wait quietly.
                    Err(RelayError::Broker(BrokerError::NotConnected)) => break,
                    Err(e) => {
                        tracing::warn!(producer = self.producer(), error = %e, "outbox relay batch failed");
                        break;
                    }
                }
            }
            // The pending gauge at most once per poll interval: under a stream of wakes (a
            // busy service wakes the relay after every commit) counting after every batch was
            // a third of the relay's statements. A drained relay sleeps up to one interval and
            // counts on its next turn, so the gauge lags by about a second at most.
            if last_count.is_none_or(|t| t.elapsed() >= self.options.poll_interval) {
                last_count = Some(Instant::now());
                self.refresh_pending().await;
            }
            if let Some(retention) = self.options.retention
                && last_prune.is_none_or(|t| t.elapsed() > Duration::from_secs(3600))
            {
                last_prune = Some(Instant::now());
                self.prune(retention).await;
            }
            tokio::select! {
                _ = self.shared.notify.notified() => {}
                Some(first) = self.handoffs.recv() => self.relay_handoffs(first).await,
                _ = tokio::time::sleep(self.options.poll_interval) => {}
                _ = self.broker.shutdown_signal() => {}
            }
        }
        // Hand-offs not published yet go back to the table for any relay, now rather than
        // when their lease runs out.
        self.handoffs.close();
        let mut left = Vec::new();
        while let Ok(row) = self.handoffs.try_recv() {
            left.push(row.id);
        }
        self.release(&left).await;
        self.publisher.reset().await;
        tracing::info!(producer = self.producer(), "outbox relay stopped");
    }

    /// The publishing channel, or `None` while the broker is not connected.
    async fn channel(&mut self) -> Result<Option<Channel>, BrokerError> {
        let Some(conn) = self.broker.connected() else {
            return Ok(None);
        };
        self.publisher.channel(&self.broker, &conn).await.map(Some)
    }

    /// Claims, publishes and settles one batch; returns how many rows were claimed.
    async fn relay_batch(&mut self) -> Result<usize, RelayError> {
        // Claiming while the broker is down would only burn attempts and leases.
        let Some(channel) = self.channel().await? else {
            return Ok(0);
        };
        let mut rows = self.claim().await?;
        if rows.is_empty() {
            return Ok(0);
        }
        rows.sort_by_key(|r| (r.created_at, r.id));
        let claimed = rows.len();
        self.publish(&channel, rows).await?;
        Ok(claimed)
    }

    /// Publishes `first` and whatever else has been handed off meanwhile (one batch at most),
    /// as [`Relay::relay_batch`] publishes claimed rows. Without a broker the rows' leases are
    /// released, so the poll publishes them once it is back.
    async fn relay_handoffs(&mut self, first: ClaimedRow) {
        let mut rows = vec![first];
        while rows.len() < self.options.batch_size.max(1) as usize {
            match self.handoffs.try_recv() {
                Ok(row) => rows.push(row),
                Err(_) => break,
            }
        }
        let Ok(Some(channel)) = self.channel().await else {
            let ids: Vec<Uuid> = rows.iter().map(|r| r.id).collect();
            self.release(&ids).await;
            return;
        };
        if let Err(e) = self.publish(&channel, rows).await {
            tracing::warn!(producer = self.producer(), error = %e, "outbox hand-off batch failed");
        }
    }

    /// Publishes `rows` in order with confirms, marks the acked ones published and records
    /// why the others failed (they come back through the poll after a short delay).
    async fn publish(
        &mut self,
        channel: &Channel,
        rows: Vec<ClaimedRow>,
    ) -> Result<(), RelayError> {
        let exchange = self.broker.settings().exchange.clone();
        let mut pending = Vec::with_capacity(rows.len());
        let mut failed: Vec<(Uuid, String)> = Vec::new();
        let mut channel_broken = false;
        for row in &rows {
            if channel_broken {
                failed.push((
                    row.id,
                    "not attempted: an earlier publish failed".to_owned(),
                ));
                continue;
            }
            let headers: HashMap<String, String> =
                serde_json::from_value(row.headers.clone()).unwrap_or_default();
            let producer = row
                .payload
                .get("producer")
                .and_then(|p| p.as_str())
                .unwrap_or(self.producer());
            let occurred_at = row
                .payload
                .get("occurred_at")
                .and_then(|v| serde_json::from_value(v.clone()).ok())
                .unwrap_or(row.created_at);
            let properties =
                message_properties(row.id, &row.event_type, producer, occurred_at, &headers);
            let body = match serde_json::to_vec(&row.payload) {
                Ok(b) => b,
                Err(e) => {
                    failed.push((row.id, format!("cannot serialise payload: {e}")));
                    continue;
                }
            };
            let publish = channel.basic_publish(
                exchange.as_str().into(),
                row.event_type.as_str().into(),
                BasicPublishOptions::default(),
                &body,
                properties,
            );
            match tokio::time::timeout(PUBLISH_TIMEOUT, publish).await {
                Ok(Ok(confirm)) => pending.push((row, confirm)),
                Ok(Err(e)) => {
                    channel_broken = true;
                    failed.push((row.id, format!("publish failed: {e}")));
                }
                Err(_) => {
                    channel_broken = true;
                    failed.push((row.id, "publish timed out".to_owned()));
                }
            }
        }

        let mut acked: Vec<(Uuid, &str)> = Vec::new();
        let (rows_waiting, confirms): (Vec<_>, Vec<_>) = pending.into_iter().unzip();
        match tokio::time::timeout(AMQP_OP_TIMEOUT, futures_util::future::join_all(confirms)).await
        {
            Ok(results) => {
                for (row, result) in rows_waiting.into_iter().zip(results) {
                    match result {
                        Ok(Confirmation::Ack(_)) => acked.push((row.id, &row.event_type)),
                        Ok(Confirmation::Nack(_)) => {
                            failed.push((row.id, "nacked by the broker".to_owned()))
                        }
                        Ok(Confirmation::NotRequested) => {
                            // Cannot happen on a confirm channel; never mark unconfirmed rows.
                            channel_broken = true;
                            failed.push((row.id, "publisher confirms not enabled".to_owned()));
                        }
                        Err(e) => {
                            channel_broken = true;
                            failed.push((row.id, format!("confirm failed: {e}")));
                        }
                    }
                }
            }
            Err(_) => {
                channel_broken = true;
                for row in rows_waiting {
                    failed.push((row.id, "confirm timed out".to_owned()));
                }
            }
        }
        if channel_broken {
            self.publisher.discard_if_broken().await;
        }

        if !acked.is_empty() {
            self.mark_published(&acked).await?;
            for (id, event_type) in &acked {
                self.metrics
                    .events_published
                    .with_label_values(&[*event_type])
                    .inc();
                tracing::debug!(producer = self.producer(), event_id = %id, event_type, "event published");
            }
        }
        if !failed.is_empty() {
            for (id, error) in &failed {
                let attempts = rows.iter().find(|r| r.id == *id).map(|r| r.attempts);
                tracing::warn!(producer = self.producer(), event_id = %id, attempts, error = %error, "event not published; will retry");
            }
            self.record_failures(&failed).await;
            if acked.is_empty() {
                return Err(RelayError::NothingConfirmed);
            }
        }
        Ok(())
    }

    /// One statement: claims up to `batch_size` due rows with a lease, skipping rows another
    /// relay holds, oldest first.
    async fn claim(&self) -> Result<Vec<ClaimedRow>, RelayError> {
        let mut conn = self.pool.get().await?;
        let rows = ClaimQuery {
            producer: self.producer(),
            limit: self.options.batch_size,
            lease_secs: self.options.lease.as_secs_f64(),
        }
        .load::<ClaimedRow>(&mut conn)
        .await?;
        Ok(rows)
    }

    async fn mark_published(&self, acked: &[(Uuid, &str)]) -> Result<(), RelayError> {
        let ids: Vec<Uuid> = acked.iter().map(|(id, _)| *id).collect();
        // The broker has the events; failing to record that means duplicates after the lease,
        // which consumers absorb, so try a few times before giving up.
        let mut last_error = None;
        for attempt in 0..3u32 {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(200 * u64::from(attempt))).await;
            }
            let result: Result<usize, RelayError> = async {
                let mut conn = self.pool.get().await?;
                Ok(diesel::update(unpublished(&ids))
                    .set((
                        outbox::published_at.eq(diesel::dsl::now),
                        outbox::locked_until.eq(None::<DateTime<Utc>>),
                        outbox::last_error.eq(None::<String>),
                    ))
                    .execute(&mut conn)
                    .await?)
            }
            .await;
            match result {
                Ok(_) => return Ok(()),
                Err(e) => last_error = Some(e),
            }
        }
        Err(last_error.unwrap_or(RelayError::NothingConfirmed))
    }

    /// Lifts the lease of rows this relay will not publish (hand-offs without a broker, or
    /// left at shutdown), so the next poll of any relay takes them. Best effort: a lease left
    /// in place runs out on its own.
    async fn release(&self, ids: &[Uuid]) {
        if ids.is_empty() {
            return;
        }
        let result = async {
            let mut conn = self.pool.get().await?;
            Ok::<_, RelayError>(
                diesel::update(unpublished(ids))
                    .set(outbox::locked_until.eq(None::<DateTime<Utc>>))
                    .execute(&mut conn)
                    .await?,
            )
        }
        .await;
        if let Err(e) = result {
            tracing::warn!(producer = self.producer(), error = %e, "cannot release outbox leases");
        }
    }

    /// Records why rows failed and lets them come back after a short, growing delay instead
    /// of the full lease.
    async fn record_failures(&self, failed: &[(Uuid, String)]) {
        let Ok(mut conn) = self.pool.get().await else {
            return; // the leases expire on their own
        };
        for (id, error) in failed {
            let result = diesel::sql_query(
                "UPDATE outbox SET last_error = $2, \
                        locked_until = now() + make_interval(secs => LEAST(power(2, attempts), 30)) \
                  WHERE id = $1 AND published_at IS NULL",
            )
            .bind::<diesel::sql_types::Uuid, _>(id)
            .bind::<Text, _>(error)
            .execute(&mut conn)
            .await;
            if let Err(e) = result {
                tracing::warn!(producer = self.producer(), error = %e, "cannot record an outbox failure");
                return;
            }
        }
    }

    async fn refresh_pending(&self) {
        let count = async {
            let mut conn = self.pool.get().await.ok()?;
            diesel::sql_query(
                "SELECT count(*) AS n FROM outbox WHERE producer = $1 AND published_at IS NULL",
            )
            .bind::<Text, _>(self.producer())
            .get_result::<Count>(&mut conn)
            .await
            .ok()
        }
        .await;
        if let Some(Count { n }) = count {
            self.metrics
                .outbox_pending
                .with_label_values(&[self.producer()])
                .set(n);
        }
    }

    async fn prune(&self, retention: Duration) {
        let Ok(mut conn) = self.pool.get().await else {
            return;
        };
        let result = diesel::sql_query(
            "DELETE FROM outbox WHERE id IN ( \
                SELECT id FROM outbox \
                 WHERE producer = $1 AND published_at < now() - make_interval(secs => $2) \
                 LIMIT 10000)",
        )
        .bind::<Text, _>(self.producer())
        .bind::<Double, _>(retention.as_secs_f64())
        .execute(&mut conn)
        .await;
        match result {
            Ok(0) => {}
            Ok(n) => tracing::info!(
                producer = self.producer(),
                deleted = n,
                "pruned published outbox rows"
            ),
            Err(e) => tracing::warn!(producer = self.producer(), error = %e, "outbox prune failed"),
        }
    }
}

type Unpublished<'a> = diesel::dsl::Filter<
    diesel::dsl::Filter<outbox::table, diesel::dsl::EqAny<outbox::id, &'a [Uuid]>>,
    diesel::dsl::IsNull<outbox::published_at>,
>;

/// The unpublished rows among `ids`. diesel writes `id = ANY($1)` with one array parameter on
/// PostgreSQL, so the updates built on it stay prepared per connection whatever the batch size.
fn unpublished(ids: &[Uuid]) -> Unpublished<'_> {
    outbox::table
        .filter(outbox::id.eq_any(ids))
        .filter(outbox::published_at.is_null())
}

/// The relay's claim, as a statement whose SQL never varies: diesel keeps it prepared per
/// connection (`sql_query` is never cached: a Parse and a fresh plan on every batch; the DSL
/// has no `now() + interval` of a bound number of seconds).
struct ClaimQuery<'a> {
    producer: &'a str,
    limit: i64,
    lease_secs: f64,
}

impl QueryId for ClaimQuery<'_> {
    type QueryId = ClaimQuery<'static>;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl Query for ClaimQuery<'_> {
    type SqlType = Untyped;
}

impl QueryFragment<Pg> for ClaimQuery<'_> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        out.push_sql("UPDATE outbox SET locked_until = now() + make_interval(secs => ");
        out.push_bind_param::<Double, _>(&self.lease_secs)?;
        out.push_sql(
            "), attempts = attempts + 1 \
              WHERE id IN ( \
                    SELECT id FROM outbox \
                     WHERE producer = ",
        );
        out.push_bind_param::<Text, _>(&self.producer)?;
        out.push_sql(
            " AND published_at IS NULL \
                       AND (locked_until IS NULL OR locked_until < now()) \
                     ORDER BY created_at, id \
                     LIMIT ",
        );
        out.push_bind_param::<BigInt, _>(&self.limit)?;
        out.push_sql(
            " FOR UPDATE SKIP LOCKED) \
          RETURNING id, event_type, payload, headers, created_at, attempts",
        );
        Ok(())
    }
}

/// LISTEN on a dedicated connection (taken out of the pool so it does not hold a pool slot),
/// waking the relay when its producer commits an event; reconnects with backoff.
async fn listen(pool: DbPool, producer: &'static str, shared: Arc<RelayShared>) {
    let mut backoff = zimmer_config::Backoff::new(Duration::from_secs(1), Duration::from_secs(30));
    loop {
        match pool.get().await {
            Ok(pooled) => {
                let mut conn = zimmer_db::DbConn::take(pooled);
                match diesel::sql_query(format!("LISTEN {OUTBOX_CHANNEL}"))
                    .execute(&mut conn)
                    .await
                {
                    Ok(_) => {
                        backoff.reset();
                        // Anything committed while we were not listening.
                        shared.notify.notify_one();
                        let mut notifications = std::pin::pin!(conn.notifications_stream());
                        loop {
                            match notifications.next().await {
                                Some(Ok(n)) => {
                                    if n.payload == producer {
                                        shared.notify.notify_one();
                                    }
                                }
                                Some(Err(e)) => {
                                    tracing::warn!(producer, error = %e, "outbox LISTEN connection failed");
                                    break;
                                }
                                None => {
                                    tracing::warn!(producer, "outbox LISTEN connection closed");
                                    break;
                                }
                            }
                        }
                    }
                    Err(e) => {
                        tracing::warn!(producer, error = %e, "cannot LISTEN for outbox events")
                    }
                }
            }
            Err(e) => {
                tracing::warn!(producer, error = %e, "no database connection for outbox LISTEN")
            }
        }
        // Polling covers the gap.
        tokio::time::sleep(backoff.next_delay()).await;
    }
}
