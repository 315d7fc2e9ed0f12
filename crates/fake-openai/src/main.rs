//! `zimmer-fake-openai`: the fake chat completions endpoint as a process, for
//! `scripts/start.sh` and end-to-end tests. Listens on `FAKE_OPENAI_ADDR`, else
//! `127.0.0.1:$HTTP_PORT`, else `127.0.0.1:8093`; accepts the keys listed (comma-separated) in
//! `FAKE_OPENAI_KEYS` (default `sk-zimmer-dev-key`). Never the real API.

use zimmer_fake_openai::{FakeConfig, FakeOpenAi};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let addr = std::env::var("FAKE_OPENAI_ADDR").unwrap_or_else(|_| {
        let port = std::env::var("HTTP_PORT").unwrap_or_else(|_| "8093".into());
        format!("127.0.0.1:{port}")
    });
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
    let handle = server.handle();
    tokio::spawn(async move {
        zimmer_service::shutdown_signal().await;
        handle.stop(true).await;
    });
    server.await?;
    Ok(())
}
