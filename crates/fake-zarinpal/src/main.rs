//! `zimmer-fake-zarinpal`: the fake gateway as a process, for `scripts/start.sh` and end-to-end
//! tests. Listens on `FAKE_ZARINPAL_ADDR`, else `127.0.0.1:$HTTP_PORT`, else `127.0.0.1:8091`;
//! `FAKE_ZARINPAL_AUTO_VERIFY=1` acts as an auto-verifying terminal. Test controls at
//! `POST /__fake/controls`, sessions at `GET /__fake/sessions/{authority}`.

use zimmer_fake_zarinpal::{Controls, FakeZarinpal};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let addr = std::env::var("FAKE_ZARINPAL_ADDR").unwrap_or_else(|_| {
        let port = std::env::var("HTTP_PORT").unwrap_or_else(|_| "8091".into());
        format!("127.0.0.1:{port}")
    });
    let auto_verify = matches!(
        std::env::var("FAKE_ZARINPAL_AUTO_VERIFY").as_deref(),
        Ok("1" | "true" | "yes")
    );
    let listener = std::net::TcpListener::bind(&addr)?;
    let (fake, server) = FakeZarinpal::serve(
        listener,
        Controls {
            auto_verify,
            ..Controls::default()
        },
    )?;
    tracing::info!(base_url = %fake.base_url, "fake zarinpal listening (not a real gateway)");
    let handle = server.handle();
    tokio::spawn(async move {
        zimmer_service::shutdown_signal().await;
        handle.stop(true).await;
    });
    server.await?;
    Ok(())
}
