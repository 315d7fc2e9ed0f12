use std::sync::Arc;

use zimmer_config::Settings;

const USAGE: &str = "usage: zimmer-billing [serve | migrate | reconcile]";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    zimmer_service::run_command_line(
        "billing",
        USAGE,
        zimmer_billing::build,
        async |command, settings| match command {
            "reconcile" => reconcile(settings).await.map(|()| true),
            _ => Ok(false),
        },
    )
    .await
}

/// One reconciliation round now, e.g. from cron or by hand after a gateway outage.
async fn reconcile(settings: &Settings) -> anyhow::Result<()> {
    let config = zimmer_billing::config::BillingConfig::from_settings(settings)?;
    let billing = zimmer_billing::Billing {
        pool: zimmer_db::connect_pool(&settings.database, "zimmer-billing-reconcile")?,
        zarinpal: config.client()?,
        config: Arc::new(config),
        metrics: zimmer_billing::ops::settle::BillingMetrics::register(
            &prometheus::Registry::new(),
        )?,
    };
    let report = billing
        .reconcile_round()
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    println!("{report:?}");
    Ok(())
}
