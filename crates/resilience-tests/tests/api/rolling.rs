//! Rolling restarts and dependency blinks lose nothing (README.md, "The gateway").
//!
//! Two instances of each of the five services (the real binaries, on fixed ports) run behind
//! the real nginx with the repo's gateway configuration. A steady, bounded load runs the whole
//! time: reads (`/api/me`, the catalogue, the user's automations, notifications, payments, the
//! admin's ticket list), ticket creation, staff replies (each notifies the customer) and
//! token consumption with an `Idempotency-Key` (retried with the same key on a retryable
//! failure), and two notification streams of the customer that reconnect with
//! `Last-Event-ID` whenever their stream ends. Meanwhile:
//! 1. each service is restarted in turn: SIGTERM to one instance, wait for its exit (0), start
//!    a replacement on the same port, wait until it is ready, then the other instance;
//! 2. RabbitMQ "restarts", then Redis does: every service reaches them through a
//!    [`ToggleProxy`] that cuts every open connection and refuses new ones for a few seconds.
//!    The shared servers are never stopped (other tests use them); to a client, a server
//!    restart is exactly that: its connections drop and reconnects fail until it is back.
//!
//! Then: no read failed (no 5xx, no transport error), every write is done exactly once (or
//! was refused with a retryable status and retried), the token books are exact, and each
//! stream received every notification of the customer exactly once.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    collections::{BTreeSet, HashMap},
    net::{IpAddr, Ipv4Addr},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use futures_util::future::join_all;
use reqwest::StatusCode;
use serde_json::{Value, json};
use zimmer_jwt::Role;
use zimmer_testkit::{Gateway, Process, TempDir, TestContext, ToggleProxy, Upstreams, free_port};

use crate::fixtures::funded_automation;

const SERVICES: [&str; 5] = ["auth", "marketplace", "billing", "support", "admin"];
/// The drain period of every instance (see `Application::run_until_stopped`).
const DRAIN_SECS: u64 = 2;
/// How long a dependency stays "down".
const BLINK: Duration = Duration::from_secs(5);

// ------------------------------------------------------------------------------ the fleet

/// Two instances of every service on fixed ports; a restart reuses the port, as the gateway's
/// upstream list names it.
struct Fleet {
    env: HashMap<&'static str, Vec<(String, String)>>,
    ports: HashMap<&'static str, [u16; 2]>,
    running: HashMap<(&'static str, usize), Process>,
    generation: u32,
    logs: TempDir,
}

impl Fleet {
    fn new(ctx: &TestContext, redis: &ToggleProxy, amqp: &ToggleProxy, files: &TempDir) -> Self {
        let ports: HashMap<&'static str, [u16; 2]> = SERVICES
            .iter()
            .map(|s| (*s, [free_port(), free_port()]))
            .collect();
        let first = |s: &str| format!("http://127.0.0.1:{}", ports[s][0]);
        let mut common: Vec<(String, String)> = ctx
            .env_pairs()
            .into_iter()
            .filter(|(k, _)| k != "HTTP_PORT" && k != "DATABASE_POOL_SIZE")
            .collect();
        common.extend(
            [
                (
                    "REDIS_URL",
                    format!("redis://127.0.0.1:{}", redis.port).as_str(),
                ),
                (
                    "AMQP_URL",
                    format!("amqp://guest:guest@127.0.0.1:{}/%2f", amqp.port).as_str(),
                ),
                // Ten processes share PostgreSQL with the other tests running now.
                ("DATABASE_POOL_SIZE", "3"),
                ("HTTP_WORKERS", "2"),
                ("SHUTDOWN_DRAIN_SECS", &DRAIN_SECS.to_string()),
                ("HEALTH_CHECK_ENABLED", "false"),
                ("TICKETS_PER_HOUR", "100000"),
                ("MESSAGES_PER_10_MIN", "100000"),
                ("ZARINPAL_BASE_URL", "http://127.0.0.1:9"),
                // Internal calls go to the first instance of each service (in production they
                // go to the orchestrator's service address).
                ("AUTH_INTERNAL_URL", &first("auth")),
                ("MARKETPLACE_INTERNAL_URL", &first("marketplace")),
                ("BILLING_INTERNAL_URL", &first("billing")),
                ("SUPPORT_INTERNAL_URL", &first("support")),
            ]
            .map(|(k, v)| (k.to_owned(), v.to_owned())),
        );
        let mut env = HashMap::new();
        for s in SERVICES {
            let mut e = common.clone();
            if s == "support" {
                e.push((
                    "ATTACHMENTS_DIR".to_owned(),
                    files.path.to_string_lossy().into_owned(),
                ));
            }
            env.insert(s, e);
        }
        Self {
            env,
            ports,
            running: HashMap::new(),
            generation: 0,
            logs: TempDir::new("zimmer-rolling-logs"),
        }
    }

