//! The event loops most services run (the outbox relay, event consumers), each started and
//! made part of `/healthz` in one call.

use std::sync::Arc;

use zimmer_events::{
    ConsumerHandle, ConsumerSpec, EventHandler, OutboxRelay, RelayHandle, spawn_consumer,
};

use crate::Platform;

impl Platform {
    /// Starts the outbox relay of `producer`; `/healthz` fails once it stops.
    pub fn spawn_outbox_relay(&mut self, producer: &'static str) -> RelayHandle {
        let relay = OutboxRelay::spawn(
            self.pool.clone(),
            self.broker.clone(),
            producer,
            self.metrics.clone(),
        );
        self.alive_while(relay.liveness_check());
        relay
    }

    /// Starts the consumer `spec` with `handler`; `/healthz` fails once it stops.
    pub fn spawn_consumer(
        &mut self,
        spec: ConsumerSpec,
        handler: Arc<dyn EventHandler>,
    ) -> ConsumerHandle {
        let consumer = spawn_consumer(
            self.pool.clone(),
            self.broker.clone(),
            spec,
            handler,
            self.metrics.clone(),
        );
        self.alive_while(consumer.liveness_check());
        consumer
    }
}
