//! Real processes for end-to-end tests: the service binaries as built by cargo, and nginx
//! running the repo's gateway configuration in front of them.

use std::{
    net::TcpListener,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("repo root")
}

/// A built binary of the workspace (`cargo build --workspace --bins` makes them all; the
/// test command does that first). It sits next to the test binary's `deps/` folder.
pub fn binary_path(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target dir")
        .to_path_buf();
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} not found: run `cargo build --workspace --bins` first",
        path.display()
    );
    path
}

/// A free TCP port on loopback (bound and released: good enough for tests).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// A child process killed when dropped; its output goes to a log file that is printed if the
/// test fails while waiting for it.
pub struct Process {
    pub name: String,
    pub port: u16,
    child: Child,
    log: PathBuf,
}

impl Process {
    /// Starts `binary` with `env` and `HTTP_PORT`, and waits until `/readyz` answers 200.
    pub async fn start_service(
        binary: &str,
        service: &str,
        env: &[(String, String)],
        log_dir: &Path,
    ) -> Self {
        Self::start_service_on(binary, service, env, log_dir, free_port()).await
    }

    /// [`Process::start_service`] of the workspace binary `zimmer-<service>`.
    pub async fn start(service: &str, env: &[(String, String)], log_dir: &Path) -> Self {
        Self::start_service(&format!("zimmer-{service}"), service, env, log_dir).await
    }

    /// As [`Process::start_service`], on a given port (a replacement instance taking over the
    /// port its predecessor left, as the gateway's upstream list names it). The log goes to
    /// `log_dir/<service>.log`.
    pub async fn start_service_on(
        binary: &str,
        service: &str,
        env: &[(String, String)],
        log_dir: &Path,
        port: u16,
    ) -> Self {
        let p = Self::launch(binary, service, env, log_dir, port);
        p.wait_ready(&format!("http://127.0.0.1:{port}/readyz"))
            .await;
        p
    }

    /// As [`Process::start`] without waiting for anything: for a test of an instance that is
    /// not (yet) meant to be ready.
    pub fn spawn(service: &str, env: &[(String, String)], log_dir: &Path) -> Self {
        Self::launch(
            &format!("zimmer-{service}"),
            service,
            env,
            log_dir,
            free_port(),
        )
    }