    async fn start(&mut self, service: &'static str, index: usize) {
        self.generation += 1;
        let p = Process::start_service_on(
            &format!("zimmer-{service}"),
            &format!("{service}-{index}-g{}", self.generation),
            &self.env[service],
            &self.logs.path,
            self.ports[service][index],
        )
        .await;
        self.running.insert((service, index), p);
    }

    /// Auth first: the others load the live revocations from it when they start.
    async fn start_all(&mut self) {
        self.start("auth", 0).await;
        self.start("auth", 1).await;
        let mut started = Vec::new();
        for s in &SERVICES[1..] {
            for i in 0..2 {
                self.generation += 1;
                let (env, logs, port, generation) = (
                    self.env[s].clone(),
                    self.logs.path.clone(),
                    self.ports[s][i],
                    self.generation,
                );
                started.push(async move {
                    let p = Process::start_service_on(
                        &format!("zimmer-{s}"),
                        &format!("{s}-{i}-g{generation}"),
                        &env,
                        &logs,
                        port,
                    )
                    .await;
                    ((*s, i), p)
                });
            }
        }
        self.running.extend(join_all(started).await);
    }

    /// SIGTERM, wait for a clean exit, start a replacement on the same port.
    async fn restart(&mut self, service: &'static str, index: usize) {
        let mut old = self.running.remove(&(service, index)).unwrap();
        let status = old.terminate(Duration::from_secs(45)).await;
        assert!(
            status.is_some_and(|s| s.success()),
            "{service}#{index} did not exit cleanly on SIGTERM ({status:?}); its log:\n{}",
            old.log()
        );
        drop(old);
        self.start(service, index).await;
    }

    fn upstreams(&self) -> Upstreams {
        let at = |s: &str| {
            self.ports[s]
                .iter()
                .map(|p| format!("127.0.0.1:{p}"))
                .collect::<Vec<_>>()
        };
        Upstreams {
            auth: at("auth"),
            marketplace: at("marketplace"),
            billing: at("billing"),
            support: at("support"),
            admin: at("admin"),
        }
    }

    /// Every ERROR line of every instance's log (replaced ones too), named by file: what a
    /// failed request's 5xx was about.
    fn error_lines(&self) -> String {
        let mut out = Vec::new();
        let mut files: Vec<_> = std::fs::read_dir(&self.logs.path)
            .map(|d| d.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        files.sort();
        for file in files {
            let text = std::fs::read_to_string(&file).unwrap_or_default();
            let name = file.file_name().map(|n| n.to_string_lossy().into_owned());
            for line in text.lines().filter(|l| l.contains("ERROR")) {
                out.push(format!("{}: {line}", name.as_deref().unwrap_or("?")));
            }
        }
        out.join("\n")
    }

    fn base(&self, service: &str) -> String {
        format!("http://127.0.0.1:{}", self.ports[service][0])
    }
}

// ------------------------------------------------------------------------------ the load

#[derive(Default)]
struct Counts {
    reads: AtomicU64,
    writes: AtomicU64,
    /// Attempts a client repeated (same key / same request) after a retryable refusal.
    retried: AtomicU64,
    sse_events: AtomicU64,
    sse_reconnects: AtomicU64,
    /// Every failure, described; the test fails if there is any.
    failures: Mutex<Vec<String>>,
    /// What the test is doing now (restarting which instance, ...), for failure messages.
    phase: Mutex<String>,
}

impl Counts {
    fn fail(&self, what: String) {
        let phase = self.phase.lock().unwrap().clone();
        self.failures
            .lock()
            .unwrap()
            .push(format!("[{phase}] {what}"));
    }

