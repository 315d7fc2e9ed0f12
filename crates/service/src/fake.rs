//! What the fakes' processes (crates/fake-openai, crates/fake-zarinpal) share: plain logging,
//! their listen address, and one server that stops on SIGTERM or Ctrl-C. No service uses it.

use std::net::TcpListener;

use actix_web::{App, HttpServer, dev::Server, web};

/// Plain text logs, filtered by `RUST_LOG` (default `info`).
pub fn init_tracing() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
}

/// `addr_var` when set, else `127.0.0.1:$HTTP_PORT`, else `127.0.0.1:{default_port}`.
pub fn listen_addr(addr_var: &str, default_port: u16) -> String {
    std::env::var(addr_var).unwrap_or_else(|_| {
        let port = std::env::var("HTTP_PORT").unwrap_or_else(|_| default_port.to_string());
        format!("127.0.0.1:{port}")
    })
}

/// A fake's HTTP server on `listener`: one worker and no signal handling of its own (a test
/// stops it through its handle, the binary through [`run`]).
pub fn server<F>(listener: TcpListener, routes: F) -> std::io::Result<Server>
where
    F: Fn(&mut web::ServiceConfig) + Clone + Send + 'static,
{
    Ok(
        HttpServer::new(move || App::new().configure(routes.clone()))
            .workers(1)
            .disable_signals()
            .listen(listener)?
            .run(),
    )
}

/// Runs `server` until SIGTERM or Ctrl-C, then stops it gracefully.
pub async fn run(server: Server) -> std::io::Result<()> {
    let handle = server.handle();
    tokio::spawn(async move {
        crate::shutdown_signal().await;
        handle.stop(true).await;
    });
    server.await
}
