//! Auth's operations: each runs in a transaction, calls `queries`, and writes the outbox
//! events it causes in the same transaction; the `*_locally` steps run after commit.

pub mod account;
pub mod sessions;
pub mod twofa;

/// The producer name on auth's outbox rows.
pub const PRODUCER: &str = "auth";
