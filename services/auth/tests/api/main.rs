//! The crate's tests in one binary (one link instead of one per file): each topic is a
//! module; nextest still runs every test in its own process.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod api;
mod app_env;
mod common;
mod email;
mod gateway_e2e;
mod internal;
mod openapi;
mod outbox;
mod restart_e2e;
mod revocation;
mod security;
mod throttle;
mod tokens;
mod trust;
mod twofa;
