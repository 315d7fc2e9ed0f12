use zimmer_config::Settings;

const USAGE: &str = "usage: zimmer-marketplace [serve | migrate | seed-demo]";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let settings = Settings::from_process_env("marketplace")?;
    let _telemetry = zimmer_telemetry::init(&settings);
    match std::env::args().nth(1).as_deref() {
        None | Some("serve") => {
            zimmer_marketplace::build(settings)
                .await?
                .run_until_stopped()
                .await?
        }
        Some("migrate") => zimmer_service::migrate(&settings).await?,
        Some("seed-demo") => zimmer_marketplace::seed::demo_automations(&settings).await?,
        Some("-h" | "--help" | "help") => println!("{USAGE}"),
        Some(other) => anyhow::bail!("unknown command `{other}`; {USAGE}"),
    }
    Ok(())
}