    fn launch(bin: &str, name: &str, env: &[(String, String)], dir: &Path, port: u16) -> Self {
        let log = dir.join(format!("{name}.log"));
        let file = std::fs::File::create(&log).expect("log file");
        let child = Command::new(binary_path(bin))
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env("HTTP_PORT", port.to_string())
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("log file"))
            .stderr(file)
            .spawn()
            .expect("spawn service");
        Self {
            name: name.to_owned(),
            port,
            child,
            log,
        }
    }

    async fn wait_ready(&self, url: &str) {
        let client = crate::client();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(res) = client.get(url).send().await
                && res.status().is_success()
            {
                return;
            }
            if Instant::now() > deadline {
                let log = std::fs::read_to_string(&self.log).unwrap_or_default();
                panic!(
                    "{} did not become ready at {url}; its log:\n{log}",
                    self.name
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `127.0.0.1:<port>`: this process as an upstream server line.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// `http://127.0.0.1:<port>`: this process's base URL.
    pub fn url(&self) -> String {
        format!("http://{}", self.address())
    }

    /// SIGTERM (what an orchestrator sends first), then waits up to `within` for the process
    /// to exit by itself. `None` if it did not (it is then killed).
    pub async fn terminate(&mut self, within: Duration) -> Option<std::process::ExitStatus> {
        let sent = self.sigterm();
        self.wait_exit(if sent { within } else { Duration::ZERO })
            .await
    }

    /// Sends SIGTERM; false if it could not be sent.
    pub fn sigterm(&self) -> bool {
        Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    /// Waits up to `within` for the process to exit by itself (after [`Process::sigterm`]).
    /// `None` if it did not (it is then killed).
    pub async fn wait_exit(&mut self, within: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        None
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn nginx_binary() -> PathBuf {
    if let Ok(p) = std::env::var("ZIMMER_NGINX_BIN") {
        return PathBuf::from(p);
    }
    for candidate in ["/usr/sbin/nginx", "/usr/local/sbin/nginx", "/usr/bin/nginx"] {
        if Path::new(candidate).exists() {
            return PathBuf::from(candidate);
        }
    }
    panic!("nginx not found: install it (apt-get install -y nginx) or set ZIMMER_NGINX_BIN");
}

/// `max_fails` of every upstream server line, as `deploy/nginx/render.sh` renders it.
pub const GATEWAY_MAX_FAILS: u32 = 2;
/// `fail_timeout` of every upstream server line, as `deploy/nginx/render.sh` renders it: how
/// long nginx leaves an instance alone after `GATEWAY_MAX_FAILS` failed attempts.
pub const GATEWAY_FAIL_TIMEOUT: &str = "3s";

/// nginx with the repo's `deploy/nginx` configuration, rendered for the given upstreams.
pub struct Gateway {
    pub port: u16,
    pub address: String,
    child: Child,
    _dir: TempDir,
}

/// The upstream `host:port` lists of the five services.
#[derive(Debug, Clone, Default)]
pub struct Upstreams {
    pub auth: Vec<String>,
    pub marketplace: Vec<String>,
    pub billing: Vec<String>,
    pub support: Vec<String>,
    pub admin: Vec<String>,
}

impl Upstreams {
    /// Each of `processes` as the one server of its service's upstream (by the service name
    /// it was started with); the other services get none.
    pub fn of(processes: &[&Process]) -> Self {
        let mut upstreams = Self::default();
        for p in processes {
            let list = match p.name.as_str() {
                "auth" => &mut upstreams.auth,
                "marketplace" => &mut upstreams.marketplace,
                "billing" => &mut upstreams.billing,
                "support" => &mut upstreams.support,
                "admin" => &mut upstreams.admin,
                other => panic!("{other} is not behind the gateway"),
            };
            list.push(p.address());
        }
        upstreams
    }
}

impl Gateway {
    pub async fn start(upstreams: &Upstreams, cors_origins: &[&str]) -> Self {
        let dir = TempDir::new("zimmer-gw");
        let port = free_port();
        let template =
            std::fs::read_to_string(repo_root().join("deploy/nginx/zimmer.conf.template"))
                .expect("gateway template");
        let servers = |list: &[String]| -> String {
            // A service a test does not run still needs a syntactically valid upstream.
            let list: Vec<String> = if list.is_empty() {
                vec!["127.0.0.1:9".to_owned()]
            } else {
                list.to_vec()
            };
            // The same passive health parameters as deploy/nginx/render.sh gives every
            // server line (GATEWAY_MAX_FAILS, GATEWAY_FAIL_TIMEOUT defaults).
            list.iter()
                .map(|a| format!("server {a} max_fails={GATEWAY_MAX_FAILS} fail_timeout={GATEWAY_FAIL_TIMEOUT};"))
                .collect::<Vec<_>>()
                .join(" ")
        };
        let origins: String = cors_origins
            .iter()
            .map(|o| format!("\"{o}\" 1;"))
            .collect::<Vec<_>>()
            .join(" ");
        let rendered = template
            .replace("${ZIMMER_LISTEN}", &format!("127.0.0.1:{port}"))
            .replace("${ZIMMER_AUTH_SERVERS}", &servers(&upstreams.auth))
            .replace(
                "${ZIMMER_MARKETPLACE_SERVERS}",
                &servers(&upstreams.marketplace),
            )
            .replace("${ZIMMER_BILLING_SERVERS}", &servers(&upstreams.billing))
            .replace("${ZIMMER_SUPPORT_SERVERS}", &servers(&upstreams.support))
            .replace("${ZIMMER_ADMIN_SERVERS}", &servers(&upstreams.admin))
            .replace("${ZIMMER_CORS_ORIGINS}", &origins);
        assert!(!rendered.contains("${ZIMMER_"), "unrendered placeholder");
        std::fs::write(dir.path.join("zimmer.conf"), rendered).expect("write conf");
        std::fs::copy(
            repo_root().join("deploy/nginx/nginx.conf"),
            dir.path.join("nginx.conf"),
        )
        .expect("copy nginx.conf");
        let log = std::fs::File::create(dir.path.join("nginx.log")).expect("log");
        let prefix = format!("{}/", dir.path.display());
        let child = Command::new(nginx_binary())
            .args([
                "-p",
                &prefix,
                "-c",
                &format!("{prefix}nginx.conf"),
                "-e",
                "stderr",
            ])
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("spawn nginx");
        let gw = Self {
            port,
            address: format!("http://127.0.0.1:{port}"),
            child,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(15);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > deadline {
                let log =
                    std::fs::read_to_string(gw._dir.path.join("nginx.log")).unwrap_or_default();
                panic!("nginx did not start; its log:\n{log}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        gw
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    /// `GET path` through the gateway as the browser page at `origin` asks it: expects 200 and
    /// that the gateway's CORS answer lets that page read it.
    pub async fn get_from_origin(
        &self,
        http: &reqwest::Client,
        path: &str,
        origin: &str,
    ) -> reqwest::Response {
        let res = crate::Call::call_expecting(
            http.get(self.url(path)).header("Origin", origin),
            reqwest::StatusCode::OK,
        )
        .await;
        assert_eq!(res.headers()["access-control-allow-origin"], origin);
        res
    }

    /// Asserts that none of `paths` is reachable through the gateway (each a 404, as the
    /// gateway answers for what it does not route) and returns their bodies as JSON (`null`
    /// when not JSON), in order, for further checks.
    pub async fn assert_not_exposed(&self, paths: &[&str]) -> Vec<serde_json::Value> {
        let http = crate::client();
        let mut bodies = Vec::new();
        for path in paths {
            let (status, body) = crate::Call::json_of(http.get(self.url(path))).await;
            assert_eq!(status, reqwest::StatusCode::NOT_FOUND, "{path}");
            bodies.push(body);
        }
        bodies
    }

    /// The access log so far (JSON lines).
    pub fn access_log(&self) -> String {
        std::fs::read_to_string(self._dir.path.join("nginx.log")).unwrap_or_default()
    }
}

impl Drop for Gateway {
    /// nginx's workers outlive a SIGKILLed master (they keep listening), so stop the master
    /// the way nginx expects: SIGQUIT (graceful: it stops its workers and exits), then
    /// SIGTERM (fast) if that takes too long, and SIGKILL only as the last resort. Each step
    /// waits for the master, which exits only after its workers have.
    fn drop(&mut self) {
        let pid = self.child.id().to_string();
        for (signal, grace) in [("-QUIT", 10_000u64), ("-TERM", 5_000)] {
            let sent = Command::new("kill")
                .args([signal, &pid])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if !sent {
                break;
            }
            let deadline = Instant::now() + Duration::from_millis(grace);
            while Instant::now() < deadline {
                if matches!(self.child.try_wait(), Ok(Some(_))) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A temporary directory removed on drop.
pub struct TempDir {
    pub path: PathBuf,
}

impl TempDir {
    pub fn new(prefix: &str) -> Self {
        let path = std::env::temp_dir().join(format!("{prefix}-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&path).expect("temp dir");
        Self { path }
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}
