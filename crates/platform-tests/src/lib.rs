//! Test helpers for the cross-service tests of the Persian user panel (docs/panels.md):
//!
//! - [`Stack`]: the real service binaries (auth, marketplace, billing, support and the fake
//!   Zarinpal) on real PostgreSQL, Redis and RabbitMQ, behind a real nginx running the repo's
//!   gateway configuration. Needs `cargo build --workspace --bins` first (scripts/test.sh does
//!   it) and nginx.
//! - [`Panel`]: an HTTP client that behaves like the panel in a browser: `Origin` on every
//!   call, a cookie jar (`credentials: 'include'`), the CORS preflight a browser would send
//!   before each non-simple request, and the CORS headers of every answer checked.
//! - [`shape`]: asserts the fields the panel reads and their JSON types.
//! - [`Form`] (multipart, as `FormData`), [`SseReader`] (as `EventSource` parses),
//!   [`Mailbox`] (auth's mail sink), [`Totp`] (an authenticator app), DB fixtures.
//!
//! Only test code: panicking on a broken expectation is the point.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    collections::HashSet,
    path::PathBuf,
    sync::{Arc, Mutex},
    time::Duration,
};

use diesel::{QueryableByName, sql_types::BigInt};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use reqwest::{Method, StatusCode, header::HeaderMap};
use serde_json::Value;
use tokio::{
    net::{TcpListener, TcpStream},
    task::JoinHandle,
};
use zimmer_testkit::{Gateway, Process, TempDir, TestContext, Upstreams};

/// The panel's origin in local development (and in the allow-list by default).
pub const PANEL: &str = "http://localhost:3000";
/// The admin service's internal credential in these tests (what a test presents when it calls
/// an internal API as admin would). Each service has its own (`internal_token`).
pub const INTERNAL_TOKEN: &str = "platform-tests-internal-token-admin";

/// The internal credential of `service` in these tests: explicit (not the development
/// defaults), so the stack runs with `INTERNAL_API_TOKEN` and `INTERNAL_CALLERS` as deployed.
pub fn internal_token(service: &str) -> String {
    format!("platform-tests-internal-token-{service}")
}

/// `INTERNAL_CALLERS` of every service in these tests: the other services and admin.
fn internal_callers() -> String {
    ["marketplace", "billing", "support", "admin"]
        .iter()
        .map(|s| zimmer_config::internal_caller_entry(s, &internal_token(s)))
        .collect::<Vec<_>>()
        .join(",")
}
/// How long a test waits for something asynchronous (an event, a mail) before failing.
pub const WAIT: Duration = Duration::from_secs(30);

// ------------------------------------------------------------------------------ the stack

/// What a test changes in the stack it starts.
#[derive(Debug, Clone)]
pub struct StackOptions {
    /// The panel's origin: allowed by the gateway and auth, and billing's `FRONTEND_URL`.
    pub panel_origin: String,
    /// Extra environment of the support service (e.g. `SSE_KEEPALIVE_SECS`).
    pub support_env: Vec<(String, String)>,
    /// Also run the admin service behind the gateway (the admin dashboard's tests).
    pub admin: bool,
}

impl Default for StackOptions {
    fn default() -> Self {
        Self {
            panel_origin: PANEL.to_owned(),
            support_env: Vec::new(),
            admin: false,
        }
    }
}

/// The platform as the panel sees it: every service binary behind the real nginx.
pub struct Stack {
    pub gw: Gateway,
    /// The public address of the Zarinpal callback (a TCP forwarder to the gateway: billing
    /// must know it before the gateway's port exists).
    pub callback_door: Forward,
    pub support: Process,
    pub billing: Process,
    pub market: Process,
    pub auth: Process,
    pub fake_zarinpal: Process,
    /// The admin service, when [`StackOptions::admin`] asked for it.
    pub admin: Option<Process>,
    pub ctx: TestContext,
    pub mail: Mailbox,
    pub panel_origin: String,
    _files: TempDir,
    _logs: TempDir,
}

