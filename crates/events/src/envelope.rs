//! The event envelope and its AMQP representation.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use lapin::{
    BasicProperties,
    types::{AMQPValue, FieldTable, ShortString},
};
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use uuid::Uuid;
use zimmer_contracts::Event;

/// The `version` written by [`Envelope::new`] (untyped events). Typed events write their
/// payload version, [`Event::VERSION`] (1 for every event today, so the wire is unchanged).
pub const ENVELOPE_VERSION: u32 = 1;

/// Why an envelope could not be read as a given contract type.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// The envelope carries another event type than the one asked for (a routing mistake).
    #[error("event type {found:?} is not {expected:?}")]
    WrongType {
        expected: &'static str,
        found: String,
    },
    /// A version of the payload this build does not know (a newer producer): never guessed
    /// at, so the consumer dead-letters it until it is upgraded.
    #[error(
        "unknown version {version} of event {event_type:?} (this consumer knows version {known})"
    )]
    UnknownVersion {
        event_type: String,
        version: u32,
        known: u32,
    },
    /// The right type and version, but `data` does not match the contract.
    #[error("malformed {event_type:?} payload: {source}")]
    Payload {
        event_type: String,
        #[source]
        source: serde_json::Error,
    },
}

/// The event envelope (docs/events.md): JSON on the wire, routing key = `type`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    /// UUIDv7: time-ordered, so outbox rows and logs sort naturally.
    pub id: Uuid,
    #[serde(rename = "type")]
    pub event_type: String,
    pub version: u32,
    pub occurred_at: DateTime<Utc>,
    pub producer: String,
    /// W3C trace context of the request that caused the event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traceparent: Option<String>,
    pub data: serde_json::Value,
}

impl Envelope {
    /// A new envelope with a fresh UUIDv7 id, occurring now, without trace context.
    pub fn new(producer: &str, event_type: &str, data: serde_json::Value) -> Self {
        Self {
            id: Uuid::now_v7(),
            event_type: event_type.to_owned(),
            version: ENVELOPE_VERSION,
            occurred_at: Utc::now(),
            producer: producer.to_owned(),
            traceparent: None,
            data,
        }
    }

    /// A new envelope for a contract event: `type` and `version` come from `E`.
    pub fn of<E: Event>(producer: &str, data: &E) -> Result<Self, serde_json::Error> {
        Ok(Self {
            version: E::VERSION,
            ..Self::new(producer, E::NAME, serde_json::to_value(data)?)
        })
    }

    /// The payload as the contract type `E`, after checking that this envelope is an `E` of a
    /// version `E` knows. Consumers turn the error into a permanent failure (dead letter).
    pub fn decode<E: Event>(&self) -> Result<E, DecodeError> {
        if self.event_type != E::NAME {
            return Err(DecodeError::WrongType {
                expected: E::NAME,
                found: self.event_type.clone(),
            });
        }
        if self.version != E::VERSION {
            return Err(DecodeError::UnknownVersion {
                event_type: self.event_type.clone(),
                version: self.version,
                known: E::VERSION,
            });
        }
        E::deserialize(&self.data).map_err(|source| DecodeError::Payload {
            event_type: self.event_type.clone(),
            source,
        })
    }

    /// The `data` object as any deserializable type, without the type and version checks of
    /// [`Envelope::decode`] (tests and tools; services use `decode`).
    pub fn data_as<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        T::deserialize(&self.data)
    }

    /// The AMQP properties every event is published with: persistent, JSON, `message_id` =
    /// event id, `type` = event type, and `headers` (trace context) as AMQP headers.
    pub fn amqp_properties(&self, headers: &HashMap<String, String>) -> BasicProperties {
        message_properties(
            self.id,
            &self.event_type,
            &self.producer,
            self.occurred_at,
            headers,
        )
    }
}

pub(crate) fn message_properties(
    id: Uuid,
    event_type: &str,
    producer: &str,
    occurred_at: DateTime<Utc>,
    headers: &HashMap<String, String>,
) -> BasicProperties {
    let mut table = FieldTable::default();
    for (k, v) in headers {
        table.insert(
            ShortString::from(k.as_str()),
            AMQPValue::LongString(v.as_str().into()),
        );
    }
    BasicProperties::default()
        .with_content_type("application/json".into())
        .with_delivery_mode(2) // persistent
        .with_message_id(id.to_string().into())
        .with_type(event_type.into())
        .with_app_id(producer.into())
        .with_timestamp(u64::try_from(occurred_at.timestamp()).unwrap_or_default())
        .with_headers(table)
}

