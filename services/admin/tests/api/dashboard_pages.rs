//! The rest of the admin dashboard's calls (docs/panels.md "The admin dashboard"), sent as the
//! dashboard sends them through the real gateway (see `dashboard_contract.rs` for the
//! transport): sign-in, the users page's edits and permanent delete, the automations page's
//! token buttons and the wizard's generate-token, the API keys page's alias paths, knowledge,
//! KB templates, KB monitoring, backups, tickets (the admin list and support's own paths),
//! discount redemptions and the server-rendered 401, fallbacks and direct notifications.

use crate::common::{self, Call, With, World};
use crate::dashboard_contract::{
    Dashboard, Field, ORIGIN, assert_types, boolean, list, num, only_row, text, text_or_null,
};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use zimmer_fake_openai::FakeOpenAi;
use zimmer_fake_vendor::KbAnswer;
use zimmer_jwt::Role;
use zimmer_testkit::{TEST_PASSWORD, TempDir, str_at};

fn str_array(v: &Value) -> bool {
    v.as_array().is_some_and(|a| a.iter().all(Value::is_string))
}

/// The `name=value` part of each cookie `res` sets, as the browser sends it back.
fn cookie_pairs(res: &reqwest::Response) -> Vec<String> {
    res.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or("").to_owned())
        .collect()
}

/// A call that must answer 2xx; returns the body.
async fn ok(d: &Dashboard, method: Method, path: &str, token: &str, body: Option<Value>) -> Value {
    let (status, v) = d.call(method.clone(), path, token, body).await;
    assert!(status.is_success(), "{method} {path}: {status} {v}");
    v
}

/// The API keys page's "test" button for key `id`: its answer says whether the key works.
async fn test_key(d: &Dashboard, id: i64, token: &str) -> Value {
    let path = format!("/api/admin/keys/{id}/test");
    ok(d, Method::POST, &path, token, None).await
}

/// A call a role may not make: 403 with a `detail` (the dashboard's toast).
async fn refused(d: &Dashboard, method: Method, path: &str, token: &str, body: Option<Value>) {
    let (status, v) = d.call(method.clone(), path, token, body).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{method} {path}: {v}");
    assert!(v["detail"].is_string(), "{method} {path}: {v}");
}

