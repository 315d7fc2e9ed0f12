//! The admin service. Until its issue lands it serves only `/healthz`, `/readyz` and
//! `/metrics` (and verifies tokens like every service, so the shared pieces are exercised).

use zimmer_config::Settings;
use zimmer_service::{Application, Platform};

pub async fn build(settings: Settings) -> anyhow::Result<Application> {
    let platform = Platform::start(settings, None).await?;
    platform.serve(|_cfg| {})
}
