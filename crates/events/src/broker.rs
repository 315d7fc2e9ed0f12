//! One AMQP connection per process, kept alive by a supervisor task.
//!
//! Two layers of recovery, on purpose:
//! - lapin's own auto-recovery (`enable_auto_recover()`) reconnects a dropped connection and
//!   replays channels, declarations and consumers, with a short bounded backoff;
//! - lapin 4.12 gives up silently when every TCP retry of a recovery fails (an outage longer
//!   than its backoff): its I/O thread ends and the connection stays in a "connecting" state
//!   for ever, even after the broker is back (checked by experiment). So the supervisor here
//!   also abandons a connection that has been down longer than `abandon_after` (or that ended
//!   in `Error`/`Closed`) and builds a new one, retrying for ever with a capped backoff. Users
//!   of the broker (relay, consumers) notice the new connection and rebuild their channels.
//!   An abandoned connection that lapin recovers late is closed at once, so it cannot keep
//!   consumers nobody reads from.
//!
//! `Broker::start` never fails: a service starts while the broker is down and reports it
//! through `is_connected()` / its readiness check.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use lapin::{Channel, Connection, ConnectionProperties, options::ConfirmSelectOptions};
use tokio::sync::watch;
use zimmer_config::AmqpSettings;

/// Every AMQP operation the crate awaits is bounded by this, so a wedged broker cannot hang a
/// loop forever.
pub(crate) const AMQP_OP_TIMEOUT: Duration = Duration::from_secs(10);

/// `fut` under [`AMQP_OP_TIMEOUT`]; `what` names the operation in the timeout error.
pub(crate) async fn bounded<T>(
    what: &'static str,
    fut: impl Future<Output = lapin::Result<T>>,
) -> Result<T, BrokerError> {
    Ok(tokio::time::timeout(AMQP_OP_TIMEOUT, fut)
        .await
        .map_err(|_| BrokerError::Timeout(what))??)
}
/// Bound on one connection attempt (TCP retries included), as a safety net for a peer that
/// accepts TCP but never finishes the AMQP handshake.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(60);
const RECONNECT_MIN: Duration = Duration::from_millis(500);
const RECONNECT_MAX: Duration = Duration::from_secs(15);
const STATUS_POLL: Duration = Duration::from_millis(250);

#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    #[error("not connected to the message broker")]
    NotConnected,
    #[error("message broker operation timed out: {0}")]
    Timeout(&'static str),
    #[error("message broker has been shut down")]
    ShutDown,
    #[error("message not accepted by the broker: {0}")]
    NotAccepted(&'static str),
    #[error("AMQP error: {0}")]
    Amqp(#[from] lapin::Error),
}

/// Recovery tuning; `Default` suits the services, tests shorten it.
#[derive(Debug, Clone)]
pub struct BrokerOptions {
    /// lapin's TCP retries per recovery attempt (exponential from 500 ms).
    pub recovery_retries: usize,
    /// Cap of lapin's retry delay.
    pub recovery_max_delay: Duration,
    /// A connection not `Connected` for this long is replaced by a new one.
    pub abandon_after: Duration,
}

impl Default for BrokerOptions {
    fn default() -> Self {
        Self {
            recovery_retries: 4,
            recovery_max_delay: Duration::from_secs(5),
            abandon_after: Duration::from_secs(20),
        }
    }
}

/// A cheap, cloneable handle on the process's broker connection.
#[derive(Clone)]
pub struct Broker {
    inner: Arc<Inner>,
}

struct Inner {
    settings: AmqpSettings,
    service: String,
    options: BrokerOptions,
    /// The current connection, once one was established; replaced by the supervisor when
    /// lapin gives up on it.
    current: watch::Sender<Option<Arc<Connection>>>,
    shut_down: AtomicBool,
    shutdown_tx: watch::Sender<bool>,
}

impl std::fmt::Debug for Broker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Broker")
            .field("service", &self.inner.service)
            .field("exchange", &self.inner.settings.exchange)
            .field("connected", &self.is_connected())
            .finish()
    }
}

impl Broker {
    /// Spawns the connect/reconnect supervisor on the current Tokio runtime (call it from the
    /// main multi-thread runtime, before starting the HTTP server) and returns at once.
    pub fn start(settings: &AmqpSettings, service: &str) -> Broker {
        Self::start_with(settings, service, BrokerOptions::default())
    }

    pub fn start_with(settings: &AmqpSettings, service: &str, options: BrokerOptions) -> Broker {
        let (current, _) = watch::channel(None);
        let (shutdown_tx, _) = watch::channel(false);
        let broker = Broker {
            inner: Arc::new(Inner {
                settings: settings.clone(),
                service: service.to_owned(),
                options,
                current,
                shut_down: AtomicBool::new(false),
                shutdown_tx,
            }),
        };
        tokio::spawn(supervise(Arc::downgrade(&broker.inner)));
        broker
    }

    pub fn settings(&self) -> &AmqpSettings {
        &self.inner.settings
    }

    pub fn service(&self) -> &str {
        &self.inner.service
    }

