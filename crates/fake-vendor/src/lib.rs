//! A stand-in automation vendor, faithful to the vendor contract, for tests and the local
//! platform (binary `zimmer-fake-vendor`, or [`FakeVendor::start`] inside a test).
//!
//! - `POST /provision`: checks the marketplace's signature (HMAC keyed by SHA-256 of one of
//!   its service tokens, fresh timestamp; 401 otherwise), then answers per its provisioning
//!   mode: `accept` (200, recorded), `fail` (503), `reject` (400) or `hang` (holds the
//!   request until released or the mode changes).
//! - `GET /health`: 200 `{"status":"healthy"|"degraded"}` or 503 when `down`.
//! - `POST /simulate/consume` `{user_automation_id, units, usage_type?, idempotency_key?}`:
//!   spends tokens like a real vendor would, calling the marketplace's consume endpoint with
//!   the service token of that customer's automation (learned at provisioning), and relays
//!   the answer.
//! - `GET /state`, `PUT /control` `{provision_mode?, health_mode?}`: inspect and steer it.
//! - `POST /kb/status` `{user_id, user_automation_id}` and `POST /kb/reset`
//!   `{user_automation_id}`: the KB monitoring calls (docs/panels.md "KB monitoring"), answered
//!   per [`KbAnswer`] (a default, or one per user automation for status), set by the test.
//!
//! The marketplace links this crate only in its tests, so the vendor's side of the contract
//! (headers, signature check, the demo automations' tokens) is written here, as a vendor would
//! write it from the documentation (README.md), not borrowed from the marketplace.

use std::{
    collections::HashMap,
    net::TcpListener,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use actix_web::{HttpRequest, HttpResponse, dev::ServerHandle, web};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::sync::watch;

pub mod demo;
pub mod signature;

use crate::signature::{SERVICE_TOKEN_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, verify};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProvisionMode {
    Accept,
    Fail,
    Reject,
    Hang,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HealthMode {
    Healthy,
    Degraded,
    Down,
}

/// How the vendor answers a KB status or KB reset call: after `delay_ms`, `http_status` with
/// `body`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KbAnswer {
    pub http_status: u16,
    pub delay_ms: u64,
    pub body: serde_json::Value,
}

impl KbAnswer {
    /// 200 `{status, backup_status: false, supports_reset: true, error_logs: []}`.
    pub fn status(word: &str) -> Self {
        Self {
            http_status: 200,
            delay_ms: 0,
            body: json!({
                "status": word,
                "backup_status": false,
                "supports_reset": true,
                "error_logs": [],
            }),
        }
    }
    /// 200 with exactly this body.
    pub fn body(body: serde_json::Value) -> Self {
        Self {
            http_status: 200,
            delay_ms: 0,
            body,
        }
    }
    /// The same answer, after `ms` milliseconds.
    pub fn slow(mut self, ms: u64) -> Self {
        self.delay_ms = ms;
        self
    }
    /// The same body with another HTTP status.
    pub fn http(mut self, status: u16) -> Self {
        self.http_status = status;
        self
    }
}

/// One KB call the vendor received: the user automation, the user (status calls only), and
/// whether it carried a valid signature of one of its service tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct KbCall {
    pub user_automation_id: i64,
    pub user_id: Option<i64>,
    pub signed: bool,
}

/// One provisioning request the vendor accepted.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Provision {
    pub user_automation_id: i64,
    pub user_id: i64,
    #[serde(default)]
    pub automation_id: Option<i64>,
    pub bot_token: Option<String>,
    pub demo_tokens: i64,
}

#[derive(Debug, Clone)]
pub struct FakeVendorConfig {
    pub host: String,
    /// 0 picks a free port.
    pub port: u16,
    /// Service tokens of the automations this vendor runs.
    pub service_tokens: Vec<String>,
    /// Where the marketplace answers (for `/simulate/consume`).
    pub marketplace_url: String,
}

struct Shared {
    tokens: Vec<String>,
    marketplace_url: String,
    client: reqwest::Client,
    provision_mode: Mutex<ProvisionMode>,
    health_mode: Mutex<HealthMode>,
    /// Bumped to release held (`hang`) requests.
    release: watch::Sender<u64>,
    attempts: AtomicU64,
    unauthorized: AtomicU64,
    held: AtomicU64,
    health_checks: AtomicU64,
    provisions: Mutex<Vec<Provision>>,
    /// user automation → the service token that provisioned it.
    customers: Mutex<HashMap<i64, String>>,
    kb: Mutex<KbState>,
}

