const USAGE: &str = "usage: zimmer-marketplace [serve | migrate | seed-demo]";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    zimmer_service::run_command_line(
        "marketplace",
        USAGE,
        zimmer_marketplace::build,
        async |command, settings| match command {
            "seed-demo" => zimmer_marketplace::seed::demo_automations(settings)
                .await
                .map(|()| true),
            _ => Ok(false),
        },
    )
    .await
}
