//! The start-up every service shares, written once: telemetry, the database pool, Redis, the
//! broker connection, metrics, the verifier and the revocation feed, the probes, and the HTTP
//! server with the common middleware and extractor configuration. A service adds its routes,
//! consumers and workers on top.

mod cli;
mod draining;
pub mod fake;
mod loops;
mod revocation_feed;

use std::{net::TcpListener, time::Duration};

use actix_web::{
    App, HttpServer,
    dev::{Server, Service as _},
    http::ConnectionType,
    web,
};
use zimmer_config::Settings;
use zimmer_db::DbPool;
use zimmer_events::Broker;
use zimmer_http::{
    Check, Observability, Probes,
    routes::{DocInfo, Route, RouteMeta},
};
use zimmer_jwt::{AuthState, Revocations, Verifier};
use zimmer_redis::Redis;
use zimmer_telemetry::Metrics;

pub use cli::run_command_line;
pub use draining::Draining;
pub use revocation_feed::{
    RevocationList, RevocationLoader, RevokedSession, RevokedUser, apply_revocation_event,
};

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
    /// Set on SIGTERM; see [`Draining`].
    pub draining: Draining,
}

impl Platform {
    /// Connects everything. Only a broken configuration fails here: an unreachable database,
    /// Redis, broker or auth does not stop start-up. `/readyz` answers 503 while the database
    /// is unreachable, before the verification keys and the first revocation load are there,
    /// and once draining; Redis, the broker and the outbox backlog are only reported (body
    /// and `zimmer_dependency_up`). `verifier`: auth passes one built from its signing key;
    /// other services verify with the configured public key or auth's JWKS.
    pub async fn start(settings: Settings, verifier: Option<Verifier>) -> anyhow::Result<Self> {
        Self::start_with(settings, verifier, None).await
    }

    /// [`Platform::start`] for auth: the live revocations come from `own` (its database)
    /// instead of auth's internal API.
    pub async fn start_with_own_revocations(
        settings: Settings,
        verifier: Verifier,
        own: RevocationLoader,
    ) -> anyhow::Result<Self> {
        Self::start_with(settings, Some(verifier), Some(own)).await
    }