/// The KB side of the vendor.
struct KbState {
    status_default: KbAnswer,
    status_for: HashMap<i64, KbAnswer>,
    reset: KbAnswer,
    status_calls: Vec<KbCall>,
    resets: Vec<KbCall>,
    in_flight: u64,
    max_in_flight: u64,
}

fn locked<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A running fake vendor; stops when dropped.
pub struct FakeVendor {
    pub address: String,
    pub port: u16,
    shared: Arc<Shared>,
    handle: ServerHandle,
}

impl FakeVendor {
    pub async fn start(config: FakeVendorConfig) -> anyhow::Result<Self> {
        let (server, vendor) = Self::server(config)?;
        tokio::spawn(server);
        Ok(vendor)
    }

    /// The server future (the binary awaits it) and the handle to steer it.
    pub fn server(config: FakeVendorConfig) -> anyhow::Result<(actix_web::dev::Server, Self)> {
        let listener = TcpListener::bind((config.host.as_str(), config.port))?;
        let port = listener.local_addr()?.port();
        let shared = Arc::new(Shared {
            tokens: config.service_tokens,
            marketplace_url: config.marketplace_url.trim_end_matches('/').to_owned(),
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()?,
            provision_mode: Mutex::new(ProvisionMode::Accept),
            health_mode: Mutex::new(HealthMode::Healthy),
            release: watch::channel(0).0,
            attempts: AtomicU64::new(0),
            unauthorized: AtomicU64::new(0),
            held: AtomicU64::new(0),
            health_checks: AtomicU64::new(0),
            provisions: Mutex::default(),
            customers: Mutex::default(),
            kb: Mutex::new(KbState {
                status_default: KbAnswer::status("healthy"),
                status_for: HashMap::new(),
                reset: KbAnswer::body(json!({ "status": "reset_started" })),
                status_calls: Vec::new(),
                resets: Vec::new(),
                in_flight: 0,
                max_in_flight: 0,
            }),
        });
        let data = web::Data::from(Arc::clone(&shared));
        let server = zimmer_service::fake::server(listener, move |cfg| {
            cfg.app_data(data.clone())
                .route("/provision", web::post().to(provision))
                .route("/health", web::get().to(health))
                .route("/simulate/consume", web::post().to(simulate_consume))
                .route("/kb/status", web::post().to(kb_status))
                .route("/kb/reset", web::post().to(kb_reset))
                .route("/state", web::get().to(state))
                .route("/control", web::put().to(control))
                // For process supervisors (and the test kit's readiness wait).
                .route("/readyz", web::get().to(HttpResponse::Ok))
                .route("/healthz", web::get().to(HttpResponse::Ok));
        })?;
        let handle = server.handle();
        let host = if config.host == "0.0.0.0" {
            "127.0.0.1"
        } else {
            &config.host
        };
        Ok((
            server,
            Self {
                address: format!("http://{host}:{port}"),
                port,
                shared,
                handle,
            },
        ))
    }

    pub fn provision_url(&self) -> String {
        format!("{}/provision", self.address)
    }
    pub fn health_url(&self) -> String {
        format!("{}/health", self.address)
    }
    pub fn set_provision_mode(&self, mode: ProvisionMode) {
        *locked(&self.shared.provision_mode) = mode;
        self.release_held();
    }
    pub fn set_health_mode(&self, mode: HealthMode) {
        *locked(&self.shared.health_mode) = mode;
    }
    /// Lets held (`hang`) requests answer, per the mode at that moment.
    pub fn release_held(&self) {
        self.shared.release.send_modify(|g| *g += 1);
    }
    /// Provisioning requests that passed the signature check.
    pub fn attempts(&self) -> u64 {
        self.shared.attempts.load(Ordering::SeqCst)
    }
    /// Provisioning requests refused for a bad or missing signature.
    pub fn unauthorized(&self) -> u64 {
        self.shared.unauthorized.load(Ordering::SeqCst)
    }
    /// Requests being held right now.
    pub fn held(&self) -> u64 {
        self.shared.held.load(Ordering::SeqCst)
    }
    pub fn health_checks(&self) -> u64 {
        self.shared.health_checks.load(Ordering::SeqCst)
    }
    pub fn provisions(&self) -> Vec<Provision> {
        locked(&self.shared.provisions).clone()
    }
    pub fn kb_status_url(&self) -> String {
        format!("{}/kb/status", self.address)
    }
    pub fn kb_reset_url(&self) -> String {
        format!("{}/kb/reset", self.address)
    }
    /// How KB status calls are answered for user automations without their own answer.
    pub fn set_kb_status(&self, answer: KbAnswer) {
        locked(&self.shared.kb).status_default = answer;
    }
    /// How KB status calls about one user automation are answered.
    pub fn set_kb_status_for(&self, user_automation_id: i64, answer: KbAnswer) {
        locked(&self.shared.kb)
            .status_for
            .insert(user_automation_id, answer);
    }
    pub fn set_kb_reset(&self, answer: KbAnswer) {
        locked(&self.shared.kb).reset = answer;
    }
    /// KB status calls received, in order of arrival.
    pub fn kb_status_calls(&self) -> Vec<KbCall> {
        locked(&self.shared.kb).status_calls.clone()
    }
    /// KB reset calls received, in order of arrival.
    pub fn kb_resets(&self) -> Vec<KbCall> {
        locked(&self.shared.kb).resets.clone()
    }
    /// The most KB calls that were being answered at the same time.
    pub fn kb_max_in_flight(&self) -> u64 {
        locked(&self.shared.kb).max_in_flight
    }
}

