//! New notifications to the open SSE streams, on every instance.
//!
//! Choice: PostgreSQL `LISTEN/NOTIFY` (not Redis pub/sub). The signal is sent by `pg_notify`
//! inside the transaction that inserts the notification, so PostgreSQL delivers it exactly at
//! commit and never for a rolled-back insert: a stream can never show a notification that does
//! not exist, nor miss one because a separate publish after commit failed. Every instance keeps
//! one dedicated listening connection and routes each signal to its local streams through an
//! in-process hub (a `tokio::sync::broadcast` channel per connected user).
//!
//! The signal payloads are in `domain::signal`; the queries that insert notifications send
//! them (`queries::notifications`).
//!
//! While the listening connection is down, signals are lost; when it is back, every stream
//! re-reads what it missed (`id > last sent`), so a reconnect never loses a notification.

use std::{
    collections::{HashMap, VecDeque},
    sync::{
        Arc, Mutex, MutexGuard, PoisonError,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::Duration,
};

use futures_util::StreamExt;
use tokio::sync::{broadcast, oneshot};
use zimmer_db::DbPool;

use crate::{
    domain::{
        signal::{CHANNEL, Inline, Signal},
        views::NotificationView,
    },
    queries::notifications as nq,
};

/// Per connected user; a stream that falls this far behind re-reads from the database.
const USER_BUFFER: usize = 64;

/// What a stream receives.
#[derive(Debug, Clone)]
pub enum Push {
    One(Arc<NotificationView>),
    /// Signals may have been lost: re-read from the database.
    Resync,
}

/// The in-process hub of one instance.
#[derive(Clone)]
pub struct Hub {
    inner: Arc<HubInner>,
}

/// One user's open streams on this instance, oldest first, each with the switch that ends it.
struct UserStreams {
    sender: broadcast::Sender<Push>,
    open: VecDeque<(u64, oneshot::Sender<()>)>,
}

#[derive(Default)]
struct Registry {
    users: HashMap<i64, UserStreams>,
    /// Open streams of all users (evicted ones no longer count).
    total: usize,
}

struct HubInner {
    registry: Mutex<Registry>,
    next_stream: AtomicU64,
    listening: AtomicBool,
    listener_running: AtomicBool,
}

/// Bounds on the streams of one instance.
#[derive(Debug, Clone, Copy)]
pub struct StreamLimits {
    /// Beyond this, a user's oldest stream is closed to make room for the new one.
    pub per_user: usize,
    /// Beyond this, a new stream is refused (another instance, or later).
    pub total: usize,
}

/// Why a stream could not be opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// The instance has its configured number of streams open.
    InstanceFull,
}

impl Default for Hub {
    fn default() -> Self {
        Self::new()
    }
}

impl Hub {
    pub fn new() -> Self {
        Self {
            inner: Arc::new(HubInner {
                registry: Mutex::new(Registry::default()),
                next_stream: AtomicU64::new(1),
                listening: AtomicBool::new(false),
                listener_running: AtomicBool::new(false),
            }),
        }
    }

    /// The registry even after a panic elsewhere held the lock: its data stays consistent
    /// (every change is one short critical section), and streams must keep working.
    fn registry(&self) -> MutexGuard<'_, Registry> {
        self.inner
            .registry
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// A subscription for one new stream of `user_id`. A user at `per_user` streams gets the
    /// new one and loses the oldest (whose client is most likely gone or a forgotten tab: it
    /// ends at once, and an `EventSource` still behind it reconnects later with
    /// `Last-Event-ID`). Refused only when the instance has `total` streams open.
    pub fn subscribe(&self, user_id: i64, limits: StreamLimits) -> Result<Subscription, Refused> {
        let per_user = limits.per_user.max(1);
        let mut reg = self.registry();
        let at_user_cap = reg
            .users
            .get(&user_id)
            .is_some_and(|u| u.open.len() >= per_user);
        // Replacing one of the user's own streams does not add to the total.
        if !at_user_cap && reg.total >= limits.total {
            return Err(Refused::InstanceFull);
        }
        let stream_id = self.inner.next_stream.fetch_add(1, Ordering::Relaxed);
        let (end_tx, end_rx) = oneshot::channel();
        let entry = reg.users.entry(user_id).or_insert_with(|| UserStreams {
            sender: broadcast::channel(USER_BUFFER).0,
            open: VecDeque::new(),
        });
        let mut evicted = 0;
        while entry.open.len() >= per_user {
            if let Some((_, end)) = entry.open.pop_front() {
                let _ = end.send(());
                evicted += 1;
            }
        }
        entry.open.push_back((stream_id, end_tx));
        let rx = entry.sender.subscribe();
        reg.total = reg.total + 1 - evicted;
        Ok(Subscription {
            user_id,
            stream_id,
            rx,
            evicted: end_rx,
            hub: self.clone(),
        })
    }