    async fn start_with(
        settings: Settings,
        verifier: Option<Verifier>,
        own: Option<RevocationLoader>,
    ) -> anyhow::Result<Self> {
        // Only for running a service with no auth to ask (tests of one service, local
        // experiments): the instance accepts tokens without the initial revocation load.
        let require_load = settings.env.bool("REVOCATION_LOAD_REQUIRED", true)?;
        if !require_load && settings.is_production() {
            anyhow::bail!("REVOCATION_LOAD_REQUIRED=false is not allowed in production");
        }
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
        if !require_load && own.is_none() {
            revocations.mark_loaded();
        }
        let feed = revocation_feed::start(&settings, &pool, &broker, &revocations, own).await;
        let auth = AuthState::new(verifier, revocations.clone());
        let draining = Draining::new();
        let outbox_max_age =
            Duration::from_secs(settings.env.parse("OUTBOX_DEGRADED_AFTER_SECS", 60u64)?);

        let redis_check = redis.clone();
        let broker_check = broker.clone();
        let keys = auth.verifier.clone();
        let draining_check = draining.clone();
        let probes = Probes::new()
            .with_pool(pool.clone())
            .ready_when(Check::flag(
                "keys",
                "no token verification key yet (auth's JWKS unreachable)",
                move || keys.has_keys(),
            ))
            .ready_when(Check::flag(
                "revocations",
                "live revocations not loaded yet",
                move || revocations.is_loaded(),
            ))
            .ready_when(Check::flag("draining", "shutting down", move || {
                !draining_check.is_draining()
            }))
            .degraded_unless(Check::new("redis", move || {
                let r = redis_check.clone();
                async move { r.ping().await }
            }))
            .degraded_unless(Check::flag("broker", "not connected", move || {
                broker_check.is_connected()
            }))
            .degraded_unless(Check::outbox_backlog(
                pool.clone(),
                settings.service.to_owned(),
                outbox_max_age,
            ))
            .alive_while(Check::flag("revocation_feed", "stopped", move || {
                feed.is_running()
            }));
        Ok(Self {
            settings,
            pool,
            redis,
            broker,
            metrics,
            auth,
            probes,
            draining,
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
            .app_data(web::Data::new(self.pool.clone()))
            .app_data(web::Data::new(self.draining.clone()));
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
        let shutdown_timeout = self
            .settings
            .env
            .parse("SHUTDOWN_TIMEOUT_SECS", 30u64)
            .unwrap_or(30);
        Ok(HttpServer::new(move || {
            let platform = platform.clone();
            let routes = routes.clone();
            let draining = platform.draining.clone();
            App::new()
                .wrap(Observability::new(platform.metrics.clone()))
                // While draining, every response closes its connection: keep-alive clients
                // (the gateway's upstream pool) reconnect, to another instance, for their
                // next request instead of finding the socket closed under them later.
                .wrap_fn(move |req, srv| {
                    let response = srv.call(req);
                    let draining = draining.clone();
                    async move {
                        let mut res = response.await?;
                        if draining.is_draining() {
                            res.response_mut()
                                .head_mut()
                                .set_connection_type(ConnectionType::Close);
                        }
                        Ok(res)
                    }
                })
                .configure(|cfg| platform.configure_common(cfg))
                .configure(routes)
                .default_service(web::to(zimmer_http::default_service))
        })
        .listen(listener)?
        .workers(workers)
        // A client's FIN ends its connection at once, even mid-response: otherwise a
        // streaming response (the notification stream) whose client left is only noticed
        // when a later write fails. Browsers and the gateway never half-close a request.
        .h1_allow_half_closed(false)
        // Signals are ours (see `Application::run_until_stopped`): actix would stop accepting
        // at once, before the orchestrator and the gateway have seen the instance go unready.
        .disable_signals()
        .shutdown_timeout(shutdown_timeout)
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

    /// Serves until SIGTERM/SIGINT, then shuts down without losing a request:
    /// 1. sets [`Draining`]: `/readyz` answers 503 at once, responses close their keep-alive
    ///    connections, notification streams end so their clients reconnect elsewhere;
    /// 2. keeps serving for `SHUTDOWN_DRAIN_SECS` (default 5 in production, 1 elsewhere)
    ///    while the orchestrator and the gateway stop sending new work;
    /// 3. stops accepting and lets in-flight requests finish (up to `SHUTDOWN_TIMEOUT_SECS`,
    ///    default 30), closes the broker connection, and returns `Ok` (exit code 0).
    ///
    /// A second signal during the drain period skips the rest of it.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let settings = &self.platform.settings;
        let default_drain = if settings.is_production() { 5 } else { 1 };
        let drain = Duration::from_secs(
            settings
                .env
                .parse("SHUTDOWN_DRAIN_SECS", default_drain)
                .unwrap_or(default_drain),
        );
        let handle = self.server.handle();
        let mut server = tokio::spawn(self.server);
        tokio::select! {
            result = &mut server => return flatten(result),
            () = shutdown_signal() => {}
        }
        self.platform.draining.start();
        tracing::info!(
            drain_secs = drain.as_secs(),
            "shutdown signal: not ready any more; draining"
        );
        tokio::select! {
            result = &mut server => return flatten(result),
            () = tokio::time::sleep(drain) => {}
            () = shutdown_signal() => tracing::info!("second signal: ending the drain early"),
        }
        tracing::info!("no longer accepting; finishing in-flight requests");
        handle.stop(true).await;
        let result = flatten(server.await);
        let _ = tokio::time::timeout(Duration::from_secs(5), self.platform.broker.shutdown()).await;
        tracing::info!("stopped");
        result
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

    /// [`Platform::serve`] for a service whose HTTP side is its state (as `web::Data`) and one
    /// route table with its document ([`zimmer_http::routes::register`]).
    pub fn serve_table<S, M>(
        self,
        state: S,
        info: DocInfo,
        table: &'static [Route<M>],
    ) -> anyhow::Result<Application>
    where
        S: Clone + Send + 'static,
        M: RouteMeta,
    {
        self.serve(move |cfg| {
            cfg.app_data(web::Data::new(state.clone()));
            zimmer_http::routes::register(cfg, info, table);
        })
    }
}

fn flatten(result: Result<std::io::Result<()>, tokio::task::JoinError>) -> std::io::Result<()> {
    result.map_err(std::io::Error::other)?
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
