//! The broker being away never fails a commit and never loses an event.
//!
//! The machine's RabbitMQ cannot be stopped from a test, so "down" is simulated two ways:
//! - a Broker pointed at a closed port (never reachable), then a relay with a working Broker on
//!   the same database standing for "the broker came back";
//! - a TCP proxy in front of RabbitMQ that the test closes (connections cut, port closed, so a
//!   connect is refused as by a stopped broker) and reopens on the same port: the same Broker
//!   and relay must reconnect on their own.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::{sync::Arc, time::Duration};

use common::{Db, Probe, WAIT, amqp_settings};
use diesel_async::AsyncConnection;
use lapin::Connection;
use serde_json::json;
use uuid::Uuid;
use zimmer_config::{AmqpSettings, Secret};
use zimmer_events::{Broker, BrokerOptions, OutboxRelay, RelayHandle, enqueue};
use zimmer_telemetry::Metrics;
use zimmer_testkit::{ToggleProxy, eventually, free_port};

const PRODUCER: &str = "tester";

async fn enqueue_committed(db: &Db, event_type: &str) -> Uuid {
    let mut conn = db.pool.get().await.unwrap();
    conn.transaction(async |c| enqueue(c, PRODUCER, event_type, &json!({"k": "v"})).await)
        .await
        .unwrap()
}

/// The relay of [`PRODUCER`] on the test's database.
fn relay(db: &Db, broker: &Broker, metrics: &Metrics) -> RelayHandle {
    OutboxRelay::spawn(db.pool.clone(), broker.clone(), PRODUCER, metrics.clone())
}

fn unpublished(id: Uuid) -> String {
    format!("SELECT count(*) AS n FROM outbox WHERE id = '{id}' AND published_at IS NULL")
}

fn published(id: Uuid) -> String {
    format!("SELECT count(*) AS n FROM outbox WHERE id = '{id}' AND published_at IS NOT NULL")
}

/// The next message the probe gets within `within` is the event `id`.
async fn assert_delivered(probe: &mut Probe, id: Uuid, within: Duration, what: &str) {
    let delivery = probe.next(within).await.expect(what);
    assert_eq!(
        delivery.properties.message_id().as_ref().unwrap().as_str(),
        id.to_string()
    );
}

/// The event `id` reaches the probe within `within`, is marked published, and comes only once.
async fn assert_published_once(probe: &mut Probe, db: &Db, id: Uuid, within: Duration, what: &str) {
    assert_delivered(probe, id, within, what).await;
    db.wait_count("marked published", &published(id), 1).await;
    assert!(
        probe.next(Duration::from_secs(3)).await.is_none(),
        "exactly once"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_broker_never_blocks_commits_and_events_go_out_once_it_is_back() {
    // Note: at the end of this test lapin's I/O thread for the unreachable broker may print a
    // "task was cancelled" panic: it is still retrying its TCP connect when the test's runtime
    // shuts down. Harmless, and only ever at runtime shutdown.
    common::init_telemetry();
    let db = Db::new().await;
    let good = amqp_settings();
    let unreachable = AmqpSettings {
        url: Secret::new(format!("amqp://guest:guest@127.0.0.1:{}/%2f", free_port())),
        ..good.clone()
    };
    let metrics = Metrics::new("events-test");

    // Starting against a dead broker neither fails nor blocks.
    let broker_down = Broker::start(&unreachable, "events-test");
    let relay_down = relay(&db, &broker_down, &metrics);

    let id = enqueue_committed(&db, "test.while_down").await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(!broker_down.is_connected());
    assert!(broker_down.ping().await.is_err());
    assert!(relay_down.is_running(), "the relay waits, it does not die");
    assert_eq!(db.count(&unpublished(id)).await, 1, "the event is kept");
    assert_eq!(
        db.count(&format!(
            "SELECT count(*) AS n FROM outbox WHERE id = '{id}' AND attempts = 0"
        ))
        .await,
        1,
        "nothing claimed while the broker is unreachable"
    );
    eventually("the pending gauge counts the kept event", WAIT, || async {
        metrics.outbox_pending.with_label_values(&[PRODUCER]).get() == 1
    })
    .await;

    // "Back": a relay with a working broker on the same database.
    let mut probe = Probe::bind(&good, "#").await;
    let broker_up = Broker::start(&good, "events-test");
    let _relay_up = relay(&db, &broker_up, &metrics);

    assert_published_once(&mut probe, &db, id, WAIT, "the kept event is published").await;
    assert!(broker_up.is_connected() && !broker_down.is_connected());
    assert!(relay_down.is_running());
}

/// A relay on the test's database publishing through a proxy the test can take down, and a
/// probe that talks to RabbitMQ directly, so it sees what arrives during the outage. Fields in
/// the order they drop: the relay stops before the broker, the database goes last.
struct Proxied {
    relay: RelayHandle,
    probe: Probe,
    broker: Broker,
    /// The broker's first connection.
    first: Arc<Connection>,
    proxy: ToggleProxy,
    db: Db,
}

async fn proxied_relay(options: BrokerOptions) -> Proxied {
    common::init_telemetry();
    let db = Db::new().await;
    let (proxy, settings, direct) = common::proxied().await;
    let broker = Broker::start_with(&settings, "events-test", options);
    let first = broker.wait_connected(WAIT).await.unwrap();
    let probe = Probe::bind(&direct, "#").await;
    let relay = relay(&db, &broker, &Metrics::new("events-test"));
    Proxied {
        relay,
        probe,
        broker,
        first,
        proxy,
        db,
    }
}

impl Proxied {
    /// Takes the broker away for `outage` with an event committed meanwhile, which stays
    /// unpublished; then brings it back: the event is published once within `within`.
    async fn outage(&mut self, outage: Duration, within: Duration) {
        self.proxy.close().await;
        eventually("the outage is noticed", WAIT, || async {
            !self.broker.is_connected()
        })
        .await;
        let during = enqueue_committed(&self.db, "test.during").await;
        tokio::time::sleep(outage).await;
        assert!(!self.broker.is_connected());
        assert_eq!(self.db.count(&unpublished(during)).await, 1);
        self.proxy.reopen().await;
        let what = "published after the broker is back";
        assert_published_once(&mut self.probe, &self.db, during, within, what).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_resumes_by_itself_after_a_broker_outage() {
    let mut rig = proxied_relay(BrokerOptions::default()).await;
    let before = enqueue_committed(&rig.db, "test.before").await;
    assert_delivered(&mut rig.probe, before, WAIT, "published while up").await;
    rig.outage(Duration::from_secs(1), Duration::from_secs(90))
        .await;
    assert!(rig.broker.is_connected());
    assert!(rig.relay.is_running());
}

/// An outage longer than lapin's own recovery retries: lapin 4.12 then leaves the connection
/// stuck for ever (see `broker.rs`), so this proves the supervisor replaces it and the relay
/// carries on by itself on the new connection (recovery bounds shortened: `short_recovery`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_resumes_after_an_outage_longer_than_lapin_recovery() {
    let mut rig = proxied_relay(common::short_recovery()).await;
    let before = enqueue_committed(&rig.db, "test.before").await;
    assert!(rig.probe.next(WAIT).await.is_some());
    rig.db
        .wait_count("published while up", &published(before), 1)
        .await;
    // Longer than lapin's retries and than `abandon_after`.
    rig.outage(Duration::from_secs(8), Duration::from_secs(60))
        .await;
    let second = rig.broker.wait_connected(WAIT).await.unwrap();
    assert!(
        !Arc::ptr_eq(&rig.first, &second),
        "a new connection replaced the stuck one"
    );
    assert!(rig.relay.is_running());
}
