//! Billing's operations: each opens a transaction, calls `queries`, and writes the outbox
//! event it causes in the same transaction.

pub mod discounts;
pub mod purchase;
pub mod settle;
