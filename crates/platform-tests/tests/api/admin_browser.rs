//! The admin dashboard's main pages in a real browser (headless Chromium) against the real
//! gateway and every service binary, admin included: the page `browser/admin.html` (our own
//! stand-in, no code of the original dashboard) is served by this test from the dashboard's
//! origin (http://127.0.0.1:3001, or another free port when 3001 is taken) and makes, as
//! docs/panels.md ("The admin dashboard") says the dashboard does, the calls of the dashboard
//! cards, users, user automations, token adjustments, knowledge, KB templates, KB monitoring,
//! backups, tickets, automations, API keys, usage, payments, discounts, fallbacks and
//! notifications pages, checking the fields and JSON types each page reads. The test asserts
//! the run completed with every call answered as expected (no network error, no CORS refusal),
//! and checks the writes in the database.
//!
//! Needs Chromium (see `browser.rs`) and `cargo build --workspace --bins`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{net::TcpListener, path::Path, time::Duration};

use zimmer_platform_tests::*;
use zimmer_testkit::{TEST_PASSWORD, count};

use crate::browser::{Run, Site, assert_made, chromium_binary};

/// How long the whole run may take in the browser (generous: a loaded 2-core machine).
const RUN_TIMEOUT: Duration = Duration::from_secs(180);
const MANAGER: &str = "manager@zimmer.local";
const PAGES: &[&str] = &[
    "login",
    "dashboard",
    "users",
    "user-automations",
    "token-adjustments",
    "knowledge",
    "kb-templates",
    "kb-monitoring",
    "backups",
    "tickets",
    "automations",
    "api-keys",
    "usage",
    "payments",
    "discounts",
    "fallbacks",
    "notifications",
    "logout",
];

