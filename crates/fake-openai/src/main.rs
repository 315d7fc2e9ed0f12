//! `zimmer-fake-openai`: the fake chat completions endpoint as a process, for
//! `scripts/start.sh` and end-to-end tests. Listens on `FAKE_OPENAI_ADDR`, else
//! `127.0.0.1:$HTTP_PORT`, else `127.0.0.1:8093`; accepts the keys listed (comma-separated) in
//! `FAKE_OPENAI_KEYS` (default `sk-zimmer-dev-key`). Never the real API.

use zimmer_fake_openai::{FakeConfig, FakeOpenAi};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    zimmer_service::fake::init_tracing();
    let addr = zimmer_service::fake::listen_addr("FAKE_OPENAI_ADDR", 8093);
    let keys = std::env::var("FAKE_OPENAI_KEYS").unwrap_or_else(|_| "sk-zimmer-dev-key".into());
    let config = FakeConfig {
        valid_keys: keys
            .split(',')
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .map(str::to_owned)
            .collect(),
        ..FakeConfig::default()
    };
    let listener = std::net::TcpListener::bind(&addr)?;
    let (fake, server) = FakeOpenAi::serve(listener, config)?;
    tracing::info!(base_url = %fake.base_url, "fake OpenAI listening (not the real API)");
    zimmer_service::fake::run(server).await?;
    Ok(())
}
