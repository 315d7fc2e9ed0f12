//! The request and response bodies of the services' internal APIs (`/internal/...`, never routed
//! by the gateway; docs/architecture.md "Internal APIs"). The owner's handler deserializes the
//! request type and serializes the response type; the caller (today the admin service) does the
//! opposite with the same structs, so both sides change together or the build breaks.
//!
//! One module per owner area; every type is plain serde (no HTTP framework, no database).

pub mod automations;
pub mod discounts;
pub mod kb_monitoring;
pub mod knowledge;
pub mod notifications;
pub mod openai;
pub mod tickets;
pub mod users;
