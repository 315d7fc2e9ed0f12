//! The start-up every service shares, written once: telemetry, the database pool, Redis, the
//! broker connection, metrics, the verifier and the revocation feed, the probes, and the HTTP
//! server with the common middleware and extractor configuration. A service adds its routes,
//! consumers and workers on top.

mod revocation_feed;

use std::{net::TcpListener, time::Duration};

use actix_web::{App, HttpServer, dev::Server, web};
use zimmer_config::Settings;
use zimmer_db::DbPool;
use zimmer_events::Broker;
use zimmer_http::{Check, Observability, Probes};
use zimmer_jwt::{AuthState, Revocations, Verifier};
use zimmer_redis::Redis;
use zimmer_telemetry::Metrics;

pub use revocation_feed::{RevocationList, RevokedSession, RevokedUser, apply_revocation_event};

/// The shared resources of one service instance. Cheap to clone (everything inside is a handle).
#[derive(Clone)]
pub struct Platform {
    pub settings: Settings,
    pub pool: DbPool,
    pub redis: Redis,
    pub broker: Broker,
    pub metrics: Metrics,
    pub auth: AuthState,
    pub probes: Probes,
}

impl Platform {
    /// Connects everything. Only a broken configuration fails here: an unreachable database,
    /// Redis or broker makes `/readyz` answer 503 until it comes back, it does not stop start-up.
    /// `verifier`: auth passes one built from its signing key; other services verify with the
    /// configured public key or auth's JWKS.
    pub async fn start(settings: Settings, verifier: Option<Verifier>) -> anyhow::Result<Self> {
        let pool =
            zimmer_db::connect_pool(&settings.database, &format!("zimmer-{}", settings.service))?;
        let redis_prefix = settings.env.string("REDIS_PREFIX", "zimmer:");
        let redis =
            Redis::connect(&settings.redis_url, redis_prefix).map_err(anyhow::Error::msg)?;
        let broker = Broker::start(&settings.amqp, settings.service);
        let metrics = Metrics::new(settings.service);
        let verifier = match verifier {
            Some(v) => v,
            None => Verifier::from_settings(&settings.jwt).await?,
        };
        let revocations = Revocations::new();
        let feed = revocation_feed::start(&settings, &broker, &revocations);
        let auth = AuthState::new(verifier, revocations);

        let redis_check = redis.clone();
        let broker_check = broker.clone();
        let probes = Probes::new()
            .with_pool(pool.clone())
            .ready_when(Check::new("redis", move || {
                let r = redis_check.clone();
                async move { r.ping().await }
            }))
            .ready_when(Check::new("broker", move || {
                let b = broker_check.clone();
                async move {
                    if b.is_connected() {
                        Ok(())
                    } else {
                        Err("not connected".to_owned())
                    }
                }
            }))
            .alive_while(Check::new("revocation_feed", move || {
                let running = feed.is_running();
                async move {
                    if running {
                        Ok(())
                    } else {
                        Err("stopped".to_owned())
                    }
                }
            }));
        Ok(Self {
            settings,
            pool,
            redis,
            broker,
            metrics,
            auth,
            probes,
        })
    }

    /// Adds a liveness check (e.g. a consumer loop that must keep running).
    pub fn alive_while(&mut self, check: Check) {
        self.probes = std::mem::take(&mut self.probes).alive_while(check);
    }

    /// App data and routes every service has.
    pub fn configure_common(&self, cfg: &mut web::ServiceConfig) {
        zimmer_http::extractor_configs(cfg, &self.settings);
        cfg.app_data(web::Data::new(self.settings.clone()))
            .app_data(web::Data::new(self.metrics.clone()))
            .app_data(web::Data::new(self.probes.clone()))
            .app_data(web::Data::new(self.auth.clone()))
            .app_data(web::Data::new(self.redis.clone()))
            .app_data(web::Data::new(self.pool.clone()));
        zimmer_http::probe_routes(cfg);
        cfg.route(
            zimmer_jwt::TOKEN_CHECK_PATH,
            web::get().to(zimmer_jwt::token_check),
        );
    }

    /// The HTTP server: common middleware and configuration, then the service's routes.
    pub fn http_server<F>(&self, listener: TcpListener, routes: F) -> std::io::Result<Server>
    where
        F: Fn(&mut web::ServiceConfig) + Send + Clone + 'static,
    {
        let platform = self.clone();
        let workers = self
            .settings
            .env
            .parse(
                "HTTP_WORKERS",
                std::thread::available_parallelism().map_or(2, |n| n.get()),
            )
            .unwrap_or(2);
        Ok(HttpServer::new(move || {
            let platform = platform.clone();
            let routes = routes.clone();
            App::new()
                .wrap(Observability::new(platform.metrics.clone()))
                .configure(|cfg| platform.configure_common(cfg))
                .configure(routes)
                .default_service(web::to(zimmer_http::default_service))
        })
        .listen(listener)?
        .workers(workers)
        .shutdown_timeout(30)
        .run())
    }
}

/// A built service: its platform and its HTTP server, bound and ready to run.
pub struct Application {
    pub platform: Platform,
    port: u16,
    server: Server,
}

impl Application {
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Serves until SIGTERM/SIGINT, then drains in-flight requests.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.server.await
    }

    /// The server future, for tests that spawn it.
    pub fn into_server(self) -> Server {
        self.server
    }
}

impl Platform {
    /// Binds the configured address (port 0 picks a free one) and builds the server.
    pub fn serve<F>(self, routes: F) -> anyhow::Result<Application>
    where
        F: Fn(&mut web::ServiceConfig) + Send + Clone + 'static,
    {
        let listener = zimmer_http::bind(&self.settings)?;
        let port = listener.local_addr()?.port();
        let server = self.http_server(listener, routes)?;
        tracing::info!(service = self.settings.service, port, "listening");
        Ok(Application {
            platform: self,
            port,
            server,
        })
    }
}

/// Waits for SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

/// How often expired revocations are dropped from memory.
pub const REVOCATION_PURGE_INTERVAL: Duration = Duration::from_secs(60);

/// The `migrate` command of every service binary.
pub async fn migrate(settings: &Settings) -> anyhow::Result<()> {
    let applied = zimmer_db::migrate(settings.database.url.expose()).await?;
    if applied.is_empty() {
        println!("database is up to date");
    }
    for m in applied {
        println!("applied {m}");
    }
    Ok(())
}

/// `gen-key PATH`: writes a new Ed25519 signing key unless the file exists (never overwrites
/// a key: tokens signed with it would stop verifying).
pub fn write_key_file(path: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let path = std::path::Path::new(path);
    if path.exists() {
        println!("{} exists; keeping it", path.display());
        return Ok(());
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let pem = zimmer_jwt::generate_ed25519_pem()?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)?.write_all(pem.as_bytes())?;
    println!("wrote a new signing key to {}", path.display());
    Ok(())
}
