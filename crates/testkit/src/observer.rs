//! What a service publishes, seen from a queue of the test's own on the real broker.

use std::time::Duration;

use futures_util::StreamExt;
use lapin::{
    Channel, Connection, Consumer,
    options::{BasicAckOptions, BasicConsumeOptions, QueueBindOptions, QueueDeclareOptions},
    types::FieldTable,
};
use serde_json::Value;
use zimmer_events::{Broker, topology};

use crate::TestContext;

/// An exclusive queue bound to the test's exchange for one routing key (an event name).
pub struct EventObserver {
    // Dropping the broker handle closes its connection, and with it the queue.
    _broker: Broker,
    _conn: std::sync::Arc<Connection>,
    _channel: Channel,
    deliveries: Consumer,
}

impl EventObserver {
    /// Declares the exchanges (the service may not have yet) and binds a new queue to
    /// `routing_key` on `ctx`'s exchange; only what is published from now on is seen.
    pub async fn start(ctx: &TestContext, routing_key: &str) -> Self {
        let settings = ctx.settings("test-observer", &[]);
        let broker = Broker::start(&settings.amqp, "test-observer");
        let (conn, channel) = broker
            .open_channel(Duration::from_secs(10), false)
            .await
            .expect("observer channel");
        topology::declare_exchanges(&channel, &settings.amqp)
            .await
            .expect("declare exchanges");
        let queue = channel
            .queue_declare(
                "".into(),
                QueueDeclareOptions {
                    exclusive: true,
                    auto_delete: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await
            .expect("observer queue");
        channel
            .queue_bind(
                queue.name().clone(),
                ctx.exchange.clone().into(),
                routing_key.into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
            .expect("bind observer queue");
        let deliveries = channel
            .basic_consume(
                queue.name().clone(),
                "observer".into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await
            .expect("consume observer queue");
        Self {
            _broker: broker,
            _conn: conn,
            _channel: channel,
            deliveries,
        }
    }

    /// The next event (its whole envelope, acknowledged), or `None` if none arrives `within`.
    pub async fn next(&mut self, within: Duration) -> Option<Value> {
        let delivery = tokio::time::timeout(within, self.deliveries.next())
            .await
            .ok()?
            .expect("observer consumer ended")
            .expect("observer delivery");
        let envelope = serde_json::from_slice(&delivery.data).expect("JSON envelope");
        delivery
            .ack(BasicAckOptions::default())
            .await
            .expect("ack observed event");
        Some(envelope)
    }
}