impl Drop for FakeVendor {
    fn drop(&mut self) {
        self.release_held();
        let handle = self.handle.clone();
        drop(tokio::spawn(async move { handle.stop(false).await }));
    }
}

fn header<'a>(req: &'a HttpRequest, name: &str) -> Option<&'a str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

/// The token whose key signed this request, if any.
fn signer(shared: &Shared, req: &HttpRequest, body: &[u8]) -> Option<String> {
    let ts: i64 = header(req, TIMESTAMP_HEADER)?.parse().ok()?;
    let sig = header(req, SIGNATURE_HEADER)?;
    let now = chrono::Utc::now().timestamp();
    shared
        .tokens
        .iter()
        .find(|t| verify(t, ts, body, sig, now))
        .cloned()
}

async fn provision(req: HttpRequest, shared: web::Data<Shared>, body: web::Bytes) -> HttpResponse {
    let Some(token) = signer(&shared, &req, &body) else {
        shared.unauthorized.fetch_add(1, Ordering::SeqCst);
        return HttpResponse::Unauthorized().json(json!({ "detail": "bad signature" }));
    };
    let Ok(p) = serde_json::from_slice::<Provision>(&body) else {
        return HttpResponse::BadRequest().json(json!({ "detail": "bad body" }));
    };
    shared.attempts.fetch_add(1, Ordering::SeqCst);
    let mut mode = *locked(&shared.provision_mode);
    if mode == ProvisionMode::Hang {
        shared.held.fetch_add(1, Ordering::SeqCst);
        let mut rx = shared.release.subscribe();
        let _ = tokio::time::timeout(Duration::from_secs(120), rx.changed()).await;
        shared.held.fetch_sub(1, Ordering::SeqCst);
        mode = *locked(&shared.provision_mode);
    }
    match mode {
        ProvisionMode::Accept => {
            tracing::info!(
                user_automation_id = p.user_automation_id,
                "fake vendor: provisioned"
            );
            locked(&shared.customers).insert(p.user_automation_id, token);
            locked(&shared.provisions).push(p);
            HttpResponse::Ok().json(json!({ "status": "provisioned" }))
        }
        ProvisionMode::Reject => HttpResponse::BadRequest().json(json!({ "detail": "rejected" })),
        ProvisionMode::Fail | ProvisionMode::Hang => {
            HttpResponse::ServiceUnavailable().json(json!({ "detail": "vendor unavailable" }))
        }
    }
}

async fn health(shared: web::Data<Shared>) -> HttpResponse {
    shared.health_checks.fetch_add(1, Ordering::SeqCst);
    match *locked(&shared.health_mode) {
        HealthMode::Healthy => HttpResponse::Ok().json(json!({ "status": "healthy" })),
        HealthMode::Degraded => HttpResponse::Ok().json(json!({ "status": "degraded" })),
        HealthMode::Down => HttpResponse::ServiceUnavailable().json(json!({ "status": "down" })),
    }
}

#[derive(Debug, Deserialize)]
struct Simulate {
    user_automation_id: i64,
    #[serde(default = "one")]
    units: i64,
    #[serde(default)]
    usage_type: Option<String>,
    #[serde(default)]
    idempotency_key: Option<String>,
}

fn one() -> i64 {
    1
}