impl Stack {
    pub async fn start(options: StackOptions) -> Self {
        let ctx = TestContext::new().await;
        let logs = TempDir::new("zimmer-platform-logs");
        let files = TempDir::new("zimmer-platform-files");
        let mail = Mailbox {
            dir: TempDir::new("zimmer-platform-mail"),
        };
        let origin = options.panel_origin.clone();
        let env =
            |service: &str, drop: &[&str], add: Vec<(String, String)>| -> Vec<(String, String)> {
                let mut env: Vec<(String, String)> = ctx
                    .env_pairs()
                    .into_iter()
                    .filter(|(k, _)| !drop.contains(&k.as_str()) && k != "HTTP_PORT")
                    .collect();
                env.push(("INTERNAL_API_TOKEN".into(), internal_token(service)));
                env.push(("INTERNAL_CALLERS".into(), internal_callers()));
                env.push(("CORS_ORIGINS".into(), origin.clone()));
                env.extend(add);
                env
            };
        let door = Forward::bind().await;
        let fake_zarinpal = Process::start_service(
            "zimmer-fake-zarinpal",
            "fake-zarinpal",
            &env("fake-zarinpal", &[], vec![]),
            &logs.path,
        )
        .await;
        // Only auth holds the signing key; the others verify with its JWKS, as in production.
        let auth = Process::start_service(
            "zimmer-auth",
            "auth",
            &env(
                "auth",
                &["JWT_PUBLIC_KEY"],
                vec![(
                    "MAIL_SINK_DIR".into(),
                    mail.dir.path.to_string_lossy().into_owned(),
                )],
            ),
            &logs.path,
        )
        .await;
        let auth_url = format!("http://127.0.0.1:{}", auth.port);
        let verifier = vec![
            (
                "JWKS_URL".to_owned(),
                format!("{auth_url}/.well-known/jwks.json"),
            ),
            ("AUTH_INTERNAL_URL".to_owned(), auth_url.clone()),
        ];
        let keyless = ["JWT_PUBLIC_KEY", "JWT_PRIVATE_KEY"];
        let market_env = env("marketplace", &keyless, verifier.clone());
        let mut billing_extra = verifier.clone();
        billing_extra.extend([
            (
                "ZARINPAL_BASE_URL".to_owned(),
                format!("http://127.0.0.1:{}", fake_zarinpal.port),
            ),
            (
                "ZARINPAL_CALLBACK_URL".to_owned(),
                format!(
                    "http://localhost:{}/api/payments/zarinpal/callback",
                    door.port
                ),
            ),
            ("FRONTEND_URL".to_owned(), origin.clone()),
        ]);
        let billing_env = env("billing", &keyless, billing_extra);
        let verifier_for_admin = verifier.clone();
        let mut support_extra = verifier;
        support_extra.push((
            "ATTACHMENTS_DIR".to_owned(),
            files.path.to_string_lossy().into_owned(),
        ));
        support_extra.extend(options.support_env.iter().cloned());
        let support_env = env("support", &keyless, support_extra);
        let (market, billing, support) = tokio::join!(
            Process::start_service("zimmer-marketplace", "marketplace", &market_env, &logs.path),
            Process::start_service("zimmer-billing", "billing", &billing_env, &logs.path),
            Process::start_service("zimmer-support", "support", &support_env, &logs.path),
        );
        let admin = if options.admin {
            let url = |p: &Process| format!("http://127.0.0.1:{}", p.port);
            let mut extra = verifier_for_admin;
            extra.extend([
                ("MARKETPLACE_INTERNAL_URL".to_owned(), url(&market)),
                ("BILLING_INTERNAL_URL".to_owned(), url(&billing)),
                ("SUPPORT_INTERNAL_URL".to_owned(), url(&support)),
            ]);
            let admin_env = env("admin", &keyless, extra);
            Some(Process::start_service("zimmer-admin", "admin", &admin_env, &logs.path).await)
        } else {
            None
        };
        let at = |p: &Process| vec![format!("127.0.0.1:{}", p.port)];
        let gw = Gateway::start(
            &Upstreams {
                auth: at(&auth),
                marketplace: at(&market),
                billing: at(&billing),
                support: at(&support),
                admin: admin.as_ref().map(at).unwrap_or_default(),
            },
            &[options.panel_origin.as_str()],
        )
        .await;
        door.point_to(&format!("127.0.0.1:{}", gw.port));
        Self {
            gw,
            callback_door: door,
            support,
            billing,
            market,
            auth,
            fake_zarinpal,
            admin,
            ctx,
            mail,
            panel_origin: options.panel_origin,
            _files: files,
            _logs: logs,
        }
    }

