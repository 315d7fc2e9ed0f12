//! Billing's background jobs, started once by `build`.

pub mod reconcile;
