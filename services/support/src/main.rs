const USAGE: &str = "usage: zimmer-support [serve | migrate]";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    zimmer_service::run_command_line("support", USAGE, zimmer_support::build, async |_, _| {
        Ok(false)
    })
    .await
}
