use zimmer_config::Settings;

const USAGE: &str = "usage: zimmer-auth [serve | migrate | gen-key PATH | seed-demo]";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("gen-key") => {
            let path = args.get(1).ok_or_else(|| anyhow::anyhow!(USAGE))?;
            return zimmer_service::write_key_file(path);
        }
        Some("-h" | "--help" | "help") => {
            println!("{USAGE}");
            return Ok(());
        }
        _ => {}
    }
    let settings = Settings::from_process_env("auth")?;
    let _telemetry = zimmer_telemetry::init(&settings);
    match args.first().map(String::as_str) {
        None | Some("serve") => {
            zimmer_auth::build(settings)
                .await?
                .run_until_stopped()
                .await?;
        }
        Some("migrate") => zimmer_service::migrate(&settings).await?,
        Some("seed-demo") => zimmer_auth::seed::demo_manager(&settings).await?,
        Some(other) => anyhow::bail!("unknown command `{other}`; {USAGE}"),
    }
    Ok(())
}
