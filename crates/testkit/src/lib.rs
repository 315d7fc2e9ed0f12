//! The test kit: everything a service test needs so that a test is a few lines.
//!
//! - [`TestDb`]: a fresh database per test, cloned from a migrated template (built once per
//!   set of migrations, across test processes), dropped when the test ends.
//! - [`TestContext`]: a database, a signing key, and broker/Redis names of the test's own, so
//!   tests run in parallel against the real PostgreSQL, Redis and RabbitMQ and never see each
//!   other's rows, keys or messages.
//! - [`TestApp`]: a service built by its own `build` function and run in-process on a random
//!   port, with a reqwest client.
//! - [`Process`] and [`Gateway`]: real service binaries and a real nginx with the repo's
//!   gateway config, for end-to-end tests.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod db;
mod e2e;
mod observer;
pub mod openapi;
mod proxy;

use std::{future::Future, time::Duration};

use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;
use zimmer_config::{Env, Settings};
use zimmer_jwt::{Claims, Role, Signer};
use zimmer_service::Application;

pub use db::TestDb;
pub use e2e::{
    GATEWAY_FAIL_TIMEOUT, GATEWAY_MAX_FAILS, Gateway, Process, TempDir, Upstreams, binary_path,
    free_port, repo_root,
};
pub use observer::EventObserver;
pub use proxy::ToggleProxy;

/// The password of every user made by [`TestContext::create_user`].
pub const TEST_PASSWORD: &str = "correct horse battery staple";

pub struct TestContext {
    pub db: TestDb,
    pub key_pem: String,
    pub signer: Signer,
    /// This test's event exchange (`t<id>.events`); the dead-letter exchange follows it.
    pub exchange: String,
    pub redis_prefix: String,
    base: Vec<(String, String)>,
}

