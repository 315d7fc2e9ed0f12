use std::sync::Arc;

use zimmer_config::Settings;

const USAGE: &str = "usage: zimmer-billing [serve | migrate | reconcile]";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let settings = Settings::from_process_env("billing")?;
    let _telemetry = zimmer_telemetry::init(&settings);
    match std::env::args().nth(1).as_deref() {
        None | Some("serve") => {
            zimmer_billing::build(settings)
                .await?
                .run_until_stopped()
                .await?
        }
        Some("migrate") => zimmer_service::migrate(&settings).await?,
        // One reconciliation round now, e.g. from cron or by hand after a gateway outage.
        Some("reconcile") => {
            let config = zimmer_billing::config::BillingConfig::from_settings(&settings)?;
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
        }
        Some(other) => anyhow::bail!("unknown command `{other}`; {USAGE}"),
    }
    Ok(())
}
