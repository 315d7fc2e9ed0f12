//! The marketplace service. This first slice serves a customer's own automations (the panel's
//! `GET /api/user/automations`, a bare array) and seeds the demo catalogue; the catalogue,
//! token ledger and consumption come with the marketplace issue.

pub mod handlers;
pub mod queries;
pub mod routes;
pub mod seed;

use zimmer_config::Settings;
use zimmer_service::{Application, Platform};

pub async fn build(settings: Settings) -> anyhow::Result<Application> {
    let platform = Platform::start(settings, None).await?;
    platform.serve(routes::configure)
}