impl TestContext {
    pub async fn new() -> Self {
        let db = TestDb::new().await;
        let key_pem = zimmer_jwt::generate_ed25519_pem().expect("key generation");
        let signer = Signer::from_pem(&key_pem).expect("signer");
        let id = Uuid::new_v4().simple().to_string();
        let exchange = format!("t{}.events", &id[..12]);
        let redis_prefix = format!("test:{}:", &id[..12]);
        let public_pem = zimmer_jwt::public_pem_from_private_pem(&key_pem).expect("public key");
        let base = vec![
            // Explicit, as every start outside the local scripts must be (the services refuse
            // to start without it); child processes get it too.
            ("APP_ENV", "development".to_owned()),
            ("DATABASE_URL", db.url.clone()),
            ("DATABASE_POOL_SIZE", "5".to_owned()),
            ("HTTP_HOST", "127.0.0.1".to_owned()),
            ("HTTP_PORT", "0".to_owned()),
            ("HTTP_WORKERS", "2".to_owned()),
            ("AMQP_EXCHANGE", exchange.clone()),
            ("AMQP_TRANSIENT", "true".to_owned()),
            ("REDIS_PREFIX", redis_prefix.clone()),
            ("COOKIE_SECURE", "false".to_owned()),
            ("JWT_PRIVATE_KEY", key_pem.clone()),
            ("JWT_PUBLIC_KEY", public_pem),
            // Nothing listens there unless a test points it at its own auth.
            ("AUTH_INTERNAL_URL", "http://127.0.0.1:9".to_owned()),
            // ...so a service other than auth accepts tokens without the initial revocation
            // load from auth (tests that run auth set it back to "true").
            ("REVOCATION_LOAD_REQUIRED", "false".to_owned()),
            ("LOG_FORMAT", "pretty".to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        Self {
            db,
            key_pem,
            signer,
            exchange,
            redis_prefix,
            base,
        }
    }

    /// The environment a service of this test runs with (also handed to child processes).
    pub fn env_pairs(&self) -> Vec<(String, String)> {
        self.base.clone()
    }

    /// The environment of a service this test starts as a process: without `HTTP_PORT` (each
    /// process gets its own) and the keys in `drop`, with `add` on top.
    pub fn process_env(&self, drop: &[&str], add: Vec<(String, String)>) -> Vec<(String, String)> {
        let mut env: Vec<(String, String)> = self
            .base
            .iter()
            .filter(|(k, _)| !drop.contains(&k.as_str()) && k != "HTTP_PORT")
            .cloned()
            .collect();
        env.extend(add);
        env
    }

    /// As [`TestContext::process_env`] for a service that verifies tokens as in production:
    /// without keys of its own, by the JWKS of the `auth` process (and its internal API).
    pub fn process_env_with_jwks(
        &self,
        auth: &Process,
        add: Vec<(String, String)>,
    ) -> Vec<(String, String)> {
        let auth_url = auth.url();
        let mut jwks = vec![
            (
                "JWKS_URL".to_owned(),
                format!("{auth_url}/.well-known/jwks.json"),
            ),
            ("AUTH_INTERNAL_URL".to_owned(), auth_url),
        ];
        jwks.extend(add);
        self.process_env(&["JWT_PUBLIC_KEY", "JWT_PRIVATE_KEY"], jwks)
    }

    /// The `zimmer-auth` and `zimmer-marketplace` binaries as in production: auth with its
    /// signing key only, marketplace with no key of its own, verifying by auth's JWKS
    /// ([`TestContext::process_env_with_jwks`]). Their logs go to `log_dir`.
    pub async fn start_auth_and_marketplace(
        &self,
        log_dir: &std::path::Path,
    ) -> (Process, Process) {
        let auth_env = self.process_env(&["JWT_PUBLIC_KEY"], vec![]);
        let auth = Process::start("auth", &auth_env, log_dir).await;
        let market_env = self.process_env_with_jwks(&auth, vec![]);
        let market = Process::start("marketplace", &market_env, log_dir).await;
        (auth, market)
    }

    /// Settings for `service`, with `overrides` on top of this test's environment.
    pub fn settings(&self, service: &'static str, overrides: &[(&str, &str)]) -> Settings {
        let mut env = Env::from_pairs(self.base.clone());
        for (k, v) in overrides {
            env.set(*k, *v);
        }
        Settings::load(service, env).expect("test settings")
    }

    /// Builds a service with its own `build` function and runs it in-process.
    pub async fn spawn<F, Fut>(&self, settings: Settings, build: F) -> TestApp
    where
        F: FnOnce(Settings) -> Fut,
        Fut: Future<Output = anyhow::Result<Application>>,
    {
        if std::env::var_os("RUST_LOG").is_some() {
            std::mem::forget(zimmer_telemetry::init(&settings));
        }
        let app = build(settings).await.expect("service builds");
        let port = app.port();
        let server = app.into_server();
        let handle = server.handle();
        tokio::spawn(server);
        TestApp {
            address: format!("http://127.0.0.1:{port}"),
            port,
            client: client(),
            handle,
        }
    }

    /// An access token signed with this test's key (what auth would issue).
    pub fn mint_access_token(&self, user_id: i64, role: Role, session_id: Uuid) -> String {
        let now = chrono::Utc::now().timestamp();
        self.signer
            .sign(&Claims {
                sub: user_id.to_string(),
                role,
                sid: session_id,
                jti: Uuid::new_v4(),
                iat: now,
                exp: now + 900,
                iss: "zimmer-auth".to_owned(),
                aud: "zimmer".to_owned(),
                auth_time: None,
            })
            .expect("sign")
    }

    /// A user made by [`TestContext::create_user`] and an access token of a fresh session.
    pub async fn user_with_token(&self, email: &str, role: Role) -> (i64, String) {
        let id = self.create_user(email, role).await;
        (id, self.mint_access_token(id, role, Uuid::new_v4()))
    }

    /// A user row with [`TEST_PASSWORD`], straight into the database.
    pub async fn create_user(&self, email: &str, role: Role) -> i64 {
        use zimmer_db::schema::users;
        let mut conn = self.db.connect().await;
        diesel::insert_into(users::table)
            .values((
                users::name.eq("Test User"),
                users::email.eq(email.to_lowercase()),
                users::password_hash.eq(test_password_hash()),
                users::role.eq(role.as_str()),
            ))
            .returning(users::id)
            .get_result(&mut conn)
            .await
            .expect("insert user")
    }
}

/// An argon2id hash of [`TEST_PASSWORD`], computed once per test process.
pub fn test_password_hash() -> String {
    use argon2::{Algorithm, Argon2, Params, PasswordHasher, Version};
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HASH.get_or_init(|| {
        let params = Params::new(19 * 1024, 2, 1, None).expect("params");
        Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
            .hash_password(TEST_PASSWORD.as_bytes())
            .expect("hash")
            .to_string()
    })
    .clone()
}

/// A reqwest client that never follows redirects (tests look at them) and has a timeout.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client")
}

/// A service running in-process for one test; stopped when dropped.
pub struct TestApp {
    pub address: String,
    pub port: u16,
    pub client: reqwest::Client,
    handle: actix_web::dev::ServerHandle,
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }
    pub fn get(&self, path: &str) -> reqwest::RequestBuilder {
        self.client.get(self.url(path))
    }
    pub fn post(&self, path: &str) -> reqwest::RequestBuilder {
        self.client.post(self.url(path))
    }
    pub fn put(&self, path: &str) -> reqwest::RequestBuilder {
        self.client.put(self.url(path))
    }
    pub fn delete(&self, path: &str) -> reqwest::RequestBuilder {
        self.client.delete(self.url(path))
    }
    /// POST of a JSON body.
    pub async fn post_json(&self, path: &str, body: &serde_json::Value) -> reqwest::Response {
        self.post(path).json(body).send().await.expect("request")
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        let handle = self.handle.clone();
        // Stop without waiting: the runtime may already be shutting down.
        drop(tokio::spawn(async move { handle.stop(false).await }));
    }
}

