//! The support service: tickets with their conversations and attachments, and the
//! notifications other services' events turn into, with their live SSE stream.

pub mod config;
pub mod domain;
pub mod handlers;
pub mod ops;
pub mod queries;
pub mod routes;
mod state;
pub mod workers;

/// `zimmer_support::consumer`, where the notifications consumer was before `workers/`.
pub use workers::consumer;

use std::sync::Arc;

use zimmer_config::Settings;
use zimmer_http::Check;
use zimmer_service::{Application, Platform};

pub use config::SupportConfig;
pub use state::AppState;

use crate::{domain::attachment::AttachmentStore, workers::live::Hub};

/// The producer name of support's events (outbox `producer`, envelope `producer`).
pub const PRODUCER: &str = "support";

/// Builds support: the platform, the outbox relay, the notifications consumer, the live
/// notification listener and the routes.
pub async fn build(settings: Settings) -> anyhow::Result<Application> {
    let config = SupportConfig::from_settings(&settings)?;
    let store = AttachmentStore::new(&config.attachments_dir);
    tokio::fs::create_dir_all(store.dir()).await.map_err(|e| {
        anyhow::anyhow!(
            "ATTACHMENTS_DIR {}: cannot create it: {e}",
            store.dir().display()
        )
    })?;
    let mut platform = Platform::start(settings, None).await?;
    let relay = platform.spawn_outbox_relay(PRODUCER);
    platform.spawn_consumer(consumer::spec(), Arc::new(consumer::Notifier));
    let hub = Hub::new();
    hub.spawn_listener(platform.pool.clone());
    let listener = hub.clone();
    platform.alive_while(Check::flag("notification_listener", "stopped", move || {
        listener.listener_running()
    }));
    let state = AppState {
        platform: platform.clone(),
        config,
        store,
        hub,
        relay: relay.clone(),
    };
    platform.serve_table(state, routes::DOC, routes::ROUTES)
}