    /// The gateway as a browser on this machine names it (`localhost`: the same site as the
    /// panel, so its `SameSite=Strict` refresh cookie goes along).
    pub fn api_base(&self) -> String {
        format!("http://localhost:{}", self.gw.port)
    }

    /// The panel's client, talking to the gateway from the panel's origin.
    pub fn panel(&self) -> Panel {
        Panel::new(&self.gw.address, &self.panel_origin)
    }

    /// The notification stream as the panel's `EventSource` opens it: the token in the query,
    /// no Authorization header, the panel's `Origin`, a browser's `Accept-Encoding`. Checks the
    /// answer: 200, CORS for the panel, an event stream, never compressed (it would be buffered).
    pub async fn open_stream(&self, token: &str) -> SseReader {
        use zimmer_testkit::Call;
        let res = reqwest::Client::new()
            .get(
                self.gw
                    .url(&format!("/api/notifications/stream?token={token}")),
            )
            .header("Origin", PANEL)
            .header("Accept", "text/event-stream")
            .header("Cache-Control", "no-cache")
            .header("Accept-Encoding", "gzip, deflate, br")
            .call()
            .await;
        assert_eq!(res.status(), StatusCode::OK);
        assert_cors("stream", res.headers(), PANEL);
        assert!(
            res.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/event-stream"),
            "{:?}",
            res.headers()
        );
        assert!(
            res.headers().get("content-encoding").is_none(),
            "the stream is never compressed (it would be buffered)"
        );
        SseReader::new(res)
    }

    /// Runs a test's `scenario` on this stack; if it panics, prints every process's log first.
    pub async fn run_showing_logs(&self, scenario: impl std::future::Future<Output = ()>) {
        use futures_util::FutureExt;
        if let Err(panic) = std::panic::AssertUnwindSafe(scenario).catch_unwind().await {
            eprintln!("service logs:{}", self.logs());
            std::panic::resume_unwind(panic);
        }
    }

    /// Every process's log, for failure messages.
    pub fn logs(&self) -> String {
        let mut out = String::new();
        for p in [
            &self.auth,
            &self.market,
            &self.billing,
            &self.support,
            &self.fake_zarinpal,
        ]
        .into_iter()
        .chain(self.admin.as_ref())
        {
            out.push_str(&format!("\n----- {} -----\n{}", p.name, tail(&p.log(), 60)));
        }
        out.push_str(&format!(
            "\n----- nginx -----\n{}",
            tail(&self.gw.access_log(), 40)
        ));
        out
    }

    pub async fn db(&self) -> AsyncPgConnection {
        self.ctx.db.connect().await
    }