    /// True when the connection is up (not connecting, recovering or dead).
    pub fn is_connected(&self) -> bool {
        self.connected().is_some()
    }

    /// The connection, if it is up right now.
    pub fn connected(&self) -> Option<Arc<Connection>> {
        self.inner
            .current
            .borrow()
            .as_ref()
            .filter(|c| c.status().connected())
            .cloned()
    }

    /// Readiness: Ok when the connection is up.
    pub async fn ping(&self) -> Result<(), String> {
        if self.is_shut_down() {
            return Err("message broker shut down".to_owned());
        }
        if self.is_connected() {
            Ok(())
        } else {
            Err("message broker not connected".to_owned())
        }
    }

    /// A `/readyz` check named `broker`.
    pub fn readiness_check(&self) -> zimmer_health::Check {
        let broker = self.clone();
        zimmer_health::Check::new("broker", move || {
            let broker = broker.clone();
            async move { broker.ping().await }
        })
    }

    /// Waits (up to `timeout`) for the connection to be up.
    pub async fn wait_connected(&self, timeout: Duration) -> Result<Arc<Connection>, BrokerError> {
        tokio::time::timeout(timeout, self.wait_connection())
            .await
            .map_err(|_| BrokerError::NotConnected)?
            .ok_or(BrokerError::ShutDown)
    }

    /// Opens a channel on the current connection (waiting up to `timeout` for one), with
    /// publisher confirms enabled when `confirms` is set.
    pub async fn open_channel(
        &self,
        timeout: Duration,
        confirms: bool,
    ) -> Result<(Arc<Connection>, Channel), BrokerError> {
        let conn = self.wait_connected(timeout).await?;
        let channel = open_channel_on(&conn, confirms).await?;
        Ok((conn, channel))
    }

    /// Closes the connection for good (graceful shutdown): loops using this broker stop, and
    /// unacknowledged deliveries go back to their queues.
    pub async fn shutdown(&self) {
        self.inner.shut_down.store(true, Ordering::SeqCst);
        self.inner.shutdown_tx.send_replace(true);
        let conn = self.inner.current.send_replace(None);
        if let Some(conn) = conn
            && conn.status().connected()
        {
            let closed =
                tokio::time::timeout(AMQP_OP_TIMEOUT, conn.close(200, "shutdown".into())).await;
            if !matches!(closed, Ok(Ok(()))) {
                tracing::warn!("broker connection did not close cleanly");
            }
        }
    }

    pub fn is_shut_down(&self) -> bool {
        self.inner.shut_down.load(Ordering::SeqCst)
    }

    /// Resolves once `shutdown()` has been called.
    pub(crate) async fn shutdown_signal(&self) {
        let mut rx = self.inner.shutdown_tx.subscribe();
        let _ = rx.wait_for(|down| *down).await;
    }

    /// Waits for a usable connection; `None` once the broker is shut down.
    pub(crate) async fn wait_connection(&self) -> Option<Arc<Connection>> {
        let mut rx = self.inner.current.subscribe();
        loop {
            if self.is_shut_down() {
                return None;
            }
            if let Some(conn) = self.connected() {
                return Some(conn);
            }
            // A recovering connection turns `Connected` without a watch notification: poll too.
            tokio::select! {
                _ = rx.changed() => {}
                _ = tokio::time::sleep(STATUS_POLL) => {}
                _ = self.shutdown_signal() => return None,
            }
        }
    }

    /// Resolves when `conn` is gone for good: lapin gave up on it (`Error`/`Closed`), the
    /// supervisor replaced it, or the broker shut down. Recovering does not count.
    pub(crate) async fn connection_lost(&self, conn: &Arc<Connection>) {
        loop {
            let status = conn.status();
            let replaced = match self.inner.current.borrow().as_ref() {
                Some(current) => !Arc::ptr_eq(current, conn),
                None => true,
            };
            if status.errored() || status.closed() || replaced || self.is_shut_down() {
                return;
            }
            tokio::time::sleep(STATUS_POLL).await;
        }
    }
}

pub(crate) async fn open_channel_on(
    conn: &Connection,
    confirms: bool,
) -> Result<Channel, BrokerError> {
    let channel = tokio::time::timeout(AMQP_OP_TIMEOUT, conn.create_channel())
        .await
        .map_err(|_| BrokerError::Timeout("create channel"))??;
    if confirms {
        tokio::time::timeout(
            AMQP_OP_TIMEOUT,
            channel.confirm_select(ConfirmSelectOptions::default()),
        )
        .await
        .map_err(|_| BrokerError::Timeout("confirm.select"))??;
    }
    Ok(channel)
}

/// Best-effort close of a channel we are done with. A channel dropped while its connection is
/// recovering would be resurrected by lapin's recovery, so only close what is open.
pub(crate) async fn close_channel(channel: &Channel) {
    if channel.status().connected() {
        let _ = tokio::time::timeout(AMQP_OP_TIMEOUT, channel.close(200, "OK".into())).await;
    }
}

