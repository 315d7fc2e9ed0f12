//! The crate's tests in one binary (one link instead of one per file): each topic is a
//! module; nextest still runs every test in its own process.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod callback;
mod common;
mod discounts;
mod gateway_e2e;
mod openapi;
mod outbox;
mod payments;
mod reconcile;
mod trust;
