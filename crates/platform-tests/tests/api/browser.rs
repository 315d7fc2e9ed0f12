//! A new customer's first visit, in a real browser (headless Chromium) against the real
//! gateway: the panel-like page `browser/flow.html` is served by this test from the panel's
//! origin (http://localhost:3000, or another free port of localhost when 3000 is taken) and
//! makes the panel's calls with `fetch(..., {credentials: 'include'})` and `EventSource`:
//! sign up, log in, browse the marketplace, add an automation, buy tokens through the fake
//! Zarinpal's StartPay page and back to the panel's `/payment/return`, open a ticket with a
//! Persian subject, open the notifications, log out. The page reports every backend call's
//! status; the test asserts the flow completed with no failed call (no network error, no
//! CORS refusal, no 4xx/5xx but the one deliberate 401), and checks the outcome in the
//! database and the gateway's access log.
//!
//! Needs Chromium (`apt-get install -y chromium`; scripts/test.sh installs it when root and
//! exports `ZIMMER_CHROMIUM_BIN`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    net::TcpListener,
    os::unix::process::CommandExt,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex},
    time::Duration,
};

use actix_web::{App, HttpResponse, HttpServer, dev::ServerHandle, web};
use serde_json::Value;
use tokio::sync::Notify;
use zimmer_platform_tests::*;
use zimmer_testkit::{TempDir, count};

/// How long the whole flow may take in the browser before the test gives up.
const FLOW_TIMEOUT: Duration = Duration::from_secs(120);
const EMAIL: &str = "mahsa@example.com";
const STEPS: &[&str] = &[
    "signup",
    "login",
    "marketplace",
    "add-automation",
    "purchase-page",
    "payment-gateway",
    "payment-result",
    "refresh-after-reload",
    "ticket",
    "notifications",
    "logout",
    "done",
];

/// The flow as the test checks it: through every step, within `FLOW_TIMEOUT`.
const FLOW: Run = Run {
    key: "steps",
    expected: STEPS,
    labels: &["step"],
    completed: "the flow completed",
    timeout: FLOW_TIMEOUT,
};
/// Every call of docs/panels.md this flow must have made (method, path without ids/query).
const FLOW_CALLS: &[(&str, &str)] = &[
    ("POST", "/api/auth/signup"),
    ("POST", "/api/auth/login"),
    ("GET", "/api/me"),
    ("GET", "/api/optimized/automations/marketplace"),
    ("GET", "/api/automations/{id}"),
    ("POST", "/api/user/automations/{id}"),
    ("GET", "/api/user/automations"),
    ("GET", "/api/user/automations/{id}"),
    ("POST", "/api/discounts/validate"),
    ("POST", "/api/payments/zarinpal/init"),
    ("GET", "/api/payments/zarinpal/callback"),
    ("POST", "/api/auth/refresh"),
    ("GET", "/api/user/payments"),
    ("POST", "/api/tickets"),
    ("GET", "/api/tickets"),
    ("GET", "/api/notifications"),
    ("GET", "/api/notifications/unread-count"),
    ("GET", "/api/notifications/stream"),
    ("POST", "/api/notifications/mark-read"),
    ("POST", "/api/notifications/mark-all-read"),
    ("POST", "/api/auth/logout"),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_customer_goes_through_the_panel_in_a_real_browser() {
    let chromium = chromium_binary();
    let panel = panel_site();
    let stack = Stack::start(StackOptions {
        panel_origin: panel.origin.clone(),
        ..StackOptions::default()
    })
    .await;
    stack
        .run_showing_logs(scenario(&stack, &panel, &chromium))
        .await;
}

async fn scenario(stack: &Stack, panel: &Site, chromium: &Path) {
    let mut conn = stack.db().await;
    let bot = automation(&mut conn, "ربات فروش اینستاگرام", 12_000).await;
    discount(&mut conn, "YALDA", 10).await;
    let run = uuid::Uuid::new_v4().simple().to_string();
    let url = format!(
        "{}/?api={}&email={EMAIL}&password=a-long-password-1&automation={bot}&discount=YALDA&run={run}",
        panel.origin,
        stack.api_base()
    );

    let (report, calls, context) = panel.walk(chromium, &url, &run, &FLOW).await;
    let refused: Vec<&Value> = calls
        .iter()
        .filter(|c| c["status"].as_i64().unwrap() >= 400)
        .collect();
    assert_eq!(
        refused.len(),
        1,
        "only the deliberate refresh after logout is refused\n{context}"
    );
    assert_eq!(refused[0]["path"], "/api/auth/refresh");
    assert_eq!(refused[0]["step"], "logout");
    assert_made(&calls, FLOW_CALLS, &context);
    assert_eq!(report["notes"]["paymentStatus"], "succeeded", "{context}");

    // What the browser did, as the platform recorded it.
    // `count` reads one bigint column named n: here the new user's id.
    let user_id = count(
        &mut conn,
        &format!("SELECT id AS n FROM users WHERE email = '{EMAIL}' AND role = 'customer'"),
    )
    .await;
    let payment_id = report["notes"]["paymentId"].as_i64().unwrap();
    let ticket_id = report["notes"]["ticketId"].as_i64().unwrap();
    for (what, sql) in [
        (
            "the payment",
            format!(
                "SELECT count(*) AS n FROM payments WHERE id = {payment_id} AND user_id = {user_id} \
                 AND status = 'succeeded' AND tokens_purchased = 10 AND discount_code = 'yalda'"
            ),
        ),
        (
            "the ticket: the Persian subject arrives exactly as typed (ZWNJ included)",
            format!(
                "SELECT count(*) AS n FROM tickets WHERE id = {ticket_id} AND user_id = {user_id} \
                 AND title = 'ربات تلگرام به پیام‌ها پاسخ نمی‌دهد' AND importance = 'high'"
            ),
        ),
        (
            // Signup and login each opened a session; logout ended the one the cookie named.
            "the session logout ended",
            format!(
                "SELECT count(*) AS n FROM sessions WHERE user_id = {user_id} AND revoked_at IS NOT NULL"
            ),
        ),
    ] {
        assert_eq!(count(&mut conn, &sql).await, 1, "{what}: {sql}");
    }
    stack
        .wait_for_count(
            "the purchased tokens are credited",
            &format!(
                "SELECT count(*) AS n FROM user_automations WHERE user_id = {user_id} \
                 AND automation_id = {bot} AND tokens_remaining = 10"
            ),
            1,
        )
        .await;

    // The notifications the page listed came from events (the welcome, the purchase).
    stack
        .wait_for_count(
            "the welcome and the purchase's notifications",
            &format!(
                "SELECT count(DISTINCT kind) AS n FROM notifications WHERE user_id = {user_id} \
                 AND kind IN ('system', 'payment')"
            ),
            2,
        )
        .await;

    // The gateway's view: every /api/ request it answered (preflights and the bank's
    // redirect included) succeeded, but for the deliberate 401.
    let log = stack.gw.access_log();
    let lines: Vec<Value> = log
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|l| l["uri"].as_str().is_some_and(|u| u.starts_with("/api/")))
        .collect();
    assert!(
        lines.iter().any(|l| l["method"] == "OPTIONS"),
        "the browser sent preflights"
    );
    assert!(
        lines
            .iter()
            .any(|l| l["uri"] == "/api/payments/zarinpal/callback" && l["status"] == 302)
    );
    let failed: Vec<&Value> = lines
        .iter()
        .filter(|l| l["status"].as_i64().unwrap_or(0) >= 400)
        .collect();
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0]["uri"], "/api/auth/refresh");
    assert_eq!(failed[0]["status"], 401);
}