fn connection_properties(service: &str, options: &BrokerOptions) -> ConnectionProperties {
    let (retries, max_delay) = (options.recovery_retries, options.recovery_max_delay);
    ConnectionProperties::default()
        .with_connection_name(format!("zimmer-{service}").into())
        .enable_auto_recover()
        // Short and bounded: beyond it the supervisor takes over with a fresh connection.
        .configure_backoff(move |b| {
            b.with_min_delay(Duration::from_millis(500))
                .with_max_delay(max_delay)
                .with_max_times(retries)
        })
}

async fn supervise(inner: std::sync::Weak<Inner>) {
    let mut backoff = zimmer_config::Backoff::new(RECONNECT_MIN, RECONNECT_MAX);
    loop {
        let Some(strong) = inner.upgrade() else {
            return;
        };
        if strong.shut_down.load(Ordering::SeqCst) {
            return;
        }
        let url = strong.settings.url.clone();
        let props = connection_properties(&strong.service, &strong.options);
        let abandon_after = strong.options.abandon_after;
        let service = strong.service.clone();
        // Do not keep the broker alive while (possibly) waiting on a dead network.
        drop(strong);

        let attempt =
            tokio::time::timeout(CONNECT_TIMEOUT, Connection::connect(url.expose(), props)).await;
        match attempt {
            Ok(Ok(conn)) => {
                let conn = Arc::new(conn);
                {
                    let Some(strong) = inner.upgrade() else {
                        close_quietly(&conn).await;
                        return;
                    };
                    if strong.shut_down.load(Ordering::SeqCst) {
                        close_quietly(&conn).await;
                        return;
                    }
                    strong.current.send_replace(Some(conn.clone()));
                }
                tracing::info!(service = %service, "connected to the message broker");
                backoff.reset();
                match watch_connection(&inner, &conn, abandon_after).await {
                    Watch::BrokerGone => {
                        close_quietly(&conn).await;
                        return;
                    }
                    Watch::Dead => tracing::warn!(
                        service = %service,
                        state = conn_state(&conn),
                        "message broker connection lost for good; reconnecting"
                    ),
                    Watch::Stuck => {
                        tracing::warn!(
                            service = %service,
                            state = conn_state(&conn),
                            down_for_s = abandon_after.as_secs(),
                            "message broker connection did not recover; replacing it"
                        );
                        reap(conn.clone(), service.clone());
                    }
                }
                if let Some(strong) = inner.upgrade() {
                    strong.current.send_if_modified(|cur| {
                        if cur.as_ref().is_some_and(|c| Arc::ptr_eq(c, &conn)) {
                            *cur = None;
                            true
                        } else {
                            false
                        }
                    });
                }
            }
            Ok(Err(e)) => {
                tracing::warn!(service = %service, error = %e, retry_in_ms = backoff.peek().as_millis() as u64, "cannot connect to the message broker");
            }
            Err(_) => {
                tracing::warn!(service = %service, retry_in_ms = backoff.peek().as_millis() as u64, "connecting to the message broker timed out");
            }
        }
        tokio::time::sleep(backoff.next_delay()).await;
    }
}

enum Watch {
    /// Every `Broker` handle was dropped, or it was shut down.
    BrokerGone,
    /// The connection ended (`Error`/`Closed`).
    Dead,
    /// Down longer than `abandon_after` without ending.
    Stuck,
}

async fn watch_connection(
    inner: &std::sync::Weak<Inner>,
    conn: &Arc<Connection>,
    abandon_after: Duration,
) -> Watch {
    let mut down_since: Option<tokio::time::Instant> = None;
    loop {
        tokio::time::sleep(STATUS_POLL).await;
        match inner.upgrade() {
            None => return Watch::BrokerGone,
            Some(strong) if strong.shut_down.load(Ordering::SeqCst) => return Watch::BrokerGone,
            Some(_) => {}
        }
        let status = conn.status();
        if status.errored() || status.closed() {
            return Watch::Dead;
        }
        if status.connected() {
            down_since = None;
        } else if down_since
            .get_or_insert_with(tokio::time::Instant::now)
            .elapsed()
            > abandon_after
        {
            return Watch::Stuck;
        }
    }
}

/// Keeps an eye on an abandoned connection for a while: if lapin recovers it after all, close
/// it, so its replayed consumers cannot hold messages nobody will ack.
fn reap(conn: Arc<Connection>, service: String) {
    tokio::spawn(async move {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(3600);
        while tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_secs(1)).await;
            let status = conn.status();
            if status.errored() || status.closed() {
                return;
            }
            if status.connected() {
                tracing::warn!(service = %service, "an abandoned broker connection recovered late; closing it");
                close_quietly(&conn).await;
                return;
            }
        }
    });
}

fn conn_state(conn: &Connection) -> &'static str {
    let s = conn.status();
    if s.connected() {
        "connected"
    } else if s.reconnecting() {
        "reconnecting"
    } else if s.errored() {
        "error"
    } else if s.closed() {
        "closed"
    } else if s.connecting() {
        "connecting"
    } else {
        "other"
    }
}

async fn close_quietly(conn: &Connection) {
    if conn.status().connected() {
        let _ = tokio::time::timeout(AMQP_OP_TIMEOUT, conn.close(200, "OK".into())).await;
    }
}
