//! The crate's tests in one binary (one link instead of one per file): each topic is a
//! module; nextest still runs every test in its own process.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod automations;
mod catalogue;
mod common;
mod consume;
mod consume_batch;
mod customer;
mod gateway_e2e;
mod internal;
mod kb_monitoring;
mod knowledge;
mod local_cache;
mod openapi;
mod payments;
mod provisioning;
mod trust;
