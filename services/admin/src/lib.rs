//! The admin service: everything under `/api/admin` for managers, the technical team and
//! support staff (docs/rbac.md). It reads every table for dashboards and lists, writes only its own
//! (OpenAI keys, encrypted; the audit log), changes other services' data only through their
//! internal APIs (`clients/`) or an event (`notification.broadcast`), and audits every action.

pub mod clients;
pub mod config;
pub mod crypto;
pub mod domain;
pub mod handlers;
pub mod ops;
pub mod queries;
pub mod rbac;
pub mod routes;
mod state;
pub mod workers;

use std::sync::Arc;

use zimmer_config::Settings;
use zimmer_service::{Application, Platform};

pub use state::AppState;

use crate::{clients::Upstreams, config::AdminConfig, crypto::KeyCipher};

/// The producer name of admin's events (outbox rows and envelopes).
pub const PRODUCER: &str = "admin";

/// Builds admin: the platform, the outbox relay (broadcasts), and the routes.
pub async fn build(settings: Settings) -> anyhow::Result<Application> {
    // Configuration errors stop the start here, before anything connects (in production a
    // missing OPENAI_KEYS_ENCRYPTION_KEY is one).
    let config = AdminConfig::from_settings(&settings)?;
    let cipher = KeyCipher::from_settings(&settings)?;
    let upstreams = Upstreams::new(&settings, &config)?;
    let mut platform = Platform::start(settings, None).await?;
    platform.spawn_outbox_relay(PRODUCER);
    workers::backups::spawn_schedule(platform.pool.clone(), config.backups.clone());
    workers::rollup::spawn(platform.pool.clone());
    let state = AppState {
        platform: platform.clone(),
        config: Arc::new(config),
        cipher,
        upstreams,
    };
    platform.serve(move |cfg| routes::configure(cfg, state.clone()))
}
