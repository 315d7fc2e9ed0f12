//! Exchanges and queues.
//!
//! - `settings.exchange` (`zimmer.events`): durable topic exchange, routing key = event type.
//! - `settings.dead_letter_exchange()` (`zimmer.dlx`): durable topic exchange. A consumer
//!   queue dead-letters with its own name as routing key, and `<queue>.dlq` is bound with that
//!   key, so each consumer's poison messages land in its own DLQ.
//! - per consumer `<exchange>.<name>`: durable queue bound to its event types;
//!   `<queue>.retry`: durable queue without consumers whose messages, when their per-message
//!   TTL runs out, dead-letter back to `<queue>` through the default exchange (delayed retry);
//!   `<queue>.dlq`: durable, bound to the DLX.
//!
//! In transient mode (tests) exchanges auto-delete and queues get `x-expires`, so nothing is
//! left behind in the broker.

use lapin::{
    Channel, ExchangeKind,
    options::{ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions},
    types::{AMQPValue, FieldTable, ShortString},
};
use zimmer_config::AmqpSettings;

use crate::broker::{BrokerError, bounded};

/// How long an unused queue survives in transient (test) mode.
const TRANSIENT_QUEUE_EXPIRES_MS: i64 = 5 * 60 * 1000;

/// The durable queue of consumer `name`: `<exchange>.<name>`.
pub fn queue_name(settings: &AmqpSettings, name: &str) -> String {
    format!("{}.{name}", settings.exchange)
}

pub fn retry_queue_name(queue: &str) -> String {
    format!("{queue}.retry")
}

pub fn dead_letter_queue_name(queue: &str) -> String {
    format!("{queue}.dlq")
}

/// Declares the event exchange and the dead-letter exchange.
pub async fn declare_exchanges(
    channel: &Channel,
    settings: &AmqpSettings,
) -> Result<(), BrokerError> {
    let options = ExchangeDeclareOptions {
        durable: true,
        auto_delete: settings.transient,
        ..ExchangeDeclareOptions::default()
    };
    for exchange in [settings.exchange.clone(), settings.dead_letter_exchange()] {
        bounded(
            "exchange.declare",
            channel.exchange_declare(
                exchange.into(),
                ExchangeKind::Topic,
                options,
                FieldTable::default(),
            ),
        )
        .await?;
    }
    Ok(())
}

fn queue_arguments(settings: &AmqpSettings) -> FieldTable {
    let mut args = FieldTable::default();
    if settings.transient {
        args.insert(
            "x-expires".into(),
            AMQPValue::LongLongInt(TRANSIENT_QUEUE_EXPIRES_MS),
        );
    }
    args
}

fn long_string(s: &str) -> AMQPValue {
    AMQPValue::LongString(s.into())
}

/// Declares a consumer's queue (bound to `bindings`), its retry queue and its DLQ, plus the
/// exchanges. Idempotent; returns the queue name.
pub async fn declare_consumer_queues(
    channel: &Channel,
    settings: &AmqpSettings,
    name: &str,
    bindings: &[String],
) -> Result<String, BrokerError> {
    declare_exchanges(channel, settings).await?;
    let queue = queue_name(settings, name);
    let retry = retry_queue_name(&queue);
    let dlq = dead_letter_queue_name(&queue);
    let dlx = settings.dead_letter_exchange();
    let durable = QueueDeclareOptions::durable();

    let mut main_args = queue_arguments(settings);
    main_args.insert("x-dead-letter-exchange".into(), long_string(&dlx));
    main_args.insert("x-dead-letter-routing-key".into(), long_string(&queue));
    bounded(
        "queue.declare",
        channel.queue_declare(queue.as_str().into(), durable, main_args),
    )
    .await?;
    for key in bindings {
        bounded(
            "queue.bind",
            channel.queue_bind(
                queue.as_str().into(),
                settings.exchange.as_str().into(),
                ShortString::from(key.as_str()),
                QueueBindOptions::default(),
                FieldTable::default(),
            ),
        )
        .await?;
    }

    // Expired retries go back to the consumer's queue through the default exchange.
    let mut retry_args = queue_arguments(settings);
    retry_args.insert("x-dead-letter-exchange".into(), long_string(""));
    retry_args.insert("x-dead-letter-routing-key".into(), long_string(&queue));
    bounded(
        "queue.declare",
        channel.queue_declare(retry.as_str().into(), durable, retry_args),
    )
    .await?;

    bounded(
        "queue.declare",
        channel.queue_declare(dlq.as_str().into(), durable, queue_arguments(settings)),
    )
    .await?;
    bounded(
        "queue.bind",
        channel.queue_bind(
            dlq.as_str().into(),
            dlx.as_str().into(),
            queue.as_str().into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        ),
    )
    .await?;
    Ok(queue)
}

/// Declares a per-process broadcast queue bound to `bindings`: exclusive and auto-delete, so
/// it disappears with the connection. Client-named (not server-named) on purpose: lapin's
/// recovery re-declares queues by name, and RabbitMQ refuses a client declaring an `amq.gen-*`
/// name, which would break recovery of the whole connection.
pub async fn declare_broadcast_queue(
    channel: &Channel,
    settings: &AmqpSettings,
    queue: &str,
    bindings: &[String],
) -> Result<(), BrokerError> {
    declare_exchanges(channel, settings).await?;
    let options = QueueDeclareOptions {
        exclusive: true,
        auto_delete: true,
        durable: false,
        ..QueueDeclareOptions::default()
    };
    bounded(
        "queue.declare",
        channel.queue_declare(queue.into(), options, queue_arguments(settings)),
    )
    .await?;
    for key in bindings {
        bounded(
            "queue.bind",
            channel.queue_bind(
                queue.into(),
                settings.exchange.as_str().into(),
                ShortString::from(key.as_str()),
                QueueBindOptions::default(),
                FieldTable::default(),
            ),
        )
        .await?;
    }
    Ok(())
}
