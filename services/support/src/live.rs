//! New notifications to the open SSE streams, on every instance.
//!
//! Choice: PostgreSQL `LISTEN/NOTIFY` (not Redis pub/sub). The signal is sent by `pg_notify`
//! inside the transaction that inserts the notification, so PostgreSQL delivers it exactly at
//! commit and never for a rolled-back insert: a stream can never show a notification that does
//! not exist, nor miss one because a separate publish after commit failed. Every instance keeps
//! one dedicated listening connection and routes each signal to its local streams through an
//! in-process hub (a `tokio::sync::broadcast` channel per connected user).
//!
//! Signal payloads (NOTIFY payloads are limited to 8000 bytes):
//! - `{"n": <notification JSON>}` — the common case, no database read needed;
//! - `{"u": user_id, "id": id}` — a notification too large to inline: fetched by id;
//! - `{"e": event_id}` — a bulk insert (broadcast): each instance fetches that event's
//!   notifications for the users it has streams for.
//!
//! While the listening connection is down, signals are lost; when it is back, every stream
//! re-reads what it missed (`id > last sent`), so a reconnect never loses a notification.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use diesel::sql_types::Text;
use diesel_async::AsyncPgConnection;
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;
use uuid::Uuid;
use zimmer_db::DbPool;

use crate::{queries::notifications as nq, views::NotificationView};

pub const CHANNEL: &str = "zimmer_notifications";
/// Below PostgreSQL's 8000-byte payload limit, with room to spare.
const MAX_INLINE_PAYLOAD: usize = 7000;
/// Per connected user; a stream that falls this far behind re-reads from the database.
const USER_BUFFER: usize = 64;

#[derive(Debug, Serialize, Deserialize)]
struct Signal {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    u: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    id: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    e: Option<Uuid>,
}

/// The serialized view carries no `user_id` (clients never see it), so it travels beside.
#[derive(Debug, Serialize, Deserialize)]
struct Inline {
    u: i64,
    n: NotificationView,
}

async fn notify(conn: &mut AsyncPgConnection, payload: &str) -> diesel::QueryResult<()> {
    // Scoped: `RunQueryDsl::load` would shadow `AtomicBool::load` in this module.
    use diesel_async::RunQueryDsl;
    diesel::sql_query("SELECT pg_notify($1, $2)")
        .bind::<Text, _>(CHANNEL)
        .bind::<Text, _>(payload)
        .execute(conn)
        .await
        .map(drop)
}

fn encode<T: Serialize>(v: &T) -> diesel::QueryResult<String> {
    serde_json::to_string(v).map_err(|e| diesel::result::Error::SerializationError(Box::new(e)))
}

/// Inside the inserting transaction: this notification goes live at commit.
pub async fn signal_one(
    conn: &mut AsyncPgConnection,
    view: &NotificationView,
) -> diesel::QueryResult<()> {
    let inline = encode(&Inline {
        u: view.user_id,
        n: view.clone(),
    })?;
    let payload = if inline.len() <= MAX_INLINE_PAYLOAD {
        inline
    } else {
        encode(&Signal {
            u: Some(view.user_id),
            id: Some(view.id),
            e: None,
        })?
    };
    notify(conn, &payload).await
}

/// Inside the inserting transaction: the notifications of this event go live at commit.
pub async fn signal_event(conn: &mut AsyncPgConnection, event_id: Uuid) -> diesel::QueryResult<()> {
    let payload = encode(&Signal {
        u: None,
        id: None,
        e: Some(event_id),
    })?;
    notify(conn, &payload).await
}

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

