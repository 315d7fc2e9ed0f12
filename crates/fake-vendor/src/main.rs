//! `zimmer-fake-vendor`: the fake automation vendor of the local platform (see the library
//! of this crate). It runs the demo automations of the marketplace's `seed-demo`.
//!
//! Environment: `FAKE_VENDOR_LISTEN` (default `127.0.0.1:<HTTP_PORT or 8090>`),
//! `DEMO_SERVICE_TOKEN` (the same as for `seed-demo`), `MARKETPLACE_URL` (default
//! `http://127.0.0.1:8002`), `RUST_LOG`.

use zimmer_config::Env;
use zimmer_fake_vendor::{FakeVendor, FakeVendorConfig, demo};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber_init();
    let env = Env::process();
    let port = env.string("HTTP_PORT", "8090");
    let listen = env.string("FAKE_VENDOR_LISTEN", &format!("127.0.0.1:{port}"));
    let (host, port) = listen
        .rsplit_once(':')
        .ok_or_else(|| anyhow::anyhow!("FAKE_VENDOR_LISTEN must be host:port"))?;
    let base = env.string("DEMO_SERVICE_TOKEN", demo::DEV_DEMO_SERVICE_TOKEN);
    let config = FakeVendorConfig {
        host: host.to_owned(),
        port: port.parse()?,
        service_tokens: demo::demo_service_tokens(&base),
        marketplace_url: env.string("MARKETPLACE_URL", "http://127.0.0.1:8002"),
    };
    let (server, vendor) = FakeVendor::server(config)?;
    println!("fake vendor listening on {}", vendor.address);
    tokio::select! {
        r = server => r?,
        _ = zimmer_service::shutdown_signal() => {}
    }
    Ok(())
}

fn tracing_subscriber_init() {
    let settings =
        zimmer_config::Settings::load("fake-vendor", Env::from_pairs([("LOG_FORMAT", "pretty")]));
    if let Ok(settings) = settings {
        std::mem::forget(zimmer_telemetry::init(&settings));
    }
}