    /// Waits until a `SELECT count(*) AS n …` query answers `n` (events travel through the
    /// broker, so their effects arrive after the answer that caused them).
    pub async fn wait_for_count(&self, what: &str, sql: &str, n: i64) {
        let mut conn = self.db().await;
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            if zimmer_testkit::count(&mut conn, sql).await == n {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out waiting for: {what} ({sql}){}",
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until support has handled every event it consumes that is in an outbox so far
    /// (so the notifications they make all exist). Chains (payment.verified → marketplace →
    /// tokens.credited) must have reached the outbox first: wait for their effect before.
    pub async fn wait_for_support_to_catch_up(&self) {
        self.wait_for_count(
            "support has handled every event so far",
            "SELECT count(*) AS n FROM outbox o \
             WHERE o.event_type IN ('user.registered', 'payment.verified', 'payment.failed', \
                 'tokens.credited', 'tokens.low', 'tokens.depleted', 'tokens.adjusted', \
                 'ticket.replied', 'notification.broadcast', 'automation.health_changed') \
             AND NOT EXISTS (SELECT 1 FROM inbox i \
                 WHERE i.consumer = 'support.notifications' AND i.event_id = o.id)",
            0,
        )
        .await;
    }

    /// A direct call to a service's internal API (never routed by the gateway).
    pub fn internal(
        &self,
        service: &Process,
        method: Method,
        path: &str,
    ) -> reqwest::RequestBuilder {
        zimmer_testkit::client()
            .request(method, format!("http://127.0.0.1:{}{path}", service.port))
            .header("X-Internal-Token", INTERNAL_TOKEN)
    }
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

// ------------------------------------------------------------------------------ forwarder

/// A TCP forwarder bound now and pointed at its target later: it gives a service an address
/// for something that does not exist yet (billing's callback URL before the gateway's port).
pub struct Forward {
    pub port: u16,
    target: Arc<Mutex<Option<String>>>,
    accept: JoinHandle<()>,
}

impl Forward {
    pub async fn bind() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let target: Arc<Mutex<Option<String>>> = Arc::default();
        let accept = {
            let target = Arc::clone(&target);
            tokio::spawn(async move {
                while let Ok((mut inbound, _)) = listener.accept().await {
                    let Some(to) = target.lock().ok().and_then(|t| t.clone()) else {
                        continue; // not pointed yet: refused
                    };
                    tokio::spawn(async move {
                        if let Ok(mut outbound) = TcpStream::connect(&to).await {
                            let _ =
                                tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                        }
                    });
                }
            })
        };
        Self {
            port,
            target,
            accept,
        }
    }

    pub fn point_to(&self, address: &str) {
        *self.target.lock().unwrap() = Some(address.to_owned());
    }
}

impl Drop for Forward {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

// ------------------------------------------------------------------------------ the panel

/// How a call carries its body.
pub enum Body {
    None,
    Json(Value),
    /// Multipart, as `fetch` sends a `FormData` (the browser sets the content type).
    Form(Form),
}

/// The panel in a browser: `Origin` always, cookies always (`credentials: 'include'`), a
/// preflight before each non-simple request, CORS headers checked on every answer.
pub struct Panel {
    pub base: String,
    pub origin: String,
    client: reqwest::Client,
}

/// One answer, read whole.
#[derive(Debug)]
pub struct Answer {
    pub what: String,
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Answer {
    /// Asserts the status (with the body in the message).
    pub fn expect(&self, status: u16) -> &Value {
        assert_eq!(
            self.status.as_u16(),
            status,
            "{}: expected {status}, got {} {}",
            self.what,
            self.status,
            self.body
        );
        &self.body
    }

    /// Asserts a 2xx.
    pub fn ok(&self) -> &Value {
        assert!(
            self.status.is_success(),
            "{}: expected 2xx, got {} {}",
            self.what,
            self.status,
            self.body
        );
        &self.body
    }

    /// Asserts the status and a non-empty plain-string `detail` the panel can show (plus the
    /// `code` of every error body); returns the detail.
    pub fn refused(&self, status: u16) -> String {
        self.expect(status);
        let detail = self.body["detail"].as_str().unwrap_or_else(|| {
            panic!(
                "{}: an error needs a string detail, got {}",
                self.what, self.body
            )
        });
        assert!(!detail.trim().is_empty(), "{}: empty detail", self.what);
        assert!(
            self.body["code"].is_string(),
            "{}: an error has a code: {}",
            self.what,
            self.body
        );
        detail.to_owned()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The value of a `Set-Cookie` for `name`, with its attributes.
    pub fn set_cookie(&self, name: &str) -> Option<String> {
        self.headers
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|v| v.starts_with(&format!("{name}=")))
            .map(str::to_owned)
    }
}

impl Panel {
    pub fn new(base: &str, origin: &str) -> Self {
        Self::on_machine(base, origin, None)
    }

    /// The panel in another person's browser: its connections come from `source` (any
    /// 127.x.y.z on Linux), so the gateway's per-address limits count it apart.
    pub fn on_machine(base: &str, origin: &str, source: Option<std::net::IpAddr>) -> Self {
        Self {
            base: base.trim_end_matches('/').to_owned(),
            origin: origin.to_owned(),
            client: reqwest::Client::builder()
                .cookie_store(true)
                .redirect(reqwest::redirect::Policy::none())
                .timeout(Duration::from_secs(30))
                .local_address(source)
                .build()
                .expect("client"),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The preflight a browser sends first; asserts nginx's 204 with the CORS headers that
    /// let the real request through.
    pub async fn preflight(&self, method: &Method, path: &str, headers: &[&str]) {
        let what = format!("preflight {method} {path}");
        let mut req = self
            .client
            .request(Method::OPTIONS, self.url(path))
            .header("Origin", &self.origin)
            .header("Access-Control-Request-Method", method.as_str());
        if !headers.is_empty() {
            req = req.header("Access-Control-Request-Headers", headers.join(","));
        }
        let res = req.send().await.expect("preflight");
        assert_eq!(res.status(), StatusCode::NO_CONTENT, "{what}");
        let h = res.headers().clone();
        assert_cors(&what, &h, &self.origin);
        let allowed_methods = h
            .get("access-control-allow-methods")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_ascii_uppercase();
        assert!(
            allowed_methods.contains(method.as_str()),
            "{what}: {method} not in {allowed_methods}"
        );
        let allowed_headers = h
            .get("access-control-allow-headers")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_ascii_lowercase();
        for header in headers {
            assert!(
                allowed_headers.contains(&header.to_ascii_lowercase()),
                "{what}: {header} not in {allowed_headers}"
            );
        }
    }

    /// One call exactly as the panel makes it: Bearer when given, the body as given, cookies
    /// from the jar, `Origin`; preceded by the browser's preflight when the request is not
    /// "simple", and followed by the CORS checks of the answer.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        bearer: Option<&str>,
        body: Body,
    ) -> Answer {
        let what = format!("{method} {path}");
        let mut preflight_headers: Vec<&str> = Vec::new();
        if bearer.is_some() {
            preflight_headers.push("authorization");
        }
        if matches!(body, Body::Json(_)) {
            preflight_headers.push("content-type");
        }
        let simple_method = matches!(method, Method::GET | Method::HEAD | Method::POST);
        if !simple_method || !preflight_headers.is_empty() {
            self.preflight(&method, path, &preflight_headers).await;
        }
        let mut req = self
            .client
            .request(method, self.url(path))
            .header("Origin", &self.origin)
            .header("Accept", "application/json, text/plain, */*")
            .header("Accept-Language", "fa-IR,fa;q=0.9");
        if let Some(token) = bearer {
            req = req.bearer_auth(token);
        }
        req = match body {
            Body::None => req,
            Body::Json(v) => req.json(&v),
            Body::Form(f) => f.attach(req),
        };
        let res = req.send().await.unwrap_or_else(|e| panic!("{what}: {e}"));
        let status = res.status();
        let headers = res.headers().clone();
        let text = res.text().await.expect("body");
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|_| {
                assert!(
                    status.is_redirection(),
                    "{what}: not JSON ({status}): {text}"
                );
                Value::String(text)
            })
        };
        assert_cors(&what, &headers, &self.origin);
        if status.is_client_error() || status.is_server_error() {
            assert!(
                body["detail"].is_string(),
                "{what}: error without a string detail: {status} {body}"
            );
        }
        assert_ne!(status, StatusCode::INTERNAL_SERVER_ERROR, "{what}: {body}");
        Answer {
            what,
            status,
            headers,
            body,
        }
    }

    pub async fn get(&self, path: &str, bearer: &str) -> Answer {
        self.call(Method::GET, path, Some(bearer), Body::None).await
    }

    pub async fn post(&self, path: &str, bearer: &str, body: Value) -> Answer {
        self.call(Method::POST, path, Some(bearer), Body::Json(body))
            .await
    }

    /// A POST with a Bearer and no body at all (the panel's "no body" calls).
    pub async fn post_empty(&self, path: &str, bearer: &str) -> Answer {
        self.call(Method::POST, path, Some(bearer), Body::None)
            .await
    }

    /// A POST with JSON and no Bearer (login, signup, password reset, …).
    pub async fn post_anon(&self, path: &str, body: Value) -> Answer {
        self.call(Method::POST, path, None, Body::Json(body)).await
    }

    /// A POST with cookies only: no Bearer, no body (refresh, logout).
    pub async fn post_cookies_only(&self, path: &str) -> Answer {
        self.call(Method::POST, path, None, Body::None).await
    }
}

/// The CORS headers of docs/api.md on an answer to an allowed origin.
pub fn assert_cors(what: &str, headers: &HeaderMap, origin: &str) {
    let get = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    assert_eq!(
        get("access-control-allow-origin"),
        Some(origin),
        "{what}: Access-Control-Allow-Origin must echo the panel's origin"
    );
    assert_eq!(
        get("access-control-allow-credentials"),
        Some("true"),
        "{what}: Access-Control-Allow-Credentials"
    );
    let vary: Vec<String> = headers
        .get_all("vary")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|v| v.trim().to_ascii_lowercase())
        .collect();
    assert!(
        vary.iter().any(|v| v == "origin"),
        "{what}: Vary must name Origin, got {vary:?}"
    );
}

// ------------------------------------------------------------------------------ shapes

/// The JSON type of a field the panel reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum T {
    /// A whole number (ids, Rials, token counts).
    Int,
    Str,
    /// A non-empty string.
    Text,
    Bool,
    Arr,
    Obj,
    /// An RFC 3339 time.
    Time,
    /// `YYYY-MM-DD`.
    Day,
    /// `YYYY-MM`.
    Month,
    /// null or a string.
    OptStr,
    /// null or a whole number.
    OptInt,
    /// null or an RFC 3339 time.
    OptTime,
}

fn type_ok(v: &Value, t: T) -> bool {
    let is_time = |v: &Value| {
        v.as_str()
            .is_some_and(|s| chrono::DateTime::parse_from_rfc3339(s).is_ok())
    };
    match t {
        T::Int => v.is_i64(),
        T::Str => v.is_string(),
        T::Text => v.as_str().is_some_and(|s| !s.trim().is_empty()),
        T::Bool => v.is_boolean(),
        T::Arr => v.is_array(),
        T::Obj => v.is_object(),
        T::Time => is_time(v),
        T::Day => v
            .as_str()
            .is_some_and(|s| chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").is_ok()),
        T::Month => v.as_str().is_some_and(|s| {
            chrono::NaiveDate::parse_from_str(&format!("{s}-01"), "%Y-%m-%d").is_ok()
                && s.len() == 7
        }),
        T::OptStr => v.is_null() || v.is_string(),
        T::OptInt => v.is_null() || v.is_i64(),
        T::OptTime => v.is_null() || is_time(v),
    }
}

/// Asserts that `v` is an object with each field present with its type.
pub fn shape(what: &str, v: &Value, fields: &[(&str, T)]) {
    assert!(v.is_object(), "{what}: expected an object, got {v}");
    for (name, t) in fields {
        let field = v.get(*name).unwrap_or_else(|| {
            panic!("{what}: the panel reads `{name}`, which is missing from {v}")
        });
        assert!(
            type_ok(field, *t),
            "{what}: `{name}` must be {t:?}, got {field} in {v}"
        );
    }
}

/// The user object of login, signup and 2FA verify answers, and of `/api/me`.
pub const USER_FIELDS: &[(&str, T)] = &[
    ("id", T::Int),
    ("name", T::Str),
    ("email", T::Text),
    ("role", T::Text),
    ("is_admin", T::Bool),
    ("phone_number", T::OptStr),
    ("email_verified_at", T::OptTime),
    ("created_at", T::Time),
];

/// The token answer of login, signup and 2FA verify.
pub fn token_answer(what: &str, v: &Value) -> String {
    shape(what, v, &[("access_token", T::Text), ("user", T::Obj)]);
    shape(&format!("{what}: user"), &v["user"], USER_FIELDS);
    v["access_token"].as_str().unwrap().to_owned()
}

/// A notification as the panel shows it (list items and SSE data).
pub const NOTIFICATION_FIELDS: &[(&str, T)] = &[
    ("id", T::Int),
    ("type", T::Text),
    ("title", T::Text),
    ("body", T::Str),
    ("data", T::Obj),
    ("is_read", T::Bool),
    ("created_at", T::Time),
    ("read_at", T::OptTime),
];

pub const NOTIFICATION_TYPES: &[&str] = &["payment", "ticket", "automation", "admin", "system"];

/// A ticket as the panel lists it (and as ticket creation answers).
pub const TICKET_FIELDS: &[(&str, T)] = &[
    ("id", T::Int),
    ("subject", T::Text),
    ("status", T::Text),
    ("importance", T::Text),
    ("created_at", T::Time),
    ("updated_at", T::Time),
    ("message", T::Str),
];

/// The ticket statuses the panel shows (docs/panels.md).
pub const PANEL_TICKET_STATUSES: &[&str] = &["open", "in_progress", "resolved", "closed"];

// ------------------------------------------------------------------------------ multipart

/// A `multipart/form-data` body built by hand, as a browser's `FormData` is sent.
pub struct Form {
    boundary: String,
    body: Vec<u8>,
}

impl Default for Form {
    fn default() -> Self {
        Self::new()
    }
}

impl Form {
    pub fn new() -> Self {
        Self {
            boundary: format!(
                "----WebKitFormBoundary{}",
                &uuid::Uuid::new_v4().simple().to_string()[..16]
            ),
            body: Vec::new(),
        }
    }

    pub fn text(mut self, name: &str, value: &str) -> Self {
        self.body.extend_from_slice(
            format!(
                "--{}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n",
                self.boundary
            )
            .as_bytes(),
        );
        self
    }

    fn attach(mut self, req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        self.body
            .extend_from_slice(format!("--{}--\r\n", self.boundary).as_bytes());
        req.header(
            "Content-Type",
            format!("multipart/form-data; boundary={}", self.boundary),
        )
        .body(self.body)
    }
}

// ------------------------------------------------------------------------------ SSE

/// One block of an event stream, as `EventSource` sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SseBlock {
    /// Only comment lines (`: ping`): never dispatched.
    Comment(Vec<String>),
    /// Dispatched: a `data` block. `event` is its type (`None` = the default `message`).
    Event {
        event: Option<String>,
        id: Option<String>,
        data: String,
    },
    /// Fields without data (e.g. only `retry:`): not dispatched.
    Other(Vec<String>),
}

/// Parses one block (the lines up to a blank line) per the SSE specification.
pub fn parse_sse_block(block: &str) -> SseBlock {
    let mut comments = Vec::new();
    let mut fields = Vec::new();
    let mut event = None;
    let mut id = None;
    let mut data: Option<String> = None;
    for line in block.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l)) {
        if let Some(c) = line.strip_prefix(':') {
            comments.push(c.trim().to_owned());
            continue;
        }
        let (name, value) = match line.split_once(':') {
            Some((n, v)) => (n, v.strip_prefix(' ').unwrap_or(v)),
            None => (line, ""),
        };
        fields.push(line.to_owned());
        match name {
            "data" => {
                let d = data.get_or_insert_with(String::new);
                if !d.is_empty() {
                    d.push('\n');
                }
                d.push_str(value);
            }
            "event" => event = Some(value.to_owned()),
            "id" => id = Some(value.to_owned()),
            _ => {}
        }
    }
    match data {
        Some(data) => SseBlock::Event { event, id, data },
        None if fields.is_empty() => SseBlock::Comment(comments),
        None => SseBlock::Other(fields),
    }
}

