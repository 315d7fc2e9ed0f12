//! The crate's tests in one binary (one link instead of one per file): each topic is a
//! module; nextest still runs every test in its own process.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod admin_browser;
mod browser;
mod openapi;
mod panel_contract;
mod sse;