    /// Whether new notifications currently reach this instance's streams.
    pub fn is_listening(&self) -> bool {
        self.inner.listening.load(Ordering::SeqCst)
    }

    /// False once the listener task has ended (it never should): a liveness failure.
    pub fn listener_running(&self) -> bool {
        self.inner.listener_running.load(Ordering::SeqCst)
    }

    /// Streams open on this instance (evicted ones excluded).
    pub fn streams(&self) -> usize {
        self.registry().total
    }

    fn send(&self, user_id: i64, push: Push) {
        if let Some(u) = self.registry().users.get(&user_id) {
            let _ = u.sender.send(push);
        }
    }

    fn has(&self, user_id: i64) -> bool {
        self.registry().users.contains_key(&user_id)
    }

    fn connected_users(&self) -> Vec<i64> {
        self.registry().users.keys().copied().collect()
    }

    fn resync_all(&self) {
        for u in self.registry().users.values() {
            let _ = u.sender.send(Push::Resync);
        }
    }

    /// Delivers one notification (from this process or from a signal).
    pub fn deliver(&self, view: NotificationView) {
        let user_id = view.user_id;
        self.send(user_id, Push::One(Arc::new(view)));
    }

    async fn route(&self, pool: &DbPool, payload: &str) {
        if let Ok(inline) = serde_json::from_str::<Inline>(payload) {
            let mut view = inline.n;
            view.user_id = inline.u;
            self.deliver(view);
            return;
        }
        let Ok(signal) = serde_json::from_str::<Signal>(payload) else {
            tracing::warn!("unreadable notification signal ignored");
            return;
        };
        let fetched = match (signal.u, signal.id, signal.e) {
            (Some(user_id), Some(id), _) if self.has(user_id) => {
                async {
                    let mut conn = pool.get().await.map_err(|e| e.to_string())?;
                    nq::by_id(&mut conn, id)
                        .await
                        .map(|n| n.into_iter().collect::<Vec<_>>())
                        .map_err(|e| e.to_string())
                }
                .await
            }
            (_, _, Some(event_id)) => {
                let users = self.connected_users();
                if users.is_empty() {
                    return;
                }
                async {
                    let mut conn = pool.get().await.map_err(|e| e.to_string())?;
                    nq::of_event_for(&mut conn, event_id, &users)
                        .await
                        .map_err(|e| e.to_string())
                }
                .await
            }
            _ => return,
        };
        match fetched {
            Ok(rows) => {
                for n in rows {
                    self.deliver(n.into());
                }
            }
            Err(e) => {
                // The streams re-read what they missed.
                tracing::warn!(error = %e, "could not fetch signalled notifications; resyncing streams");
                self.resync_all();
            }
        }
    }

    /// LISTEN on a dedicated connection (taken out of the pool, so it holds no pool slot) and
    /// route every signal; reconnects with backoff for ever.
    pub fn spawn_listener(&self, pool: DbPool) {
        let hub = self.clone();
        hub.inner.listener_running.store(true, Ordering::SeqCst);
        tokio::spawn(async move {
            struct Running(Hub);
            impl Drop for Running {
                fn drop(&mut self) {
                    self.0.inner.listening.store(false, Ordering::SeqCst);
                    self.0.inner.listener_running.store(false, Ordering::SeqCst);
                }
            }
            let _running = Running(hub.clone());
            let mut backoff =
                zimmer_config::Backoff::new(Duration::from_millis(500), Duration::from_secs(30));
            loop {
                hub.listen_once(&pool, &mut backoff).await;
                hub.inner.listening.store(false, Ordering::SeqCst);
                tokio::time::sleep(backoff.next_delay()).await;
            }
        });
    }