/// Each of `paths` (the whole list and a filtered one) lists exactly one row under `key`,
/// with the fields the dashboard reads.
async fn one_row_each(
    d: &Dashboard,
    token: &str,
    paths: [&str; 2],
    key: &str,
    fields: &[Field<'_>],
) {
    for path in paths {
        let v = d.get(path, token).await;
        only_row(list(&v, key), fields, &format!("{path}: {key}"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dashboard_sign_in_login_refresh_logout_and_signup_through_the_gateway() {
    let w = World::start(With::AUTH).await;
    let d = Dashboard::open(&w).await;
    let (manager, _) = w.user("boss@example.com", Role::Manager).await;
    w.update_user(manager, "name = 'Boss', email_verified_at = now()")
        .await;

    // Login: AX, no Bearer yet.
    let res = d
        .http
        .post(d.gw.url("/api/auth/login"))
        .header("Origin", ORIGIN)
        .json(&json!({"email": "boss@example.com", "password": TEST_PASSWORD}))
        .call_expecting(StatusCode::OK)
        .await;
    assert_eq!(res.headers()["access-control-allow-origin"], ORIGIN);
    assert_eq!(res.headers()["access-control-allow-credentials"], "true");
    let cookies = cookie_pairs(&res);
    assert!(!cookies.is_empty(), "login sets the refresh cookie");
    let cookie = cookies.join("; ");
    let v: Value = res.json().await.unwrap();
    assert!(v["access_token"].is_string(), "{v}");
    assert_types(
        &v["user"],
        &[
            ("id", num),
            ("name", text),
            ("email", text),
            ("is_admin", boolean),
        ],
        "login user",
    );
    assert_eq!(v["user"]["is_admin"], true);
    let token = str_at(&v, "access_token").to_owned();

    // Refresh: the stored Bearer and the cookie, no body.
    let res = d
        .http
        .post(d.gw.url("/api/auth/refresh"))
        .header("Origin", ORIGIN)
        .header("Content-Type", "application/json")
        .bearer_auth("expired.or.not")
        .header("Cookie", &cookie)
        .call_expecting(StatusCode::OK)
        .await;
    let rotated = cookie_pairs(&res);
    let v: Value = res.json().await.unwrap();
    assert!(v["access_token"].is_string(), "{v}");
    let cookie = if rotated.is_empty() {
        cookie
    } else {
        rotated.join("; ")
    };

    // Logout: Bearer (possibly expired) + cookie, no body; never 401.
    let res = d
        .http
        .post(d.gw.url("/api/auth/logout"))
        .header("Origin", ORIGIN)
        .header("Content-Type", "application/json")
        .bearer_auth(&token)
        .header("Cookie", &cookie)
        .call()
        .await;
    assert!(res.status().is_success(), "{}", res.status());
    let res = d
        .http
        .post(d.gw.url("/api/auth/logout"))
        .header("Origin", ORIGIN)
        .bearer_auth("expired.token.value")
        .call()
        .await;
    assert_ne!(
        res.status(),
        StatusCode::UNAUTHORIZED,
        "logout never answers 401"
    );

    // Signup (pages/signup.tsx): no confirm_password; flat fields beside `user`; a customer.
    let res = d
        .http
        .post(d.gw.url("/api/auth/signup"))
        .header("Origin", ORIGIN)
        .json(&json!({"email": "new@example.com", "password": "Long-enough-pass-2026", "name": "Nima"}))
        .call_expecting(StatusCode::CREATED)
        .await;
    let v: Value = res.json().await.unwrap();
    assert_types(
        &v,
        &[
            ("user_id", num),
            ("email", text),
            ("name", text),
            ("access_token", text),
        ],
        "signup",
    );
    assert_eq!(v["user"]["role"], "customer");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dashboard_users_page_edits_deactivates_and_deletes_permanently() {
    let w = World::start(With::AUTH).await;
    let d = Dashboard::open(&w).await;
    let [(_, manager), (_, support)] = w.staff([Role::Manager, Role::SupportStaff]).await;
    let (customer, _) = w.user("customer@example.com", Role::Customer).await;

    // PUT /users/managers/{id} (the unreachable full form): a customer's name by support.
    let path = format!("/api/admin/users/managers/{customer}");
    ok(
        &d,
        Method::PUT,
        &path,
        &support,
        Some(json!({"name": "Renamed", "role": "customer", "is_admin": false, "is_active": true})),
    )
    .await;
    w.assert_count(
        &format!("SELECT count(*) AS n FROM users WHERE id = {customer} AND name = 'Renamed'"),
        1,
    )
    .await;
    // Permanent delete: manager only, and only once deactivated.
    refused(
        &d,
        Method::DELETE,
        &format!("{path}/permanent"),
        &support,
        None,
    )
    .await;
    let (status, v) = d
        .call(Method::DELETE, &format!("{path}/permanent"), &manager, None)
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "active account: {v}");
    let v = ok(&d, Method::DELETE, &path, &support, None).await;
    assert!(v["message"].is_string(), "{v}");
    let v = ok(
        &d,
        Method::DELETE,
        &format!("{path}/permanent"),
        &manager,
        None,
    )
    .await;
    assert!(v["message"].is_string(), "{v}");
    let v = d.get("/api/admin/users/managers", &manager).await;
    assert!(
        list(&v, "users").iter().all(|u| u["id"] != customer),
        "a deleted account leaves the list"
    );
    let v = d.get("/api/admin/dashboard", &manager).await;
    assert_eq!(v["data"]["total_users"], 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dashboard_knowledge_templates_and_kb_monitoring_pages() {
    let w = World::start(With::AUTH.and(With::MARKETPLACE)).await;
    let d = Dashboard::open(&w).await;
    let kb = common::kb_vendor().await;
    let [(_, manager), (_, tech), (_, support)] = w
        .staff([Role::Manager, Role::TechnicalTeam, Role::SupportStaff])
        .await;
    let (customer, _) = w.user("customer@example.com", Role::Customer).await;
    let automation = w.kb_automation(&kb).await;
    let ua = w
        .insert(&format!(
            "INSERT INTO user_automations (user_id, automation_id) VALUES ({customer}, \
             {automation}) RETURNING id"
        ))
        .await;
    kb.set_kb_status_for(ua, KbAnswer::status("warning"));

    // Knowledge: AX, `client_id` a number; the list filtered as the category box does.
    ok(
        &d,
        Method::POST,
        "/api/admin/knowledge",
        &tech,
        Some(json!({"client_id": customer, "category": "ارسال", "answer": "سه روز کاری"})),
    )
    .await;
    let filtered = format!("/api/admin/knowledge?client_id={customer}&category=%D8%A7%D8%B1");
    one_row_each(
        &d,
        &manager,
        ["/api/admin/knowledge", &filtered],
        "knowledge_entries",
        &[
            ("id", num),
            ("client_id", num),
            ("client_name", text),
            ("category", text),
            ("answer", text),
            ("created_at", text),
        ],
    )
    .await;
    refused(&d, Method::GET, "/api/admin/knowledge", &support, None).await;

    // KB templates: create (category ""), list, replace, delete.
    let v = ok(
        &d,
        Method::POST,
        "/api/admin/kb-templates",
        &tech,
        Some(
            json!({"automation_id": automation, "category": "", "question": "Q?", "answer": "A."}),
        ),
    )
    .await;
    let template = v["id"].as_i64().unwrap();
    let v = d.get("/api/admin/kb-templates", &tech).await;
    let templates = list(&v, "templates");
    assert_types(
        &templates[0],
        &[
            ("id", num),
            ("automation_id", num),
            ("automation_name", text),
            ("category", text_or_null),
            ("question", text),
            ("answer", text),
            ("created_at", text),
            ("updated_at", text),
        ],
        "template",
    );
    ok(
        &d,
        Method::PUT,
        &format!("/api/admin/kb-templates/{template}"),
        &tech,
        Some(json!({"automation_id": automation, "category": "faq", "question": "Q2?", "answer": "A2."})),
    )
    .await;
    ok(
        &d,
        Method::DELETE,
        &format!("/api/admin/kb-templates/{template}"),
        &tech,
        None,
    )
    .await;
    refused(&d, Method::GET, "/api/admin/kb-templates", &support, None).await;

    // KB monitoring: status (F), reset by row position, history (bare array), stats, chart.
    let v = d
        .get(
            &format!("/api/admin/kb-status?automation_id={automation}"),
            &tech,
        )
        .await;
    assert_types(
        &v,
        &[
            ("automation_id", num),
            ("automation_name", text),
            ("total_users", num),
        ],
        "kb-status",
    );
    let row = only_row(
        v["kb_statuses"].as_array().unwrap(),
        &[
            ("user_id", num),
            ("user_automation_id", num),
            ("name", text),
            ("kb_health", text),
            ("last_updated", text),
            ("backup_status", boolean),
            ("error_logs", str_array),
            ("supports_reset", boolean),
        ],
        "kb status row",
    );
    assert_eq!(row["kb_health"], "warning");
    let v = ok(&d, Method::POST, "/api/admin/kb-reset/1", &tech, None).await;
    assert_eq!(v["user_automation_id"], ua, "{v}");
    let v = d
        .get(
            &format!("/api/admin/kb-history?automation_id={automation}&page=1&limit=20"),
            &tech,
        )
        .await;
    let entry = only_row(
        v.as_array().expect("kb-history is a bare array"),
        &[
            ("id", num),
            ("user_id", num),
            ("user_name", text),
            ("user_automation_id", num),
            ("automation_id", num),
            ("automation_name", text),
            ("kb_health", text),
            ("backup_status", boolean),
            ("timestamp", text),
        ],
        "kb history row",
    );
    assert!(entry["error_logs"].is_array() || entry["error_logs"].is_null());
    let v = d
        .get(
            &format!("/api/admin/kb-history/stats?automation_id={automation}"),
            &tech,
        )
        .await;
    assert_types(
        &v,
        &[
            ("total_records", num),
            ("healthy_count", num),
            ("warning_count", num),
            ("problematic_count", num),
            ("backup_count", num),
        ],
        "kb stats",
    );
    assert_eq!(v["warning_count"], 1);
    let v = d
        .get(
            &format!("/api/admin/kb-history/chart-data?automation_id={automation}&days=7"),
            &tech,
        )
        .await;
    let points = v["chart_data"].as_array().unwrap();
    assert_eq!(points.len(), 7);
    assert_types(
        &points[6],
        &[
            ("date", text),
            ("healthy", num),
            ("warning", num),
            ("problematic", num),
            ("total", num),
        ],
        "chart point",
    );
    assert!(v["date_range"]["start_date"].is_string() && v["date_range"]["end_date"].is_string());
    refused(
        &d,
        Method::GET,
        &format!("/api/admin/kb-status?automation_id={automation}"),
        &support,
        None,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dashboard_backups_page() {
    if which("pg_dump").is_none() {
        eprintln!("SKIPPED dashboard_backups_page: pg_dump is not installed");
        return;
    }
    let dir = TempDir::new("dashboard-backups");
    let w = World::with_backups(With::NONE, &dir, &[]).await;
    let d = Dashboard::open(&w).await;
    let [(_, tech), (_, support)] = w.staff([Role::TechnicalTeam, Role::SupportStaff]).await;

    let v = d.get("/api/admin/backups?", &tech).await;
    assert_eq!(v, json!([]), "a bare array");
    let v = ok(&d, Method::POST, "/api/admin/backups/trigger", &tech, None).await;
    assert_eq!(v["status"], "success", "{v}");
    assert!(v["message"].is_string());
    let v = d
        .get(
            "/api/admin/backups?status_filter=success&from_date=2020-01-01&to_date=2100-01-01",
            &tech,
        )
        .await;
    let row = only_row(
        v.as_array().expect("backups is a bare array"),
        &[
            ("id", num),
            ("backup_date", text),
            ("file_name", text),
            ("file_size", num),
            ("status", text),
            ("storage_location", text),
            ("verified", boolean),
            ("created_at", text),
        ],
        "backup",
    );
    let id = row["id"].as_i64().unwrap();
    let v = d.get("/api/admin/backups/stats", &tech).await;
    assert_types(
        &v,
        &[
            ("total_backups", num),
            ("successful_backups", num),
            ("failed_backups", num),
            ("verified_backups", num),
            ("last_successful_backup", text),
            ("total_size_bytes", num),
        ],
        "backup stats",
    );
    ok(
        &d,
        Method::POST,
        &format!("/api/admin/backups/verify/{id}"),
        &tech,
        None,
    )
    .await;
    let v = ok(
        &d,
        Method::DELETE,
        "/api/admin/backups/cleanup?retention_days=7",
        &tech,
        None,
    )
    .await;
    assert!(v["message"].is_string(), "{v}");
    refused(&d, Method::GET, "/api/admin/backups", &support, None).await;
}

fn which(bin: &str) -> Option<std::path::PathBuf> {
    std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p)
            .map(|d| d.join(bin))
            .find(|p| p.exists())
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dashboard_automation_token_buttons_and_api_keys_page() {
    let openai = FakeOpenAi::with_keys(&["sk-test-valid-1234"])
        .await
        .unwrap();
    let w = World::start_with(
        With {
            auth: true,
            marketplace: true,
            ..With::NONE
        },
        &[("OPENAI_BASE_URL", openai.base_url.as_str())],
    )
    .await;
    let d = Dashboard::open(&w).await;
    let [(_, tech), (_, support)] = w.staff([Role::TechnicalTeam, Role::SupportStaff]).await;
    let (customer, _) = w.user("customer@example.com", Role::Customer).await;
    let (automation, _) = w.automation_for(customer, "Keys bot", 0).await;

    // The wizard: generate-token with the caller's password (fetch, X-Requested-With), then
    // create with it.
    let res = d
        .http
        .post(d.gw.url("/api/admin/automations/generate-token"))
        .header("Origin", ORIGIN)
        .bearer_auth(&tech)
        .header("X-Requested-With", "XMLHttpRequest")
        .json(&json!({"password": TEST_PASSWORD}))
        .call_expecting(StatusCode::OK)
        .await;
    let v: Value = res.json().await.unwrap();
    let token = v["token"].as_str().expect("token").to_owned();
    let (status, v) = d
        .call(
            Method::POST,
            "/api/admin/automations/generate-token",
            &tech,
            Some(json!({"password": "wrong password"})),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "a wrong password is 403: {v}"
    );
    let v = ok(
        &d,
        Method::POST,
        "/api/admin/automations",
        &tech,
        Some(json!({
            "name": "Wizard bot", "description": "w", "price_per_token": 1000,
            "pricing_type": "token_per_session", "status": true, "api_base_url": "",
            "api_provision_url": "", "api_usage_url": "", "api_kb_status_url": "",
            "api_kb_reset_url": "", "dashboard_url": "", "health_check_url": "",
            "service_token": token,
        })),
    )
    .await;
    let created = v["id"].as_i64().unwrap();
    let v = d
        .get(&format!("/api/admin/automations/{created}"), &tech)
        .await;
    assert_eq!(v["has_service_token"], true);
    assert!(str_at(&v, "service_token_masked").starts_with("****"));
    // "Disconnect".
    let v = ok(
        &d,
        Method::DELETE,
        &format!("/api/admin/automations/{created}/service-token"),
        &tech,
        None,
    )
    .await;
    assert!(v["message"].is_string(), "{v}");
    let v = d
        .get(&format!("/api/admin/automations/{created}"), &tech)
        .await;
    assert_eq!(v["has_service_token"], false);
    assert_eq!(v["service_token_masked"], Value::Null);

    // API keys: the dashboard's alias paths.
    let v = ok(
        &d,
        Method::POST,
        "/api/admin/",
        &tech,
        Some(
            json!({"automation_id": automation, "alias": "main", "api_key": "sk-test-valid-1234",
            "status": "active", "rpm_limit": 60, "daily_token_limit": 100000}),
        ),
    )
    .await;
    let key = v["id"].as_i64().unwrap();
    let v = d
        .post(
            "/api/admin/",
            &tech,
            json!({"automation_id": 0, "alias": "x", "api_key": "sk-x", "status": "active"}),
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    assert!(v["detail"].is_string());
    for path in [
        "/api/admin/list".to_owned(),
        format!("/api/admin/list?automation_id={automation}&status=active"),
    ] {
        let v = d.get(&path, &tech).await;
        let row = only_row(
            v.as_array().expect("/list is a bare array"),
            &[
                ("id", num),
                ("automation_id", num),
                ("alias", text),
                ("status", text),
                ("rpm_limit", num),
                ("daily_token_limit", num),
                ("used_requests_minute", num),
                ("used_tokens_today", num),
                ("failure_count", num),
                ("masked_key", text),
                ("created_at", text),
                ("updated_at", text),
            ],
            &format!("{path}: key"),
        );
        assert_eq!(row["masked_key"], "sk-****1234");
    }
    ok(
        &d,
        Method::PUT,
        &format!("/api/admin/keys/{key}"),
        &tech,
        Some(json!({"alias": "main2", "rpm_limit": null, "daily_token_limit": 5000, "status": "active", "api_key": ""})),
    )
    .await;
    let v = test_key(&d, key, &tech).await;
    assert_eq!(v["success"], true, "{v}");
    assert!(v["latency_ms"].is_i64() && v["model"].is_string(), "{v}");
    ok(
        &d,
        Method::PATCH,
        &format!("/api/admin/keys/{key}/status"),
        &tech,
        Some(json!({"status": "disabled"})),
    )
    .await;
    let v = test_key(&d, key, &tech).await;
    assert_eq!(v["success"], false, "a disabled key: {v}");
    assert!(v["error_message"].is_string());
    refused(&d, Method::GET, "/api/admin/list", &support, None).await;
    ok(
        &d,
        Method::DELETE,
        &format!("/api/admin/keys/{key}"),
        &tech,
        None,
    )
    .await;
    let v = d.get("/api/admin/list", &tech).await;
    assert_eq!(v, json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dashboard_tickets_discounts_fallbacks_and_notifications() {
    let w = World::start(With::ALL).await;
    let d = Dashboard::open(&w).await;
    let [(manager_id, manager), (_, support), (_, tech)] = w
        .staff([Role::Manager, Role::SupportStaff, Role::TechnicalTeam])
        .await;
    let (customer, customer_token) = w.user("customer@example.com", Role::Customer).await;
    let (automation, ua) = w.automation_for(customer, "Ticket bot", 10).await;

    // "Report a problem" on a payment row: JSON to support's /api/tickets; `user_id` ignored.
    let v = ok(
        &d,
        Method::POST,
        "/api/tickets",
        &customer_token,
        Some(
            json!({"subject": "پرداخت", "message": "مبلغ کسر شد", "importance": "medium",
            "user_id": manager_id}),
        ),
    )
    .await;
    let ticket = v["id"].as_i64().expect("ticket id");
    assert_eq!(
        w.count(&format!(
            "SELECT count(*) AS n FROM tickets WHERE id = {ticket} AND user_id = {customer}"
        ))
        .await,
        1,
        "the ticket is the caller's"
    );
    let v = d.get("/api/admin/tickets", &support).await;
    assert_eq!(list(&v, "tickets")[0]["id"], ticket);
    let path = format!("/api/tickets/{ticket}");
    ok(
        &d,
        Method::PUT,
        &path,
        &support,
        Some(json!({"status": "in_progress"})),
    )
    .await;
    ok(
        &d,
        Method::PUT,
        &path,
        &support,
        Some(json!({"message": "در حال بررسی"})),
    )
    .await;
    refused(&d, Method::GET, "/api/admin/tickets", &tech, None).await;
    let (status, _) = d.call(Method::DELETE, &path, &support, None).await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "ticket delete is a manager's"
    );
    ok(&d, Method::DELETE, &path, &manager, None).await;
    let v = d.get("/api/admin/tickets", &manager).await;
    assert_eq!(list(&v, "tickets").len(), 0);

    // Discounts: the list page's server render has no token → 401; the redemptions page too.
    let discount = w
        .insert("INSERT INTO discount_codes (code, percent_off) VALUES ('yalda', 10) RETURNING id")
        .await;
    let pid = w.paid(customer, automation, ua, 90000, 10).await;
    w.sql(&format!(
        "INSERT INTO discount_redemptions (discount_id, user_id, payment_id, status, \
         amount_before, amount_discount, amount_after) VALUES ({discount}, {customer}, {pid}, \
         'confirmed', 100000, 10000, 90000)"
    ))
    .await;
    for path in [
        "/api/admin/discounts".to_owned(),
        format!("/api/admin/discounts/{discount}/redemptions"),
    ] {
        let res = d.http.get(d.gw.url(&path)).call().await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "SSR {path}");
        let v: Value = res.json().await.unwrap();
        assert!(v["detail"].is_string());
    }
    let v = d
        .get(
            &format!("/api/admin/discounts/{discount}/redemptions"),
            &manager,
        )
        .await;
    only_row(
        v.as_array().expect("redemptions: a bare array"),
        &[
            ("id", num),
            ("user_id", num),
            ("automation_id", num),
            ("payment_id", num),
            ("code", text),
            ("amount_before", num),
            ("amount_discount", num),
            ("amount_after", num),
            ("created_at", text),
        ],
        "redemption",
    );
    refused(&d, Method::GET, "/api/admin/discounts", &support, None).await;
    // PUT in the edit page's vocabulary: "fixed" is refused, another code's `code` is 409.
    w.sql("INSERT INTO discount_codes (code, percent_off) VALUES ('other', 5)")
        .await;
    let edit = format!("/api/admin/discounts/{discount}");
    for (method, path, form, expected) in [
        (
            Method::PUT,
            edit.as_str(),
            json!({"code": "YALDA", "discount_type": "fixed", "discount_value": 5000,
                "is_active": true}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            Method::PUT,
            edit.as_str(),
            json!({"code": "OTHER", "discount_type": "percentage", "discount_value": 5,
                "is_active": true}),
            StatusCode::CONFLICT,
        ),
        (
            Method::POST,
            "/api/admin/discounts",
            json!({"code": "ZERO", "percent_off": 0, "active": true, "starts_at": null,
                "ends_at": null, "max_redemptions": null, "per_user_limit": null,
                "automation_ids": []}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
    ] {
        let (status, v) = d.call(method.clone(), path, &manager, Some(form)).await;
        assert_eq!(status, expected, "{method} {path}: {v}");
    }

    // Fallbacks: `{fallbacks}`, filtered by `client_id`.
    w.sql(&format!(
        "INSERT INTO fallback_logs (user_automation_id, user_id, automation_id, message, \
         error_type) VALUES ({ua}, {customer}, {automation}, 'no answer', 'no_answer')"
    ))
    .await;
    let filtered = format!("/api/admin/fallbacks?client_id={customer}");
    one_row_each(
        &d,
        &support,
        ["/api/admin/fallbacks", &filtered],
        "fallbacks",
        &[
            ("id", num),
            ("client_id", num),
            ("client_name", text),
            ("message", text),
            ("status", text),
            ("created_at", text),
        ],
    )
    .await;
    let v = d.get("/api/admin/users", &support).await;
    assert!(list(&v, "users").iter().any(|u| u["id"] == customer));

    // Notifications: direct to chosen users (X: Bearer only); `created` exact.
    let v = ok(
        &d,
        Method::POST,
        "/api/admin/notifications",
        &support,
        Some(
            json!({"user_ids": [customer, customer, 999_999], "type": "admin",
            "title": "سلام", "body": "", "data": {"k": 1}}),
        ),
    )
    .await;
    assert_eq!(v["created"], 1, "{v}");
    refused(
        &d,
        Method::POST,
        "/api/admin/notifications",
        &tech,
        Some(json!({"user_ids": [customer], "type": "admin", "title": "t", "body": "b"})),
    )
    .await;
    d.post(
        "/api/admin/notifications/broadcast",
        &support,
        json!({"type": "system", "title": "t", "body": "b", "role": "admin"}),
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
}