struct HubInner {
    users: Mutex<HashMap<i64, broadcast::Sender<Push>>>,
    listening: AtomicBool,
    listener_running: AtomicBool,
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
                users: Mutex::new(HashMap::new()),
                listening: AtomicBool::new(false),
                listener_running: AtomicBool::new(false),
            }),
        }
    }

    /// A subscription for one stream of `user_id`, or `None` when the user already has
    /// `max_per_user` streams open on this instance.
    pub fn subscribe(&self, user_id: i64, max_per_user: usize) -> Option<Subscription> {
        let mut users = self.inner.users.lock().ok()?;
        let sender = users
            .entry(user_id)
            .or_insert_with(|| broadcast::channel(USER_BUFFER).0);
        if sender.receiver_count() >= max_per_user {
            return None;
        }
        let rx = sender.subscribe();
        Some(Subscription {
            user_id,
            rx,
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

    pub fn streams(&self) -> usize {
        self.inner
            .users
            .lock()
            .map(|u| u.values().map(broadcast::Sender::receiver_count).sum())
            .unwrap_or(0)
    }

    fn send(&self, user_id: i64, push: Push) {
        if let Ok(users) = self.inner.users.lock()
            && let Some(sender) = users.get(&user_id)
        {
            let _ = sender.send(push);
        }
    }

    fn has(&self, user_id: i64) -> bool {
        self.inner
            .users
            .lock()
            .map(|u| u.contains_key(&user_id))
            .unwrap_or(false)
    }

    fn connected_users(&self) -> Vec<i64> {
        self.inner
            .users
            .lock()
            .map(|u| u.keys().copied().collect())
            .unwrap_or_default()
    }

    fn resync_all(&self) {
        if let Ok(users) = self.inner.users.lock() {
            for sender in users.values() {
                let _ = sender.send(Push::Resync);
            }
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
            let mut delay = Duration::from_millis(500);
            loop {
                hub.listen_once(&pool, &mut delay).await;
                hub.inner.listening.store(false, Ordering::SeqCst);
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(30));
            }
        });
    }

    async fn listen_once(&self, pool: &DbPool, delay: &mut Duration) {
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
        *delay = Duration::from_millis(500);
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

/// One stream's subscription; the user's channel is dropped with its last subscription.
pub struct Subscription {
    pub user_id: i64,
    pub rx: broadcast::Receiver<Push>,
    hub: Hub,
}

impl Drop for Subscription {
    fn drop(&mut self) {
        if let Ok(mut users) = self.hub.inner.users.lock()
            && let Some(sender) = users.get(&self.user_id)
            // This subscription's receiver is still alive here.
            && sender.receiver_count() <= 1
        {
            users.remove(&self.user_id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(user_id: i64, id: i64) -> NotificationView {
        NotificationView {
            id,
            kind: "system".into(),
            title: "t".into(),
            body: "b".into(),
            data: serde_json::json!({}),
            is_read: false,
            created_at: chrono::Utc::now(),
            read_at: None,
            user_id,
        }
    }

    #[tokio::test]
    async fn delivers_only_to_that_users_streams_and_cleans_up() {
        let hub = Hub::new();
        let mut a = hub.subscribe(1, 5).unwrap();
        let mut b = hub.subscribe(2, 5).unwrap();
        hub.deliver(view(1, 10));
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

    #[test]
    fn streams_per_user_are_capped() {
        let hub = Hub::new();
        let _s1 = hub.subscribe(7, 2).unwrap();
        let _s2 = hub.subscribe(7, 2).unwrap();
        assert!(hub.subscribe(7, 2).is_none());
    }

    #[test]
    fn inline_signal_round_trips_with_its_user() {
        let v = view(5, 99);
        let s = serde_json::to_string(&Inline { u: 5, n: v.clone() }).unwrap();
        let back: Inline = serde_json::from_str(&s).unwrap();
        assert_eq!(back.u, 5);
        assert_eq!(back.n.id, 99);
        // A bulk signal is not mistaken for an inline one.
        let e = serde_json::to_string(&Signal {
            u: None,
            id: None,
            e: Some(Uuid::nil()),
        })
        .unwrap();
        assert!(serde_json::from_str::<Inline>(&e).is_err());
    }
}
