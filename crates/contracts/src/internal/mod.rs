//! The request and response bodies of the services' internal APIs (`/internal/...`, never routed
//! by the gateway; docs/architecture.md "Internal APIs"). The owner's handler deserializes the
//! request type and serializes the response type; the caller (today the admin service) does the
//! opposite with the same structs, so both sides change together or the build breaks.
//!
//! One module per owner area; every type is plain serde (no HTTP framework, no database).
//! What several areas share is here: the list answers ([`List`], [`Page`]) and the serde of a
//! partial update's clearable fields ([`nullable`]).

pub mod automations;
pub mod discounts;
pub mod kb_monitoring;
pub mod knowledge;
pub mod notifications;
pub mod openai;
pub mod tickets;
pub mod tokens;
pub mod users;

use serde::{Deserialize, Serialize};

/// A list answer: the rows asked for and how many rows match in all.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct List<T> {
    pub items: Vec<T>,
    pub total: i64,
}

/// A numbered page of a list: the rows of page `page` (from 1) of `page_size` rows, and how
/// many rows match in all.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct Page<T> {
    pub items: Vec<T>,
    pub total: i64,
    pub page: i64,
    pub page_size: i64,
}

/// Serde of a partial update's clearable field, `Option<Option<T>>` with
/// `#[serde(default, with = "nullable", skip_serializing_if = "Option::is_none")]`: an absent
/// field is `None` (unchanged), `null` is `Some(None)` (cleared), a value is `Some(Some(v))`;
/// written back the same way.
pub mod nullable {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<T: Serialize, S: Serializer>(
        value: &Option<Option<T>>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match value {
            Some(inner) => inner.serialize(s),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, T: Deserialize<'de>, D: Deserializer<'de>>(
        de: D,
    ) -> Result<Option<Option<T>>, D::Error> {
        Option::<T>::deserialize(de).map(Some)
    }
}