/// Reads an event stream block by block.
pub struct SseReader {
    res: reqwest::Response,
    buf: String,
    pub ended: bool,
}

impl SseReader {
    pub fn new(res: reqwest::Response) -> Self {
        Self {
            res,
            buf: String::new(),
            ended: false,
        }
    }

    /// The next block, or `None` when the stream ends or `within` passes first.
    pub async fn next(&mut self, within: Duration) -> Option<SseBlock> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let normalized = self.buf.replace("\r\n", "\n");
            if let Some(i) = normalized.find("\n\n") {
                let block = normalized[..i].to_owned();
                self.buf = normalized[i + 2..].to_owned();
                return Some(parse_sse_block(&block));
            }
            let chunk = tokio::time::timeout_at(deadline, self.res.chunk())
                .await
                .ok()?;
            match chunk.expect("stream read") {
                Some(bytes) => self
                    .buf
                    .push_str(std::str::from_utf8(&bytes).expect("UTF-8 stream")),
                None => {
                    self.ended = true;
                    return None;
                }
            }
        }
    }
}

// ------------------------------------------------------------------------------ mail

/// Auth's mail sink (one JSON file per mail: `{to, subject, text, html}`).
pub struct Mailbox {
    pub dir: TempDir,
}

impl Mailbox {
    pub fn path(&self) -> PathBuf {
        self.dir.path.clone()
    }