/// `/api/automations/123` matches `/api/automations/{id}`.
/// What a page's run must show: its progress list under `key` is `expected`, it ends within
/// `timeout`; `labels` name the report fields shown beside each call in failure messages, and
/// `completed` says what a run that did not end "done" failed to do.
pub(crate) struct Run<'a> {
    pub(crate) key: &'a str,
    pub(crate) expected: &'a [&'a str],
    pub(crate) labels: &'a [&'a str],
    pub(crate) completed: &'a str,
    pub(crate) timeout: Duration,
}

/// Checks a page's final report: it is this run's, it completed, it went through `expected`
/// (the report's list under `key`), and no call failed or answered a status it did not expect.
/// Returns the calls and a context (every call, labelled by the `labels` fields, and Chromium's
/// last lines) for the caller's own assertions.
pub(crate) fn checked_report(
    report: &Value,
    browser_log: &str,
    run: &str,
    &Run {
        key,
        expected,
        labels,
        completed,
        ..
    }: &Run<'_>,
) -> (Vec<Value>, String) {
    let calls = report["calls"].as_array().cloned().unwrap_or_default();
    let calls_text = calls
        .iter()
        .map(|c| {
            let label: String = labels
                .iter()
                .map(|l| format!("{:<18} ", c[*l].as_str().unwrap_or("")))
                .collect();
            format!(
                "{label}{:<6} {:<45} {} {}",
                c["method"].as_str().unwrap_or(""),
                c["path"].as_str().unwrap_or(""),
                c["status"],
                c["error"].as_str().unwrap_or("")
            )
        })
        .collect::<Vec<_>>()
        .join("\n");
    let context = format!(
        "report: {} {}\ncalls:\n{calls_text}\n----- chromium (tail) -----\n{}",
        report["kind"],
        report["detail"],
        tail(browser_log, 40)
    );
    assert_eq!(report["run"], run, "{context}");
    assert_eq!(report["kind"], "done", "{completed}\n{context}");
    let walked: Vec<&str> = report[key]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    assert_eq!(walked, expected, "{context}");
    // No failed backend call: every one answered, as expected.
    for c in &calls {
        assert!(
            c["error"].is_null(),
            "a call failed in the browser\n{context}"
        );
        assert!(
            c["expected"].as_array().unwrap().contains(&c["status"]),
            "unexpected status\n{context}"
        );
    }
    (calls, context)
}

