//! What changes state: each function runs in one database transaction (opened here, or the
//! consumer's), calls `queries/` for the SQL and `domain/` for the rules, and enqueues the
//! outbox events and notifications the change causes in that same transaction.

pub mod notifications;
pub mod tickets;

pub use tickets::*;