/// The string-valued AMQP headers (trace context and the like), keys as sent.
pub fn string_headers(properties: &BasicProperties) -> HashMap<String, String> {
    let mut out = HashMap::new();
    if let Some(table) = properties.headers() {
        for (k, v) in table.inner() {
            let value = match v {
                AMQPValue::LongString(s) => String::from_utf8_lossy(s.as_bytes()).into_owned(),
                AMQPValue::ShortString(s) => s.as_str().to_owned(),
                _ => continue,
            };
            out.insert(k.as_str().to_owned(), value);
        }
    }
    out
}

/// An integer AMQP header, whatever integer width the sender used.
pub(crate) fn int_header(properties: &BasicProperties, key: &str) -> Option<i64> {
    let value = properties.headers().as_ref()?.inner().get(key)?;
    match value {
        AMQPValue::ShortShortInt(v) => Some(i64::from(*v)),
        AMQPValue::ShortShortUInt(v) => Some(i64::from(*v)),
        AMQPValue::ShortInt(v) => Some(i64::from(*v)),
        AMQPValue::ShortUInt(v) => Some(i64::from(*v)),
        AMQPValue::LongInt(v) => Some(i64::from(*v)),
        AMQPValue::LongUInt(v) => Some(i64::from(*v)),
        AMQPValue::LongLongInt(v) => Some(*v),
        AMQPValue::LongString(s) => String::from_utf8_lossy(s.as_bytes()).trim().parse().ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_format_uses_type_and_omits_missing_traceparent() {
        let env = Envelope::new("auth", "user.registered", serde_json::json!({"user_id": 7}));
        let v = serde_json::to_value(&env).unwrap();
        assert_eq!(v["type"], "user.registered");
        assert_eq!(v["version"], 1);
        assert_eq!(v["producer"], "auth");
        assert!(v.get("traceparent").is_none());
        assert_eq!(env.id.get_version_num(), 7);
        let back: Envelope = serde_json::from_value(v).unwrap();
        assert_eq!(back, env);

        #[derive(Deserialize)]
        struct Data {
            user_id: i64,
        }
        assert_eq!(env.data_as::<Data>().unwrap().user_id, 7);
    }

    #[test]
    fn headers_round_trip_through_amqp_properties() {
        let env = Envelope::new("auth", "session.revoked", serde_json::json!({}));
        let headers = HashMap::from([("traceparent".to_owned(), "00-abc-def-01".to_owned())]);
        let props = env.amqp_properties(&headers);
        assert_eq!(string_headers(&props), headers);
        assert_eq!(
            props.message_id().as_ref().unwrap().as_str(),
            env.id.to_string()
        );
        assert_eq!(props.kind().as_ref().unwrap().as_str(), "session.revoked");
        assert_eq!(*props.delivery_mode(), Some(2));
        assert_eq!(int_header(&props, "x-retry-count"), None);
    }

    #[test]
    fn decode_checks_type_and_version() {
        use zimmer_contracts::{PaymentFailed, TicketCreated};
        let failed = PaymentFailed {
            payment_id: 1,
            user_id: 2,
            reason: Some("canceled".into()),
        };
        let mut env = Envelope::of("billing", &failed).unwrap();
        assert_eq!(
            (env.event_type.as_str(), env.version),
            ("payment.failed", 1)
        );
        assert_eq!(env.decode::<PaymentFailed>().unwrap(), failed);
        assert!(matches!(
            env.decode::<TicketCreated>(),
            Err(DecodeError::WrongType { .. })
        ));
        env.version = 2;
        let err = env.decode::<PaymentFailed>().unwrap_err();
        assert!(matches!(
            err,
            DecodeError::UnknownVersion {
                version: 2,
                known: 1,
                ..
            }
        ));
        assert!(err.to_string().contains("payment.failed"));
        env.version = 1;
        env.data = serde_json::json!({"payment_id": "x"});
        assert!(matches!(
            env.decode::<PaymentFailed>(),
            Err(DecodeError::Payload { .. })
        ));
    }
}