    async fn listen_once(&self, pool: &DbPool, backoff: &mut zimmer_config::Backoff) {
        let pooled = match pool.get().await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "no database connection for notification LISTEN");
                return;
            }
        };
        use diesel_async::RunQueryDsl;
        let mut conn = zimmer_db::DbConn::take(pooled);
        if let Err(e) = diesel::sql_query(format!("LISTEN {CHANNEL}"))
            .execute(&mut conn)
            .await
        {
            tracing::warn!(error = %e, "cannot LISTEN for notifications");
            return;
        }
        backoff.reset();
        self.inner.listening.store(true, Ordering::SeqCst);
        // Whatever was committed while nobody listened.
        self.resync_all();
        let mut signals = std::pin::pin!(conn.notifications_stream());
        loop {
            match signals.next().await {
                Some(Ok(n)) => self.route(pool, &n.payload).await,
                Some(Err(e)) => {
                    tracing::warn!(error = %e, "notification LISTEN connection failed");
                    return;
                }
                None => {
                    tracing::warn!("notification LISTEN connection closed");
                    return;
                }
            }
        }
    }
}

/// One stream's subscription; it leaves the registry when dropped (the response body, and with
/// it this, is dropped as soon as the connection ends), and the user's channel goes with
/// their last stream.
pub struct Subscription {
    pub user_id: i64,
    stream_id: u64,
    pub rx: broadcast::Receiver<Push>,
    /// Resolves when a newer stream of the same user took this one's place.
    pub evicted: oneshot::Receiver<()>,
    hub: Hub,
}

impl Drop for Subscription {
    fn drop(&mut self) {
        let mut reg = self.hub.registry();
        let Some(u) = reg.users.get_mut(&self.user_id) else {
            return;
        };
        let before = u.open.len();
        u.open.retain(|(id, _)| *id != self.stream_id);
        // An evicted stream was already taken off the count.
        let removed = before - u.open.len();
        let empty = u.open.is_empty();
        reg.total = reg.total.saturating_sub(removed);
        if empty {
            reg.users.remove(&self.user_id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn delivers_only_to_that_users_streams_and_cleans_up() {
        let hub = Hub::new();
        let mut a = hub.subscribe(1, LIMITS).unwrap();
        let mut b = hub.subscribe(2, LIMITS).unwrap();
        hub.deliver(NotificationView::sample(1, 10));
        match a.rx.recv().await.unwrap() {
            Push::One(v) => assert_eq!(v.id, 10),
            Push::Resync => panic!("expected a notification"),
        }
        assert!(b.rx.try_recv().is_err());
        assert_eq!(hub.streams(), 2);
        drop(a);
        assert!(!hub.has(1));
        assert!(hub.has(2));
    }

    const LIMITS: StreamLimits = StreamLimits {
        per_user: 5,
        total: 100,
    };

    #[test]
    fn a_users_newest_stream_replaces_the_oldest_and_the_instance_is_bounded() {
        let hub = Hub::new();
        let limits = StreamLimits {
            per_user: 2,
            total: 3,
        };
        let mut s1 = hub.subscribe(7, limits).unwrap();
        let mut s2 = hub.subscribe(7, limits).unwrap();
        let mut s3 = hub.subscribe(7, limits).unwrap();
        assert!(s1.evicted.try_recv().is_ok(), "the oldest is told to end");
        assert!(s2.evicted.try_recv().is_err());
        assert!(s3.evicted.try_recv().is_err());
        assert_eq!(hub.streams(), 2);
        drop(s1);
        assert_eq!(hub.streams(), 2, "an evicted stream no longer counts");
        let _other = hub.subscribe(8, limits).unwrap();
        assert_eq!(hub.subscribe(9, limits).err(), Some(Refused::InstanceFull));
        // A user at their own cap still gets a stream: it takes their oldest one's place.
        let _s4 = hub.subscribe(7, limits).unwrap();
        assert_eq!(hub.streams(), 3);
        drop(s2);
        drop(s3);
        drop(_s4);
        assert_eq!(hub.streams(), 1);
        assert!(!hub.has(7));
    }
}
