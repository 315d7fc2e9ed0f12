//! Database access of the marketplace. Every function takes `&mut AsyncPgConnection`, so a
//! handler composes several of them (and the outbox insert) into one transaction.

pub mod automations;
pub mod cache;
pub mod catalogue;
pub mod consume;
pub mod fallbacks;
pub mod kb_monitoring;
pub mod knowledge;
pub mod ledger;
pub mod provisioning;
pub mod usage;
pub mod user_automations;

pub use zimmer_db::contains_pattern;