    /// The mails to `address`, oldest first.
    pub fn to(&self, address: &str) -> Vec<Value> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(&self.dir.path)
            .map(|d| {
                d.flatten()
                    .map(|e| e.path())
                    .filter(|p| p.extension().is_some_and(|x| x == "json"))
                    .collect()
            })
            .unwrap_or_default();
        files.sort();
        files
            .iter()
            .filter_map(|p| std::fs::read(p).ok())
            .filter_map(|b| serde_json::from_slice::<Value>(&b).ok())
            .filter(|m| m["to"].as_str().is_some_and(|t| t.contains(address)))
            .collect()
    }

    /// Waits for the `n`th mail to `address` (mail goes out after the answer) and returns it.
    pub async fn wait_for(&self, address: &str, n: usize) -> Value {
        zimmer_testkit::eventually(&format!("{n} mail(s) to {address}"), WAIT, || async {
            self.to(address).len() >= n
        })
        .await;
        self.to(address).swap_remove(n - 1)
    }
}

/// The token of the mailed link to `path` (e.g. `/reset-password`).
pub fn link_token(mail: &Value, path: &str) -> String {
    let text = mail["text"].as_str().expect("mail text");
    let marker = format!("{path}?token=");
    let start = text
        .find(&marker)
        .unwrap_or_else(|| panic!("no {path} link in {text}"))
        + marker.len();
    text[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect()
}

/// The 6-digit code of a verification mail (the line "… وارد کنید: 123456").
pub fn mailed_code(mail: &Value) -> String {
    let text = mail["text"].as_str().expect("mail text");
    let line = text
        .lines()
        .find(|l| l.contains("وارد کنید:"))
        .unwrap_or_else(|| panic!("no code line in {text}"));
    let code: String = line.chars().filter(char::is_ascii_digit).collect();
    assert_eq!(code.len(), 6, "{line}");
    code
}

// ------------------------------------------------------------------------------ TOTP

/// An authenticator app: codes of a base32 secret. Auth accepts each 30-second step once
/// (±1 step of skew), so every call here returns a code of a step not handed out before and
/// still valid when it reaches the server.
pub struct Totp {
    secret: Vec<u8>,
    used: HashSet<u64>,
}

impl Totp {
    pub fn new(base32: &str) -> Self {
        let secret = totp_rs::Secret::try_from_base32(base32)
            .expect("base32 secret")
            .as_bytes()
            .to_vec();
        Self {
            secret,
            used: HashSet::new(),
        }
    }

    fn code_of_step(&self, step: u64) -> String {
        totp_rs::Builder::new()
            .with_secret(self.secret.clone())
            .build()
            .expect("totp")
            .generate(step * 30)
            .to_string()
    }

    pub async fn next_code(&mut self) -> String {
        loop {
            let now = u64::try_from(chrono::Utc::now().timestamp()).unwrap();
            let (step, into) = (now / 30, now % 30);
            // This step while it has time left; the next one (valid now and after the turn);
            // the previous one only early in a step.
            let mut candidates = Vec::new();
            if into < 25 {
                candidates.push(step);
            }
            candidates.push(step + 1);
            if into < 15 {
                candidates.push(step - 1);
            }
            if let Some(s) = candidates.into_iter().find(|s| !self.used.contains(s)) {
                self.used.insert(s);
                return self.code_of_step(s);
            }
            tokio::time::sleep(Duration::from_secs(30 - into)).await;
        }
    }
}

// ------------------------------------------------------------------------------ fixtures

#[derive(QueryableByName)]
struct Id {
    #[diesel(sql_type = BigInt)]
    id: i64,
}

/// Runs an `INSERT … RETURNING id` (fixtures only: the SQL is the test's own constant).
pub async fn insert_returning_id(conn: &mut AsyncPgConnection, sql: &str) -> i64 {
    diesel::sql_query(sql)
        .get_result::<Id>(conn)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .id
}

pub async fn exec(conn: &mut AsyncPgConnection, sql: &str) {
    diesel::sql_query(sql)
        .execute(conn)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

/// A listed, active automation (the admin's job; a fixture here). Returns its id.
pub async fn automation(conn: &mut AsyncPgConnection, name: &str, price_per_token: i64) -> i64 {
    insert_returning_id(
        conn,
        &format!(
            "INSERT INTO automations (name, description, pricing_type, price_per_token, status, is_listed) \
             VALUES ('{}', 'پاسخ خودکار به پیام‌های مشتریان در تلگرام', 'token_per_session', {price_per_token}, 'active', true) \
             RETURNING id",
            name.replace('\'', "''")
        ),
    )
    .await
}

/// A discount code for any automation (stored normalised: lower case). Returns its id.
pub async fn discount(conn: &mut AsyncPgConnection, code: &str, percent_off: i32) -> i64 {
    insert_returning_id(
        conn,
        &format!(
            "INSERT INTO discount_codes (code, percent_off, active) VALUES ('{}', {percent_off}, true) RETURNING id",
            code.trim().to_lowercase().replace('\'', "''")
        ),
    )
    .await
}
