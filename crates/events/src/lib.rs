//! Events between Zimmer services: the envelope, the transactional outbox and its relay, the
//! broker connection and topology, idempotent consumers, and the broadcast listener.
//!
//! Payloads are the types of `zimmer_contracts` (re-exported as [`contracts`]): one
//! declaration per event, its routing key and version, used by producer and consumers.
//!
//! Producing: inside the transaction that changes state, call [`enqueue_event`]; the
//! [`OutboxRelay`] publishes the row after commit with publisher confirms and marks it
//! published only once the broker acked it. If the broker is down, requests still succeed and
//! events go out when it returns (at least once: consumers deduplicate).
//!
//! Consuming: handlers read payloads with [`Envelope::decode`], which refuses a version the
//! consumer does not know (the message is dead-lettered with a log line naming type and
//! version). [`spawn_consumer`] subscribes a durable queue; each delivery is applied with
//! [`apply_once`] (inbox row + handler effect in one transaction, then ack). Transient handler
//! failures are retried through a delay queue with exponential backoff, then dead-lettered;
//! permanent failures and unparseable messages are dead-lettered at once. Dead-lettered
//! messages wait in `<queue>.dlq` and are counted in `events_dead_lettered_total`.
//!
//! Wiring in a service (on the main multi-thread runtime, before the HTTP server):
//! ```ignore
//! let broker = Broker::start(&settings.amqp, settings.service);
//! let relay = OutboxRelay::spawn(pool.clone(), broker.clone(), "auth", metrics.clone());
//! let probes = Probes::new()
//!     .with_pool(pool.clone())
//!     .ready_when(broker.readiness_check())
//!     .alive_while(relay.liveness_check());
//! ```

mod broker;
mod consumer;
mod envelope;
mod outbox;
pub mod topology;

pub use broker::{Broker, BrokerError, BrokerOptions};
pub use consumer::{
    ConsumerHandle, ConsumerSpec, EventHandler, HandlerError, Outcome, RETRY_HEADER, apply_once,
    retry_delay, spawn_broadcast_listener, spawn_consumer,
};
pub use envelope::{DecodeError, ENVELOPE_VERSION, Envelope, string_headers};
pub use outbox::{
    HandoffSlot, OUTBOX_CHANNEL, OutboxRelay, RelayHandle, RelayOptions, enqueue, enqueue_envelope,
    enqueue_event, outbox_json,
};

/// The event contracts, re-exported so producers and consumers name them from one place.
pub use zimmer_contracts as contracts;
pub use zimmer_contracts::Event;

/// Re-exported so handlers can name their future type without a direct dependency.
pub use futures_util::future::BoxFuture;
