//! The crate's tests in one binary (one link instead of one per file): each topic is a
//! module; nextest still runs every test in its own process.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod automations;
mod backups;
mod common;
mod dashboard_contract;
mod dashboard_pages;
mod dashboard_rollup;
mod gateway_e2e;
mod kb_monitoring;
mod keys;
mod keys_dashboard;
mod knowledge;
mod notifications;
mod openapi;
mod operations;
mod rbac;
mod stats;
mod ticket_delete;
mod tokens;
mod users;