/// Every `(method, path pattern)` of `expected` is among the report's `calls`.
pub(crate) fn assert_made(calls: &[Value], expected: &[(&str, &str)], context: &str) {
    for (method, pattern) in expected {
        assert!(
            calls
                .iter()
                .any(|c| c["method"] == *method
                    && matches_path(c["path"].as_str().unwrap(), pattern)),
            "the browser made {method} {pattern}\n{context}"
        );
    }
}

pub(crate) fn matches_path(path: &str, pattern: &str) -> bool {
    let (p, q): (Vec<&str>, Vec<&str>) = (path.split('/').collect(), pattern.split('/').collect());
    p.len() == q.len()
        && p.iter()
            .zip(&q)
            .all(|(a, b)| a == b || (*b == "{id}" && a.parse::<i64>().is_ok()))
}

/// The last lines of a log, without Chromium's D-Bus complaints (there is no bus here).
pub(crate) fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text
        .lines()
        .filter(|l| !l.contains("dbus") && !l.contains("D-Bus"))
        .collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

// ------------------------------------------------------------------------------ the panel site

/// A page of ours at its origin: `<name>.html` at `/` and at each of the other page paths,
/// `<name>.js`, and the `/report` endpoint it posts its record to; stopped when dropped.
pub(crate) struct Site {
    pub(crate) origin: String,
    pub(crate) reports: Arc<Reports>,
    handle: ServerHandle,
}

/// What a page of ours posted to `/report`, in order (see [`report`]).
#[derive(Default)]
pub(crate) struct Reports {
    all: Mutex<Vec<Value>>,
    changed: Notify,
}

impl Reports {
    /// The page's final report ("done" or "error"); fails if Chromium exits or time runs out,
    /// naming the last progress (the report's `progress` list and its calls).
    pub(crate) async fn wait_for_end(
        &self,
        browser: &Browser,
        timeout: Duration,
        progress: &str,
    ) -> Value {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let changed = self.changed.notified();
            if let Some(last) = self
                .all
                .lock()
                .unwrap()
                .iter()
                .rev()
                .find(|r| r["kind"] == "done" || r["kind"] == "error")
            {
                return last.clone();
            }
            if let Some(status) = browser.exited() {
                panic!(
                    "Chromium exited ({status}) before the page's run ended; its log:\n{}",
                    tail(&browser.log(), 60)
                );
            }
            let now = tokio::time::Instant::now();
            if now >= deadline {
                let last = self.all.lock().unwrap().last().cloned();
                panic!(
                    "the page's run did not end within {timeout:?}; last progress: {}\nChromium log:\n{}",
                    last.map(|l| format!("{progress} {} calls {}", l[progress], l["calls"]))
                        .unwrap_or_else(|| "none (the page never reported)".to_owned()),
                    tail(&browser.log(), 60)
                );
            }
            let _ = tokio::time::timeout((deadline - now).min(Duration::from_millis(500)), changed)
                .await;
        }
    }
}

impl Site {
    /// Opens `url` in Chromium, waits for the page's final report and checks it as the run
    /// `run` ([`checked_report`]): the report, its calls and the context for failure messages.
    pub(crate) async fn walk(
        &self,
        chromium: &Path,
        url: &str,
        run: &str,
        expect: &Run<'_>,
    ) -> (Value, Vec<Value>, String) {
        let browser = Browser::start(chromium, url);
        let report = self
            .reports
            .wait_for_end(&browser, expect.timeout, expect.key)
            .await;
        let browser_log = browser.log();
        drop(browser);
        let (calls, context) = checked_report(&report, &browser_log, run, expect);
        (report, calls, context)
    }

