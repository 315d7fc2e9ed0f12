//! What changes state: each function runs inside one database transaction (opened here or
//! handed in by the caller), calls `queries/` for the SQL and `domain/` for the rules, and
//! enqueues the outbox events the change causes in that same transaction.

pub mod adjust;
pub mod consume;
pub mod credit;
pub mod fallbacks;
pub mod kb_monitoring;
pub mod knowledge;
pub mod ledger;
pub mod seed;
pub mod user_automations;