    fn phase(&self, now: String) {
        eprintln!("rolling: {now}");
        *self.phase.lock().unwrap() = now;
    }
}

/// A client on its own loopback source address: the gateway's per-IP rate limit (20/s) then
/// applies to each load loop separately.
fn client_from(last_octet: u8) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(IpAddr::V4(Ipv4Addr::new(127, 0, 0, last_octet)))
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

fn retryable(status: StatusCode) -> bool {
    matches!(status.as_u16(), 502..=504)
}

struct Setup {
    customer_token: String,
    staff_token: String,
    manager_token: String,
    service_token: String,
    ua: i64,
    reply_ticket: i64,
}

async fn read_loop(gw: String, s: Arc<Setup>, counts: Arc<Counts>, stop: Arc<AtomicBool>) {
    let http = client_from(2);
    let reads: [(&str, &str); 6] = [
        ("/api/me", &s.customer_token),
        ("/api/automations/marketplace", &s.customer_token),
        ("/api/user/automations", &s.customer_token),
        ("/api/notifications/unread-count", &s.customer_token),
        ("/api/user/payments", &s.customer_token),
        ("/api/admin/tickets", &s.manager_token),
    ];
    let mut i = 0usize;
    while !stop.load(Ordering::SeqCst) {
        let (path, token) = reads[i % reads.len()];
        i += 1;
        counts.reads.fetch_add(1, Ordering::Relaxed);
        match http
            .get(format!("{gw}{path}"))
            .bearer_auth(token)
            .send()
            .await
        {
            Ok(res) if res.status().is_success() => {
                let _ = res.bytes().await;
            }
            Ok(res) => {
                let status = res.status();
                let body = res.text().await.unwrap_or_default();
                counts.fail(format!("read {path}: {status} {body}"));
            }
            Err(e) => counts.fail(format!("read {path}: transport error {e}")),
        }
        tokio::time::sleep(Duration::from_millis(80)).await;
    }
}

/// Sends one write until it is done: a retryable refusal (502/503/504: no instance took it,
/// or it is keyed) is repeated as is; anything else is a failure.
async fn write(
    what: &str,
    counts: &Counts,
    expect: StatusCode,
    request: impl Fn() -> reqwest::RequestBuilder,
    retry_transport_errors: bool,
) -> Option<Value> {
    for attempt in 0..20 {
        if attempt > 0 {
            counts.retried.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        counts.writes.fetch_add(1, Ordering::Relaxed);
        match request().send().await {
            Ok(res) if res.status() == expect => return res.json().await.ok(),
            Ok(res) if retryable(res.status()) => {}
            Ok(res) => {
                let status = res.status();
                let body = res.text().await.unwrap_or_default();
                counts.fail(format!("{what}: {status} {body}"));
                return None;
            }
            Err(_) if retry_transport_errors => {}
            Err(e) => {
                counts.fail(format!("{what}: transport error {e}"));
                return None;
            }
        }
    }
    counts.fail(format!("{what}: still refused after 20 attempts"));
    None
}

#[derive(Default)]
struct Written {
    /// Consumption keys whose spend was accepted.
    consumed: Vec<String>,
    tickets: Vec<String>,
    replies: Vec<String>,
}

async fn consume_loop(
    gw: String,
    s: Arc<Setup>,
    counts: Arc<Counts>,
    stop: Arc<AtomicBool>,
    written: Arc<Mutex<Written>>,
) {
    let http = client_from(3);
    let mut n = 0;
    while !stop.load(Ordering::SeqCst) {
        n += 1;
        let key = format!("rolling-{n}");
        let body = json!({ "user_automation_id": s.ua, "units": 1 });
        // Keyed: the same key is safe to send again whatever happened to the first try.
        let answer = write(
            &format!("consume {key}"),
            &counts,
            StatusCode::OK,
            || {
                http.post(format!("{gw}/api/automation-usage/consume"))
                    .header("X-Zimmer-Service-Token", &s.service_token)
                    .header("Idempotency-Key", &key)
                    .json(&body)
            },
            true,
        )
        .await;
        if let Some(a) = answer {
            if a["accepted"] == true {
                written.lock().unwrap().consumed.push(key);
            } else {
                counts.fail(format!("consume {key} refused: {a}"));
            }
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

async fn ticket_loop(
    gw: String,
    s: Arc<Setup>,
    counts: Arc<Counts>,
    stop: Arc<AtomicBool>,
    written: Arc<Mutex<Written>>,
) {
    let http = client_from(4);
    let mut n = 0;
    while !stop.load(Ordering::SeqCst) {
        n += 1;
        // Not keyed: repeated only after a refusal that no instance saw (nginx's own 502/503
        // or a service's 503); a transport error would be ambiguous, and is a failure.
        let subject = format!("rolling ticket {n}");
        let created = write(
            &subject,
            &counts,
            StatusCode::CREATED,
            || {
                http.post(format!("{gw}/api/tickets"))
                    .bearer_auth(&s.customer_token)
                    .json(&json!({ "subject": subject, "message": "load" }))
            },
            false,
        )
        .await;
        if created.is_some() {
            written.lock().unwrap().tickets.push(subject);
        }
        let text = format!("rolling reply {n}");
        let replied = write(
            &text,
            &counts,
            StatusCode::CREATED,
            || {
                http.post(format!("{gw}/api/tickets/{}/messages", s.reply_ticket))
                    .bearer_auth(&s.staff_token)
                    .json(&json!({ "message": text }))
            },
            false,
        )
        .await;
        if replied.is_some() {
            written.lock().unwrap().replies.push(text);
        }
        tokio::time::sleep(Duration::from_millis(400)).await;
    }
}

/// What one notification stream received, in order.
#[derive(Default)]
struct StreamLog {
    ids: Vec<i64>,
    connected: bool,
}

/// A client that behaves like `EventSource`: reads the stream, and when it ends (or breaks)
/// reconnects with `Last-Event-ID` after the delay the server's `retry:` asked for (a
/// draining instance spreads its clients over 0.5-3 s). A connect answered with anything but
/// 200 is a failure
/// (a browser's `EventSource` gives up on it).
async fn sse_loop(
    gw: String,
    token: String,
    source: u8,
    counts: Arc<Counts>,
    log: Arc<Mutex<StreamLog>>,
) {
    let http = reqwest::Client::builder()
        .local_address(IpAddr::V4(Ipv4Addr::new(127, 0, 0, source)))
        .connect_timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    // From the start: the set-up's own notifications (e.g. the automation added) may be
    // committed before or after the first connect.
    let mut last: Option<i64> = Some(0);
    // The reconnect delay the server last asked for (`retry:`), as EventSource keeps it.
    let mut retry = Duration::from_millis(3000);
    loop {
        let mut req = http
            .get(format!("{gw}/api/notifications/stream"))
            .bearer_auth(&token)
            .header("Accept", "text/event-stream");
        if let Some(id) = last {
            req = req.header("Last-Event-ID", id.to_string());
        }
        match req.send().await {
            Ok(mut res) if res.status() == StatusCode::OK => {
                log.lock().unwrap().connected = true;
                let mut buf = String::new();
                while let Ok(Some(chunk)) = res.chunk().await {
                    buf.push_str(&String::from_utf8_lossy(&chunk));
                    buf = buf.replace("\r\n", "\n");
                    while let Some(end) = buf.find("\n\n") {
                        let block: String = buf.drain(..end + 2).collect();
                        let id = block
                            .lines()
                            .find_map(|l| l.strip_prefix("id:"))
                            .and_then(|v| v.trim().parse::<i64>().ok());
                        if let Some(ms) = block
                            .lines()
                            .find_map(|l| l.strip_prefix("retry:"))
                            .and_then(|v| v.trim().parse::<u64>().ok())
                        {
                            retry = Duration::from_millis(ms);
                        }
                        let has_data = block.lines().any(|l| l.starts_with("data:"));
                        // As EventSource: an `id` sets Last-Event-ID even in a block without
                        // data (the one a stream that ends on purpose sends last).
                        if let Some(id) = id {
                            last = Some(id);
                            if has_data {
                                log.lock().unwrap().ids.push(id);
                                counts.sse_events.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                    }
                }
            }
            Ok(res) => {
                let status = res.status();
                let body = res.text().await.unwrap_or_default();
                counts.fail(format!("stream connect: {status} {body}"));
            }
            Err(e) => counts.fail(format!("stream connect: transport error {e}")),
        }
        counts.sse_reconnects.fetch_add(1, Ordering::Relaxed);
        tokio::time::sleep(retry).await;
    }
}

async fn n(ctx: &TestContext, sql: &str) -> i64 {
    zimmer_testkit::count(&mut ctx.db.connect().await, sql).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rolling_restarts_and_dependency_blinks_lose_no_request() {
    let started = Instant::now();
    let ctx = TestContext::new().await;
    let redis = ToggleProxy::start("127.0.0.1:6379", true).await;
    let amqp = ToggleProxy::start("127.0.0.1:5672", true).await;
    let files = TempDir::new("zimmer-rolling-files");
    let mut fleet = Fleet::new(&ctx, &redis, &amqp, &files);
    fleet.start_all().await;
    let gw = Gateway::start(&fleet.upstreams(), &["http://localhost:3000"]).await;
    let http = zimmer_testkit::client();

    // ---------------------------------------------------------------- set-up
    let market = fleet.base("marketplace");
    let f = funded_automation(&ctx, &http, &market, &gw.url(""), "rolling", 100_000).await;
    let (customer, manager, ua) = (f.customer, f.manager, f.user_automation_id);
    let staff = ctx
        .create_user("rolling-staff@example.com", Role::SupportStaff)
        .await;
    let staff_token = ctx.mint_access_token(staff, Role::SupportStaff, uuid::Uuid::new_v4());
    let manager_token = ctx.mint_access_token(manager, Role::Manager, uuid::Uuid::new_v4());
    let (customer_token, service_token) = (f.access.clone(), f.service_token.clone());
    let res = http
        .post(gw.url("/api/tickets"))
        .bearer_auth(&customer_token)
        .json(&json!({ "subject": "replies go here", "message": "hello" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let reply_ticket = res.json::<Value>().await.unwrap()["id"].as_i64().unwrap();
    let setup = Arc::new(Setup {
        customer_token,
        staff_token,
        manager_token,
        service_token,
        ua,
        reply_ticket,
    });
    let set_up_in = started.elapsed();

    // ---------------------------------------------------------------- streams, then load
    let counts = Arc::new(Counts::default());
    let streams: Vec<Arc<Mutex<StreamLog>>> = (0..2).map(|_| Arc::default()).collect();
    let sse_tasks: Vec<_> = streams
        .iter()
        .enumerate()
        .map(|(i, log)| {
            tokio::spawn(sse_loop(
                gw.address.clone(),
                setup.customer_token.clone(),
                10 + i as u8,
                Arc::clone(&counts),
                Arc::clone(log),
            ))
        })
        .collect();
    zimmer_testkit::eventually("both streams connected", Duration::from_secs(20), || {
        let all = streams.iter().all(|s| s.lock().unwrap().connected);
        async move { all }
    })
    .await;
    let stop = Arc::new(AtomicBool::new(false));
    let written = Arc::new(Mutex::new(Written::default()));
    let load = [
        tokio::spawn(read_loop(
            gw.address.clone(),
            Arc::clone(&setup),
            Arc::clone(&counts),
            Arc::clone(&stop),
        )),
        tokio::spawn(consume_loop(
            gw.address.clone(),
            Arc::clone(&setup),
            Arc::clone(&counts),
            Arc::clone(&stop),
            Arc::clone(&written),
        )),
        tokio::spawn(ticket_loop(
            gw.address.clone(),
            Arc::clone(&setup),
            Arc::clone(&counts),
            Arc::clone(&stop),
            Arc::clone(&written),
        )),
    ];
    tokio::time::sleep(Duration::from_secs(2)).await;

    // ---------------------------------------------------------------- 1. rolling restarts
    let phase = Instant::now();
    let fail_timeout: u64 = zimmer_testkit::GATEWAY_FAIL_TIMEOUT
        .trim_end_matches('s')
        .parse()
        .unwrap();
    let readmission = Duration::from_secs(fail_timeout + 2);
    for service in SERVICES {
        for index in 0..2 {
            counts.phase(format!("restarting {service}#{index}"));
            fleet.restart(service, index).await;
            counts.phase(format!("{service}#{index} replaced"));
            // The replacement is ready, but nginx leaves the port alone for fail_timeout after
            // its last failure there (whole seconds, so up to one more). The other instance
            // must not stop accepting before that, or nginx sees no live instance at all (the
            // 502 "no live upstreams" this test once caught with a 2 s margin); its drain
            // period counts.
            tokio::time::sleep(readmission.saturating_sub(Duration::from_secs(DRAIN_SECS))).await;
        }
    }
    let restarts_took = phase.elapsed();

    // ---------------------------------------------------------------- 2. RabbitMQ, 3. Redis
    for (name, proxy) in [("RabbitMQ", &amqp), ("Redis", &redis)] {
        counts.phase(format!("{name} away"));
        proxy.disable();
        tokio::time::sleep(BLINK).await;
        proxy.enable();
        counts.phase(format!("{name} back"));
        tokio::time::sleep(Duration::from_secs(4)).await;
    }

    stop.store(true, Ordering::SeqCst);
    for task in load {
        task.await.unwrap();
    }

    // ---------------------------------------------------------------- the books
    let written = std::mem::take(&mut *written.lock().unwrap());
    let failures = counts.failures.lock().unwrap().clone();
    let spent = written.consumed.len() as i64;
    // Every accepted key charged once, nothing else charged.
    assert_eq!(
        n(&ctx, &format!("SELECT count(*) AS n FROM token_ledger WHERE kind = 'consumption' AND user_automation_id = {ua}")).await,
        spent,
        "one ledger entry per accepted key"
    );
    assert_eq!(
        n(
            &ctx,
            &format!("SELECT tokens_remaining AS n FROM user_automations WHERE id = {ua}")
        )
        .await,
        100_000 - spent
    );
    assert_eq!(
        n(
            &ctx,
            "SELECT count(*) AS n FROM user_automations ua WHERE ua.tokens_remaining < 0 \
             OR ua.demo_tokens < 0 OR ua.tokens_remaining <> (SELECT COALESCE(SUM(delta), 0) \
             FROM token_ledger l WHERE l.user_automation_id = ua.id)"
        )
        .await,
        0,
        "every balance equals its ledger sum, none negative"
    );
    // Each ticket and each reply exactly once.
    assert_eq!(
        n(
            &ctx,
            "SELECT count(*) AS n FROM tickets WHERE title LIKE 'rolling ticket %'"
        )
        .await,
        written.tickets.len() as i64,
        "no ticket doubled or lost"
    );
    assert_eq!(
        n(
            &ctx,
            "SELECT count(DISTINCT title) AS n FROM tickets WHERE title LIKE 'rolling ticket %'"
        )
        .await,
        written.tickets.len() as i64
    );
    assert_eq!(
        n(
            &ctx,
            &format!(
                "SELECT count(*) AS n FROM ticket_messages WHERE ticket_id = {reply_ticket} \
                 AND body LIKE 'rolling reply %'"
            )
        )
        .await,
        written.replies.len() as i64,
        "no reply doubled or lost"
    );

    // Events written while the broker was away waited in the outboxes and went out after.
    zimmer_testkit::eventually(
        "every outbox drained after the broker came back",
        Duration::from_secs(30),
        || async {
            n(
                &ctx,
                "SELECT count(*) AS n FROM outbox WHERE published_at IS NULL",
            )
            .await
                == 0
        },
    )
    .await;

    // ---------------------------------------------------------------- the streams
    let customer_notifications = |ctx: &TestContext| {
        let url = ctx.db.url.clone();
        async move {
            use diesel_async::RunQueryDsl;
            #[derive(diesel::QueryableByName)]
            struct Id {
                #[diesel(sql_type = diesel::sql_types::BigInt)]
                id: i64,
            }
            let mut conn = zimmer_testkit::connect(&url).await;
            diesel::sql_query(format!(
                "SELECT id FROM notifications WHERE user_id = {customer} ORDER BY id"
            ))
            .load::<Id>(&mut conn)
            .await
            .unwrap()
            .into_iter()
            .map(|r| r.id)
            .collect::<BTreeSet<i64>>()
        }
    };
    let expected = customer_notifications(&ctx).await;
    assert!(
        expected.len() >= written.replies.len(),
        "every staff reply notified the customer: {} < {}",
        expected.len(),
        written.replies.len()
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline
        && !streams.iter().all(|s| {
            s.lock()
                .unwrap()
                .ids
                .iter()
                .copied()
                .collect::<BTreeSet<_>>()
                == expected
        })
    {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    for task in sse_tasks {
        task.abort();
    }
    let access_log = gw.access_log();
    // nginx lists every instance it tried: "a:1, b:2" means it retried on the next one.
    let gateway_retries = access_log
        .lines()
        .filter(|l| l.contains("\"upstream\":\"") && l.contains(", "))
        .filter(|l| {
            l.split("\"upstream\":\"")
                .nth(1)
                .is_some_and(|rest| rest.split('"').next().is_some_and(|u| u.contains(", ")))
        })
        .count();

    eprintln!(
        "rolling: set-up {set_up_in:?}, 10 restarts in {restarts_took:?}, total {:?}\n\
         reads sent {}, writes sent {} (consumptions accepted {}, tickets {}, replies {}), \
         client retries {}, gateway retries {}, failed {}\n\
         notifications {}, stream events {}, streams ended and resumed {}",
        started.elapsed(),
        counts.reads.load(Ordering::Relaxed),
        counts.writes.load(Ordering::Relaxed),
        written.consumed.len(),
        written.tickets.len(),
        written.replies.len(),
        counts.retried.load(Ordering::Relaxed),
        gateway_retries,
        failures.len(),
        expected.len(),
        counts.sse_events.load(Ordering::Relaxed),
        counts.sse_reconnects.load(Ordering::Relaxed),
    );
    assert!(
        failures.is_empty(),
        "{} failed requests:\n{}\nthe gateway's 5xx answers and retries:\n{}\nthe services' errors:\n{}",
        failures.len(),
        failures.join("\n"),
        access_log
            .lines()
            .filter(|l| l.contains("\"status\":5")
                || l.contains("\"upstream_status\":\"5")
                || l.contains("[warn]")
                || l.contains("[error]"))
            .collect::<Vec<_>>()
            .join("\n"),
        fleet.error_lines()
    );
    for (i, s) in streams.iter().enumerate() {
        let ids = s.lock().unwrap().ids.clone();
        let unique: BTreeSet<i64> = ids.iter().copied().collect();
        assert_eq!(
            unique.len(),
            ids.len(),
            "stream {i} got a notification twice: {ids:?}"
        );
        assert_eq!(
            unique, expected,
            "stream {i} got every notification of the customer, nothing else"
        );
    }
    assert!(counts.reads.load(Ordering::Relaxed) > 0 && spent > 0);
    drop(gw);
    drop(fleet);
}

// ------------------------------------------------------------------------------ retry policy

/// An upstream that reads one whole request and closes the connection without answering: to
/// nginx, an instance that died after the request was sent to it.
struct Dropper {
    port: u16,
    seen: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl Dropper {
    async fn start() -> Self {
        use tokio::io::AsyncReadExt;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(AtomicU64::new(0));
        let counter = Arc::clone(&seen);
        let task = tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let counter = Arc::clone(&counter);
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 4096];
                    loop {
                        let Ok(read) = socket.read(&mut chunk).await else {
                            return;
                        };
                        if read == 0 {
                            return;
                        }
                        buf.extend_from_slice(&chunk[..read]);
                        let text = String::from_utf8_lossy(&buf).to_string();
                        if let Some(end) = text.find("\r\n\r\n") {
                            let length = text[..end]
                                .lines()
                                .find_map(|l| {
                                    let (k, v) = l.split_once(':')?;
                                    k.eq_ignore_ascii_case("content-length")
                                        .then(|| v.trim().parse::<usize>().ok())?
                                })
                                .unwrap_or(0);
                            if buf.len() >= end + 4 + length {
                                counter.fetch_add(1, Ordering::SeqCst);
                                return; // dropped: closed without a byte of answer
                            }
                        }
                    }
                });
            }
        });
        Self { port, seen, task }
    }

    fn seen(&self) -> u64 {
        self.seen.load(Ordering::SeqCst)
    }
}

impl Drop for Dropper {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Each probe runs on a fresh gateway whose first listed server is the broken one: with equal
/// weights, a fresh nginx worker's first pick is the first server, so every probe meets the
/// failure first and what follows is the retry policy's doing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_retries_only_what_is_safe_to_repeat() {
    let ctx = TestContext::new().await;
    let logs = TempDir::new("zimmer-retry-logs");
    let files = TempDir::new("zimmer-retry-files");
    let mut env = ctx.env_pairs();
    env.push(("HEALTH_CHECK_ENABLED".to_owned(), "false".to_owned()));
    let market =
        Process::start_service("zimmer-marketplace", "marketplace", &env, &logs.path).await;
    env.push((
        "ATTACHMENTS_DIR".to_owned(),
        files.path.to_string_lossy().into_owned(),
    ));
    let support = Process::start_service("zimmer-support", "support", &env, &logs.path).await;
    let http = zimmer_testkit::client();
    let base = format!("http://127.0.0.1:{}", market.port);

    let f = funded_automation(&ctx, &http, &base, &base, "retry", 100).await;
    let (ua, token, access) = (f.user_automation_id, &f.service_token, &f.access);
    let spends = || {
        n(
            &ctx,
            "SELECT count(*) AS n FROM token_ledger WHERE kind = 'consumption'",
        )
    };

    let dropper = Dropper::start().await;
    let dead = format!("127.0.0.1:{}", free_port());
    let real_market = format!("127.0.0.1:{}", market.port);
    let real_support = format!("127.0.0.1:{}", support.port);
    let gateway = |first: &str, service: &str| {
        let list = vec![first.to_owned(), service.to_owned()];
        let upstreams = if service == real_support {
            Upstreams {
                support: list,
                ..Upstreams::default()
            }
        } else {
            Upstreams {
                marketplace: list,
                ..Upstreams::default()
            }
        };
        async move { Gateway::start(&upstreams, &["http://localhost:3000"]).await }
    };
    let consume = |gw: &Gateway, header_key: Option<&str>, body_key: Option<&str>| {
        let mut req = http
            .post(gw.url("/api/automation-usage/consume"))
            .header("X-Zimmer-Service-Token", token)
            .json(&json!({ "user_automation_id": ua, "units": 1, "idempotency_key": body_key }));
        if let Some(k) = header_key {
            req = req.header("Idempotency-Key", k);
        }
        req.send()
    };
    let dropper_addr = format!("127.0.0.1:{}", dropper.port);

    // A read that an instance swallowed is read again from the next one.
    let gw = gateway(&dropper_addr, &real_market).await;
    let res = http
        .get(gw.url("/api/automations/marketplace"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(
        dropper.seen(),
        1,
        "the first try went to the broken instance"
    );
    drop(gw);

    // A keyed spend that an instance swallowed is sent again (non_idempotent) and charged once.
    let gw = gateway(&dropper_addr, &real_market).await;
    let res = consume(&gw, Some("retry-key-1"), None).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK, "{}", gw.access_log());
    assert_eq!(res.json::<Value>().await.unwrap()["accepted"], true);
    assert_eq!(dropper.seen(), 2);
    assert_eq!(spends().await, 1);
    // The vendor's own retry with the same key replays, charges nothing.
    let res = consume(&gw, Some("retry-key-1"), None).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(spends().await, 1);
    drop(gw);

    // A spend whose key nginx cannot see (body only) is not sent twice: a clean 502, in the
    // API's JSON shape, and nothing charged; the vendor retries with its key.
    let gw = gateway(&dropper_addr, &real_market).await;
    let res = consume(&gw, None, Some("retry-key-2")).await.unwrap();
    assert_eq!(res.status(), StatusCode::BAD_GATEWAY);
    assert_eq!(res.json::<Value>().await.unwrap()["code"], "bad_gateway");
    assert_eq!(dropper.seen(), 3);
    assert_eq!(spends().await, 1);
    let res = consume(&gw, None, Some("retry-key-2")).await.unwrap();
    assert_eq!(
        res.status(),
        StatusCode::OK,
        "the next try goes to the live one"
    );
    assert_eq!(spends().await, 2);
    drop(gw);

    // A POST to an instance that refuses the connection never reached it: retried, keyed or
    // not.
    let gw = gateway(&dead, &real_market).await;
    let res = consume(&gw, None, None).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK, "{}", gw.access_log());
    assert_eq!(spends().await, 3);
    assert!(
        gw.access_log()
            .contains(&format!("\"upstream\":\"{dead}, {real_market}\"")),
        "{}",
        gw.access_log()
    );
    drop(gw);

    // A notification stream that cannot connect to one instance connects to the next (an
    // EventSource would give up on a 502).
    let gw = gateway(&dead, &real_support).await;
    let res = http
        .get(gw.url("/api/notifications/stream"))
        .bearer_auth(access)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK, "{}", gw.access_log());
    drop(res);
    drop(gw);

    // A PUT on a ticket may add a message: never sent twice, even though nginx would retry a
    // PUT; a ticket read is retried.
    let gw = gateway(&dropper_addr, &real_support).await;
    let seen = dropper.seen();
    let res = http
        .put(gw.url("/api/tickets/1"))
        .bearer_auth(access)
        .json(&json!({ "message": "sent once" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_GATEWAY);
    assert_eq!(res.json::<Value>().await.unwrap()["code"], "bad_gateway");
    assert_eq!(dropper.seen(), seen + 1);
    drop(gw);
    let gw = gateway(&dropper_addr, &real_support).await;
    let res = http
        .get(gw.url("/api/tickets"))
        .bearer_auth(access)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK, "{}", gw.access_log());
    assert_eq!(dropper.seen(), seen + 2);
    drop(gw);
    drop((market, support));
}
