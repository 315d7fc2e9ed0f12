#![allow(clippy::unwrap_used, clippy::expect_used)]
mod common;
use common::{Proxy, WAIT, amqp_settings_with_url};
use std::time::Duration;
use zimmer_events::Broker;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_outage_state() {
    common::init_telemetry();
    let proxy = Proxy::start().await;
    let settings = amqp_settings_with_url(proxy.url());
    let broker = Broker::start(&settings, "exp");
    let conn = broker.wait_connected(WAIT).await.unwrap();
    proxy.down().await;
    for i in 0..25 {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let s = conn.status();
        eprintln!(
            "t={i} connected={} reconnecting={} errored={} closed={} broker_connected={}",
            s.connected(),
            s.reconnecting(),
            s.errored(),
            s.closed(),
            broker.is_connected()
        );
    }
    proxy.up().await;
    for i in 0..10 {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let s = conn.status();
        eprintln!(
            "after up t={i} connected={} reconnecting={} errored={} closed={} broker_connected={}",
            s.connected(),
            s.reconnecting(),
            s.errored(),
            s.closed(),
            broker.is_connected()
        );
    }
}
