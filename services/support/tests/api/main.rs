//! The crate's tests in one binary (one link instead of one per file): each topic is a
//! module; nextest still runs every test in its own process.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod gateway_e2e;
mod notifications;
mod openapi;
mod streams;
mod threads;
mod ticket_create;
mod ticket_delete;
mod tickets;