/// The run as the test checks it: through every page, within `RUN_TIMEOUT`.
const WALK: Run = Run {
    key: "pages",
    expected: PAGES,
    labels: &["page", "how"],
    completed: "the run completed",
    timeout: RUN_TIMEOUT,
};
/// Calls the run must have made (method, path without query; `{id}` = digits).
const CALLS: &[(&str, &str)] = &[
    ("POST", "/api/auth/login"),
    ("GET", "/api/admin/dashboard"),
    ("GET", "/api/admin/usage/stats"),
    ("GET", "/api/admin/payments"),
    ("GET", "/api/admin/users/managers"),
    ("GET", "/api/admin/user-automations"),
    ("POST", "/api/admin/tokens/adjust"),
    ("GET", "/api/admin/tokens/adjustments"),
    ("GET", "/api/admin/knowledge"),
    ("POST", "/api/admin/knowledge"),
    ("GET", "/api/admin/kb-templates"),
    ("POST", "/api/admin/kb-templates"),
    ("GET", "/api/admin/automations"),
    ("GET", "/api/admin/kb-history"),
    ("GET", "/api/admin/kb-history/stats"),
    ("GET", "/api/admin/kb-history/chart-data"),
    ("GET", "/api/admin/backups"),
    ("GET", "/api/admin/backups/stats"),
    ("GET", "/api/admin/tickets"),
    ("PUT", "/api/tickets/{id}"),
    ("PUT", "/api/admin/automations/{id}"),
    ("GET", "/api/admin/list"),
    ("POST", "/api/admin/"),
    ("POST", "/api/admin/discounts"),
    ("GET", "/api/admin/discounts"),
    ("PUT", "/api/admin/discounts/{id}"),
    ("GET", "/api/admin/discounts/{id}/redemptions"),
    ("GET", "/api/admin/users"),
    ("GET", "/api/admin/fallbacks"),
    ("POST", "/api/admin/notifications"),
    ("POST", "/api/admin/notifications/broadcast"),
    ("POST", "/api/auth/logout"),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manager_goes_through_the_admin_dashboard_pages_in_a_real_browser() {
    let chromium = chromium_binary();
    let site = dashboard_site();
    let stack = Stack::start(StackOptions {
        panel_origin: site.origin.clone(),
        admin: true,
        ..StackOptions::default()
    })
    .await;
    stack
        .run_showing_logs(scenario(&stack, &site, &chromium))
        .await;
}

async fn scenario(stack: &Stack, site: &Site, chromium: &Path) {
    let mut conn = stack.db().await;
    let manager = stack
        .ctx
        .create_user(MANAGER, zimmer_jwt::Role::Manager)
        .await;
    let customer = stack
        .ctx
        .create_user("sara@example.com", zimmer_jwt::Role::Customer)
        .await;
    for (id, name) in [(manager, "مدیر زیمر"), (customer, "سارا")] {
        exec(
            &mut conn,
            &format!("UPDATE users SET name = '{name}', email_verified_at = now() WHERE id = {id}"),
        )
        .await;
    }
    let bot = automation(&mut conn, "ربات پشتیبانی", 1_000).await;
    let ua = insert_returning_id(
        &mut conn,
        &format!(
            "INSERT INTO user_automations (user_id, automation_id, tokens_remaining) \
             VALUES ({customer}, {bot}, 40) RETURNING id"
        ),
    )
    .await;
    exec(
        &mut conn,
        &format!(
            "INSERT INTO payments (user_id, automation_id, user_automation_id, amount, \
             tokens_purchased, status, verified_at) VALUES ({customer}, {bot}, {ua}, 40000, 40, \
             'succeeded', now())"
        ),
    )
    .await;
    let ticket = insert_returning_id(
        &mut conn,
        &format!(
            "INSERT INTO tickets (user_id, title, description, priority) VALUES ({customer}, \
             'ربات جواب نمی‌دهد', 'از دیروز', 'high') RETURNING id"
        ),
    )
    .await;
    exec(
        &mut conn,
        &format!(
            "INSERT INTO ticket_messages (ticket_id, author_id, is_staff, body) VALUES \
             ({ticket}, {customer}, false, 'از دیروز')"
        ),
    )
    .await;
    exec(
        &mut conn,
        &format!(
            "INSERT INTO fallback_logs (user_automation_id, user_id, automation_id, message) \
             VALUES ({ua}, {customer}, {bot}, 'پاسخی پیدا نشد')"
        ),
    )
    .await;

    let run = uuid::Uuid::new_v4().simple().to_string();
    let url = format!(
        "{}/?api={}&email={MANAGER}&password={}&automation={bot}&ua={ua}&customer={customer}\
         &ticket={ticket}&run={run}",
        site.origin,
        api_base(stack),
        TEST_PASSWORD.replace(' ', "%20"),
    );
    let (_, calls, context) = site.walk(chromium, &url, &run, &WALK).await;
    for c in &calls {
        assert!(c["status"].as_i64().unwrap() < 400, "{context}");
    }
    assert_made(&calls, CALLS, &context);

    // The writes, as the platform recorded them.
    for (what, sql) in [
        (
            "the adjustment",
            format!("SELECT count(*) AS n FROM user_automations WHERE id = {ua} AND tokens_remaining = 50"),
        ),
        (
            "the knowledge entry",
            format!("SELECT count(*) AS n FROM knowledge_entries WHERE client_id = {customer}"),
        ),
        (
            "the template",
            format!("SELECT count(*) AS n FROM kb_templates WHERE automation_id = {bot} AND category IS NULL"),
        ),
        (
            "the ticket's status and reply",
            format!(
                "SELECT count(*) AS n FROM tickets t WHERE t.id = {ticket} AND t.status = 'in_progress' \
                 AND EXISTS (SELECT 1 FROM ticket_messages m WHERE m.ticket_id = t.id AND m.is_staff)"
            ),
        ),
        (
            "the key",
            format!("SELECT count(*) AS n FROM openai_keys WHERE automation_id = {bot} AND rpm_limit = 60"),
        ),
        (
            "the discount code",
            "SELECT count(*) AS n FROM discount_codes WHERE lower(code) = 'bahar' AND percent_off = 20"
                .to_owned(),
        ),
        (
            "the direct notification",
            format!(
                "SELECT count(*) AS n FROM notifications WHERE user_id = {customer} AND title = 'اطلاعیه'"
            ),
        ),
    ] {
        assert_eq!(count(&mut conn, &sql).await, 1, "{what}: {sql}");
    }
    stack
        .wait_for_count(
            "the broadcast reached the customer",
            &format!(
                "SELECT count(*) AS n FROM notifications WHERE user_id = {customer} AND title = 'همه'"
            ),
            1,
        )
        .await;
}

/// The gateway under the dashboard's host name (127.0.0.1: the same site, so the refresh
/// cookie of the login travels with the AX calls).
fn api_base(stack: &Stack) -> String {
    format!("http://127.0.0.1:{}", stack.gw.port)
}

// ------------------------------------------------------------------------------ the site

/// The dashboard's origin (`admin.html`), on the dashboard's own port when free (in the
/// default CORS list), else any.
fn dashboard_site() -> Site {
    let listener = TcpListener::bind(("127.0.0.1", 3001))
        .or_else(|_| TcpListener::bind(("127.0.0.1", 0)))
        .expect("a port for the dashboard");
    let port = listener.local_addr().unwrap().port();
    let origin = format!("http://127.0.0.1:{port}");
    Site::start("admin", &[], vec![listener], origin)
}
