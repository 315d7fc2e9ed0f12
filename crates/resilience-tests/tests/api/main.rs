//! The crate's tests in one binary (one link instead of one per file): each topic is a
//! module; nextest still runs every test in its own process.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod auth_outage;
mod faults;
mod fixtures;
mod metrics;
mod rolling;
mod scale_out;
mod shutdown;
mod traces;
