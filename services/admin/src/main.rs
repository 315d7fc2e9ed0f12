use zimmer_config::Settings;

const USAGE: &str = "usage: zimmer-admin [serve | migrate]";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let settings = Settings::from_process_env("admin")?;
    let _telemetry = zimmer_telemetry::init(&settings);
    match std::env::args().nth(1).as_deref() {
        None | Some("serve") => {
            zimmer_admin::build(settings)
                .await?
                .run_until_stopped()
                .await?
        }
        Some("migrate") => zimmer_service::migrate(&settings).await?,
        Some("-h" | "--help" | "help") => println!("{USAGE}"),
        Some(other) => anyhow::bail!("unknown command `{other}`; {USAGE}"),
    }
    Ok(())
}