/// Waits until `check` holds, polling; panics with `what` after `timeout`.
pub async fn eventually<F, Fut>(what: &str, timeout: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if check().await {
            return;
        }
        if tokio::time::Instant::now() >= deadline {
            panic!("timed out waiting for: {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until `request` answers with `status` (a request that cannot be sent counts as not
/// yet), polling as [`eventually`] does; panics with `what` after `timeout`.
pub async fn eventually_answers<F>(
    what: &str,
    timeout: Duration,
    status: reqwest::StatusCode,
    request: F,
) where
    F: Fn() -> reqwest::RequestBuilder,
{
    eventually(what, timeout, || async {
        request().send().await.is_ok_and(|r| r.status() == status)
    })
    .await;
}

/// A connection to a test database (for assertions on rows).
pub async fn connect(url: &str) -> AsyncPgConnection {
    AsyncPgConnection::establish(url).await.expect("connect")
}

/// [`count`] on the test's own database.
pub async fn db_count(ctx: &TestContext, sql: &str) -> i64 {
    let mut conn = ctx.db.connect().await;
    count(&mut conn, sql).await
}

/// [`db_count`] must be `expected` (the message names the query).
pub async fn assert_db_count(ctx: &TestContext, sql: &str, expected: i64) {
    assert_eq!(db_count(ctx, sql).await, expected, "{sql}");
}

/// The `Retry-After` of an answer, in seconds (panics when it has none or not a number).
pub fn retry_after(res: &reqwest::Response) -> u64 {
    res.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}

/// The status and JSON body of an answer (`null` when the body is not JSON).
pub async fn json_of(res: reqwest::Response) -> (reqwest::StatusCode, serde_json::Value) {
    let status = res.status();
    let body = res.json().await.unwrap_or(serde_json::Value::Null);
    (status, body)
}

/// The status and the body as JSON, or as a JSON string holding the text when it is not JSON
/// (so a failing assertion shows what came back).
pub async fn json_or_text(res: reqwest::Response) -> (reqwest::StatusCode, serde_json::Value) {
    let status = res.status();
    let text = res.text().await.expect("body");
    let body = serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text));
    (status, body)
}

/// Sending a request and reading its answer in one step: the request helpers every service's
/// tests share instead of repeating `.send().await.unwrap()` and a parse at each call.
pub trait Call {
    /// Sends; panics when the request cannot be sent.
    fn call(self) -> impl Future<Output = reqwest::Response> + Send;
    /// Sends; the status and JSON body as [`json_of`] reads them.
    fn json_of(self) -> impl Future<Output = (reqwest::StatusCode, serde_json::Value)> + Send;
    /// Sends; the status and body as [`json_or_text`] reads them.
    fn json_or_text(self) -> impl Future<Output = (reqwest::StatusCode, serde_json::Value)> + Send;
    /// Sends; the body as JSON, panicking when it is not JSON.
    fn json_body(self) -> impl Future<Output = serde_json::Value> + Send;
    /// Sends; asserts the status is `expected` (the message shows the body); the body as
    /// [`json_or_text`] reads it.
    fn json_expecting(
        self,
        expected: reqwest::StatusCode,
    ) -> impl Future<Output = serde_json::Value> + Send;
    /// Sends; the status only.
    fn status(self) -> impl Future<Output = reqwest::StatusCode> + Send;
    /// Sends; asserts the status is `expected` (the body is not read: a stream may never end).
    fn expect_status(self, expected: reqwest::StatusCode) -> impl Future<Output = ()> + Send;
    /// Sends; asserts the status is `expected` and returns the answer for further checks.
    fn call_expecting(
        self,
        expected: reqwest::StatusCode,
    ) -> impl Future<Output = reqwest::Response> + Send;
}

impl Call for reqwest::RequestBuilder {
    async fn call(self) -> reqwest::Response {
        self.send().await.expect("request")
    }
    async fn json_of(self) -> (reqwest::StatusCode, serde_json::Value) {
        json_of(self.call().await).await
    }
    async fn json_or_text(self) -> (reqwest::StatusCode, serde_json::Value) {
        json_or_text(self.call().await).await
    }
    async fn json_body(self) -> serde_json::Value {
        self.call().await.json().await.expect("JSON body")
    }
    async fn json_expecting(self, expected: reqwest::StatusCode) -> serde_json::Value {
        let (status, body) = self.json_or_text().await;
        assert_eq!(status, expected, "{body}");
        body
    }
    async fn status(self) -> reqwest::StatusCode {
        self.call().await.status()
    }
    async fn expect_status(self, expected: reqwest::StatusCode) {
        assert_eq!(self.status().await, expected);
    }
    async fn call_expecting(self, expected: reqwest::StatusCode) -> reqwest::Response {
        let res = self.call().await;
        assert_eq!(res.status(), expected);
        res
    }
}

/// The integer `field` of each element of the JSON array `list`, in order (panics when `list`
/// is not an array or a `field` not an integer).
pub fn ids_in(list: &serde_json::Value, field: &str) -> Vec<i64> {
    let items = list
        .as_array()
        .unwrap_or_else(|| panic!("not an array: {list}"));
    items
        .iter()
        .map(|item| {
            item[field]
                .as_i64()
                .unwrap_or_else(|| panic!("{field} of {item}"))
        })
        .collect()
}

/// The text of `{base}/metrics` (a service's Prometheus answer).
pub async fn scrape_metrics(http: &reqwest::Client, base: &str) -> String {
    http.get(format!("{base}/metrics"))
        .send()
        .await
        .expect("GET /metrics")
        .text()
        .await
        .expect("/metrics body")
}

/// The sum of the Prometheus samples of `metric` in `text` (a `/metrics` answer) whose labels
/// include every `(name, value)` of `labels`.
pub fn metric_sum(text: &str, metric: &str, labels: &[(&str, &str)]) -> u64 {
    let start = format!("{metric}{{");
    text.lines()
        .filter(|l| l.starts_with(&start))
        .filter(|l| {
            labels
                .iter()
                .all(|(k, v)| l.contains(&format!("{k}=\"{v}\"")))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

/// The text at `key` of the JSON object `v` (panics, showing `v`, when it is not a string).
pub fn str_at<'a>(v: &'a serde_json::Value, key: &str) -> &'a str {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("no text at `{key}` in {v}"))
}

/// Whether a 422 body's `errors` (an array, else this panics) name `field`.
pub fn has_field_error(body: &serde_json::Value, field: &str) -> bool {
    let errors = body["errors"]
        .as_array()
        .unwrap_or_else(|| panic!("no errors in {body}"));
    errors.iter().any(|e| e["field"] == field)
}

/// Counts rows of a SQL query returning one bigint column named `n`.
pub async fn count(conn: &mut AsyncPgConnection, sql: &str) -> i64 {
    #[derive(QueryableByName)]
    struct N {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    diesel::sql_query(sql)
        .get_result::<N>(conn)
        .await
        .expect("count query")
        .n
}
