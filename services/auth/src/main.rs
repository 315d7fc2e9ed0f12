const USAGE: &str = "usage: zimmer-auth [serve | migrate | gen-key PATH | seed-demo]";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // Both work without the service's settings (before a deployment has them).
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
    zimmer_service::run_command_line(
        "auth",
        USAGE,
        zimmer_auth::build,
        async |command, settings| match command {
            "seed-demo" => zimmer_auth::seed::demo_manager(settings)
                .await
                .map(|()| true),
            _ => Ok(false),
        },
    )
    .await
}
