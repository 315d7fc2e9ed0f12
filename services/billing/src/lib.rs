//! The billing service: token purchases through Zarinpal (v4), verified exactly once, with
//! discount codes, payment history, and a reconciliation job for payments whose callback never
//! came. The fake Zarinpal used locally and in tests is its own crate, `crates/fake-zarinpal`.

pub mod clients;
pub mod config;
pub mod domain;
pub mod handlers;
pub mod ops;
pub mod queries;
pub mod routes;
mod state;
pub mod workers;

use std::sync::Arc;

use zimmer_config::Settings;
use zimmer_service::{Application, Platform};

pub use ops::settle::Billing;
pub use state::AppState;

use crate::{config::BillingConfig, ops::settle::BillingMetrics};

/// Builds billing: the platform, the outbox relay, the reconciliation job and the routes.
pub async fn build(settings: Settings) -> anyhow::Result<Application> {
    let config = BillingConfig::from_settings(&settings)?;
    let mut platform = Platform::start(settings, None).await?;
    let zarinpal = config.client()?.with_metrics(&platform.metrics.registry);
    tracing::info!(gateway = %config.zarinpal_base_url, client = ?zarinpal, "zarinpal configured");
    let billing = Billing {
        pool: platform.pool.clone(),
        zarinpal,
        config: Arc::new(config),
        metrics: BillingMetrics::register(&platform.metrics.registry)?,
    };
    platform.spawn_outbox_relay(ops::settle::PRODUCER);
    if billing.config.reconcile_enabled {
        let job = workers::reconcile::spawn(billing.clone());
        platform.alive_while(job.liveness_check());
    }
    let state = AppState {
        platform: platform.clone(),
        billing,
    };
    platform.serve_table(state, routes::DOC, routes::ROUTES)
}