    /// Serves the page `name` (files under `browser/`) on `listeners`, as `origin`.
    pub(crate) fn start(
        name: &str,
        pages: &'static [&'static str],
        listeners: Vec<TcpListener>,
        origin: String,
    ) -> Self {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("browser");
        let read = |file: String| std::fs::read_to_string(dir.join(&file)).expect(&file);
        let (html, js) = (read(format!("{name}.html")), read(format!("{name}.js")));
        // The recorded call both pages make (`record.js`, loaded before the page's own script).
        let shared_js = read("record.js".to_owned());
        let js_path = format!("/{name}.js");
        let reports = Arc::new(Reports::default());
        let state = web::Data::from(Arc::clone(&reports));
        let serve = |body: String, content_type: &'static str| {
            move || {
                let body = body.clone();
                async move { HttpResponse::Ok().content_type(content_type).body(body) }
            }
        };
        let page = serve(html, "text/html; charset=utf-8");
        let script = serve(js, "application/javascript; charset=utf-8");
        let shared_script = serve(shared_js, "application/javascript; charset=utf-8");
        let mut server = HttpServer::new(move || {
            let mut app = App::new()
                .app_data(state.clone())
                .app_data(web::JsonConfig::default().limit(1 << 20))
                .route(&js_path, web::get().to(script.clone()))
                .route("/record.js", web::get().to(shared_script.clone()))
                .route("/report", web::post().to(report));
            for path in std::iter::once(&"/").chain(pages) {
                app = app.route(path, web::get().to(page.clone()));
            }
            app.default_service(web::to(|| async { HttpResponse::NoContent().finish() }))
        })
        .workers(1)
        .disable_signals();
        for l in listeners {
            server = server.listen(l).expect("listen");
        }
        let server = server.run();
        let handle = server.handle();
        tokio::spawn(server);
        Self {
            origin,
            reports,
            handle,
        }
    }
}

impl Drop for Site {
    fn drop(&mut self) {
        let handle = self.handle.clone();
        drop(tokio::spawn(async move { handle.stop(false).await }));
    }
}

/// The panel's origin (`flow.html`, also at `/payment/return`, where the payment comes back).
fn panel_site() -> Site {
    let (port, listeners) = panel_listeners();
    let origin = format!("http://localhost:{port}");
    Site::start("flow", &["/payment/return"], listeners, origin)
}

pub(crate) async fn report(reports: web::Data<Reports>, body: web::Json<Value>) -> HttpResponse {
    reports.all.lock().unwrap().push(body.into_inner());
    reports.changed.notify_waiters();
    HttpResponse::NoContent().finish()
}

/// Listeners for the panel: port 3000 (the panel's own) when free on every loopback address
/// `localhost` may resolve to, else another free port; IPv4 and, where available, IPv6.
fn panel_listeners() -> (u16, Vec<TcpListener>) {
    let try_port = |port: u16| -> Option<(u16, Vec<TcpListener>)> {
        let v4 = TcpListener::bind(("127.0.0.1", port)).ok()?;
        let port = v4.local_addr().ok()?.port();
        let mut all = vec![v4];
        match TcpListener::bind(("::1", port)) {
            Ok(v6) => all.push(v6),
            // Something else answers for localhost on ::1: not ours to use.
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => return None,
            Err(_) => {} // no IPv6 loopback here
        }
        Some((port, all))
    };
    try_port(3000)
        .or_else(|| (0..20).find_map(|_| try_port(0)))
        .expect("a free port for the panel")
}

// ------------------------------------------------------------------------------ Chromium

pub(crate) fn chromium_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("ZIMMER_CHROMIUM_BIN") {
        return PathBuf::from(p);
    }
    for candidate in [
        "/usr/bin/chromium",
        "/usr/bin/chromium-browser",
        "/usr/bin/google-chrome",
        "/usr/bin/google-chrome-stable",
    ] {
        if Path::new(candidate).exists() {
            return PathBuf::from(candidate);
        }
    }
    panic!(
        "Chromium not found: install it (apt-get install -y chromium; scripts/test.sh does it \
         when run as root) or set ZIMMER_CHROMIUM_BIN"
    );
}

/// Headless Chromium with a fresh profile, in its own process group (killed whole on drop).
pub(crate) struct Browser {
    child: Mutex<Child>,
    log: PathBuf,
    _dir: TempDir,
}

impl Browser {
    pub(crate) fn start(binary: &Path, url: &str) -> Self {
        let dir = TempDir::new("zimmer-chromium");
        let profile = dir.path.join("profile");
        let log = dir.path.join("chromium.log");
        let file = std::fs::File::create(&log).expect("log file");
        let child = Command::new(binary)
            .args([
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--disable-quic",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-extensions",
                "--password-store=basic",
                "--enable-logging=stderr",
                "--v=0",
                &format!("--user-data-dir={}", profile.display()),
                url,
            ])
            .env("HOME", &dir.path)
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("log file"))
            .stderr(file)
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));
        Self {
            child: Mutex::new(child),
            log,
            _dir: dir,
        }
    }

    pub(crate) fn exited(&self) -> Option<std::process::ExitStatus> {
        self.child.lock().unwrap().try_wait().ok().flatten()
    }

    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let mut child = self.child.lock().unwrap();
        // The whole group (browser, renderer, GPU and utility processes) by its id.
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", child.id())])
            .status();
        let _ = child.kill();
        let _ = child.wait();
    }
}