async fn simulate_consume(shared: web::Data<Shared>, body: web::Json<Simulate>) -> HttpResponse {
    let token = locked(&shared.customers)
        .get(&body.user_automation_id)
        .cloned()
        .or_else(|| (shared.tokens.len() == 1).then(|| shared.tokens[0].clone()));
    let Some(token) = token else {
        return HttpResponse::NotFound()
            .json(json!({ "detail": "this vendor has not provisioned that user automation" }));
    };
    let result = shared
        .client
        .post(format!(
            "{}/api/automation-usage/consume",
            shared.marketplace_url
        ))
        .header(SERVICE_TOKEN_HEADER, token)
        .json(&json!({
            "user_automation_id": body.user_automation_id,
            "units": body.units,
            "usage_type": body.usage_type.as_deref().unwrap_or("session"),
            "idempotency_key": body.idempotency_key,
        }))
        .send()
        .await;
    match result {
        Ok(res) => {
            let status = actix_web::http::StatusCode::from_u16(res.status().as_u16())
                .unwrap_or(actix_web::http::StatusCode::BAD_GATEWAY);
            let body = res.bytes().await.unwrap_or_default();
            HttpResponse::build(status)
                .content_type("application/json")
                .body(body)
        }
        Err(_) => HttpResponse::BadGateway().json(json!({ "detail": "marketplace unreachable" })),
    }
}

#[derive(Debug, Deserialize)]
struct KbBody {
    user_automation_id: i64,
    #[serde(default)]
    user_id: Option<i64>,
}

/// Records the call, waits and answers as configured; `reset` picks the reset answer.
async fn kb_answer(req: HttpRequest, shared: &Shared, body: &[u8], reset: bool) -> HttpResponse {
    let Ok(b) = serde_json::from_slice::<KbBody>(body) else {
        return HttpResponse::BadRequest().json(json!({ "detail": "bad body" }));
    };
    let call = KbCall {
        user_automation_id: b.user_automation_id,
        user_id: b.user_id,
        signed: signer(shared, &req, body).is_some(),
    };
    let answer = {
        let mut kb = locked(&shared.kb);
        kb.in_flight += 1;
        kb.max_in_flight = kb.max_in_flight.max(kb.in_flight);
        if reset {
            kb.resets.push(call);
            kb.reset.clone()
        } else {
            kb.status_calls.push(call);
            kb.status_for
                .get(&b.user_automation_id)
                .unwrap_or(&kb.status_default)
                .clone()
        }
    };
    /// Lowers the in-flight count however the request ends (the caller may give up).
    struct InFlight<'a>(&'a Mutex<KbState>);
    impl Drop for InFlight<'_> {
        fn drop(&mut self) {
            locked(self.0).in_flight -= 1;
        }
    }
    let _guard = InFlight(&shared.kb);
    if answer.delay_ms > 0 {
        tokio::time::sleep(Duration::from_millis(answer.delay_ms)).await;
    }
    let status = actix_web::http::StatusCode::from_u16(answer.http_status)
        .unwrap_or(actix_web::http::StatusCode::INTERNAL_SERVER_ERROR);
    HttpResponse::build(status).json(answer.body)
}

async fn kb_status(req: HttpRequest, shared: web::Data<Shared>, body: web::Bytes) -> HttpResponse {
    kb_answer(req, &shared, &body, false).await
}

async fn kb_reset(req: HttpRequest, shared: web::Data<Shared>, body: web::Bytes) -> HttpResponse {
    kb_answer(req, &shared, &body, true).await
}

async fn state(shared: web::Data<Shared>) -> HttpResponse {
    HttpResponse::Ok().json(json!({
        "provision_mode": *locked(&shared.provision_mode),
        "health_mode": *locked(&shared.health_mode),
        "attempts": shared.attempts.load(Ordering::SeqCst),
        "unauthorized": shared.unauthorized.load(Ordering::SeqCst),
        "held": shared.held.load(Ordering::SeqCst),
        "provisions": *locked(&shared.provisions),
    }))
}

#[derive(Debug, Deserialize)]
struct Control {
    #[serde(default)]
    provision_mode: Option<ProvisionMode>,
    #[serde(default)]
    health_mode: Option<HealthMode>,
}

async fn control(shared: web::Data<Shared>, body: web::Json<Control>) -> HttpResponse {
    if let Some(m) = body.provision_mode {
        *locked(&shared.provision_mode) = m;
        shared.release.send_modify(|g| *g += 1);
    }
    if let Some(m) = body.health_mode {
        *locked(&shared.health_mode) = m;
    }
    HttpResponse::NoContent().finish()
}
