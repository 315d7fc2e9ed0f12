//! `zimmer-fake-zarinpal`: the fake gateway as a process, for `scripts/start.sh` and end-to-end
//! tests. Listens on `FAKE_ZARINPAL_ADDR`, else `127.0.0.1:$HTTP_PORT`, else `127.0.0.1:8091`;
//! `FAKE_ZARINPAL_AUTO_VERIFY=1` acts as an auto-verifying terminal. Test controls at
//! `POST /__fake/controls`, sessions at `GET /__fake/sessions/{authority}`.

use zimmer_fake_zarinpal::{Controls, FakeZarinpal};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    zimmer_service::fake::init_tracing();
    let addr = zimmer_service::fake::listen_addr("FAKE_ZARINPAL_ADDR", 8091);
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
    zimmer_service::fake::run(server).await?;
    Ok(())
}
