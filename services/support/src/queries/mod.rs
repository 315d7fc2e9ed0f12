//! Support's database access. Every function takes the connection, so handlers and event
//! handlers compose them in one transaction with the outbox insert of the event they cause.

pub mod lookups;
pub mod notifications;
pub mod tickets;
