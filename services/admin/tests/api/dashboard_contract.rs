//! The existing admin dashboard's calls (README.md, "admin dashboard"), sent as the dashboard
//! sends them — through the real nginx gateway from its origin `http://127.0.0.1:3001`, with a
//! Bearer token, no CSRF header, no idempotency key, `Content-Type: application/json` even on
//! bodiless calls — answer with the fields and types its pages read. The services run
//! in-process (the same code as the binaries); the gateway is the repo's configuration.
//! Needs nginx.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use common::{Call, With, World};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use zimmer_jwt::Role;
use zimmer_testkit::{Gateway, Upstreams, client, str_at};

pub(crate) const ORIGIN: &str = "http://127.0.0.1:3001";

pub(crate) struct Dashboard {
    pub(crate) gw: Gateway,
    pub(crate) http: reqwest::Client,
}

impl Dashboard {
    /// The gateway in front of every service `w` runs, allowing the dashboard's origin.
    pub(crate) async fn open(w: &World) -> Self {
        let at = |a: &Option<zimmer_testkit::TestApp>| {
            a.as_ref()
                .map(|a| vec![a.address.trim_start_matches("http://").to_owned()])
                .unwrap_or_default()
        };
        let gw = Gateway::start(
            &Upstreams {
                admin: vec![w.admin.address.trim_start_matches("http://").to_owned()],
                auth: at(&w.auth),
                marketplace: at(&w.market),
                billing: at(&w.billing),
                support: at(&w.support),
            },
            &[ORIGIN],
        )
        .await;
        Self { gw, http: client() }
    }

    /// One call as the dashboard makes it; checks the CORS answer for its origin and
    /// returns the status and the JSON body (`Null` when there is none).
    pub(crate) async fn call(
        &self,
        method: Method,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let req = self
            .http
            .request(method.clone(), self.gw.url(path))
            .bearer_auth(token)
            .header("Origin", ORIGIN)
            .header("Content-Type", "application/json");
        let req = match &body {
            Some(b) => req.body(b.to_string()),
            None => req,
        };
        let res = req.call().await;
        let status = res.status();
        assert_eq!(
            res.headers()
                .get("access-control-allow-origin")
                .and_then(|v| v.to_str().ok()),
            Some(ORIGIN),
            "{method} {path}: no CORS answer for the dashboard's origin"
        );
        let text = res.text().await.unwrap();
        let v = serde_json::from_str(&text).unwrap_or(Value::Null);
        (status, v)
    }

    /// [`Dashboard::call`] that must answer `expected`; the body.
    pub(crate) async fn expect(
        &self,
        method: Method,
        path: &str,
        token: &str,
        body: Option<Value>,
        expected: StatusCode,
    ) -> Value {
        let (status, v) = self.call(method.clone(), path, token, body).await;
        assert_eq!(status, expected, "{method} {path}: {v}");
        v
    }

    /// A POST of `body` that must answer `expected`; the body.
    pub(crate) async fn post(
        &self,
        path: &str,
        token: &str,
        body: Value,
        expected: StatusCode,
    ) -> Value {
        self.expect(Method::POST, path, token, Some(body), expected)
            .await
    }

    pub(crate) async fn get(&self, path: &str, token: &str) -> Value {
        self.expect(Method::GET, path, token, None, StatusCode::OK)
            .await
    }
}

/// The list under `key`, with `total_count` beside it.
pub(crate) fn list<'a>(v: &'a Value, key: &str) -> &'a Vec<Value> {
    assert!(v["total_count"].is_i64(), "{key}: total_count in {v}");
    v[key]
        .as_array()
        .unwrap_or_else(|| panic!("`{key}` is not an array in {v}"))
}

/// A field of a row and the check of its JSON type.
pub(crate) type Field<'a> = (&'a str, fn(&Value) -> bool);

pub(crate) fn assert_types(row: &Value, fields: &[Field<'_>], what: &str) {
    for (field, ok) in fields {
        assert!(
            ok(&row[*field]),
            "{what}.{field} has the wrong type in {row}"
        );
    }
}

/// The one row of `rows`, with the fields the dashboard reads.
pub(crate) fn only_row<'a>(rows: &'a [Value], fields: &[Field<'_>], what: &str) -> &'a Value {
    assert_eq!(rows.len(), 1, "{what}: {rows:?}");
    assert_types(&rows[0], fields, what);
    &rows[0]
}

pub(crate) fn num(v: &Value) -> bool {
    v.is_i64()
}
pub(crate) fn text(v: &Value) -> bool {
    v.is_string()
}
pub(crate) fn boolean(v: &Value) -> bool {
    v.is_boolean()
}
pub(crate) fn text_or_null(v: &Value) -> bool {
    v.is_string() || v.is_null()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_dashboard_pages_get_what_they_read_through_the_gateway() {
    let w = World::start(With::ALL).await;
    let admin_addr = w.admin.address.trim_start_matches("http://").to_owned();
    let gw = Gateway::start(
        &Upstreams {
            admin: vec![admin_addr],
            ..Default::default()
        },
        &[ORIGIN],
    )
    .await;
    let d = Dashboard { gw, http: client() };

    let [(_, manager), (_, support), (_, tech)] = w
        .staff([Role::Manager, Role::SupportStaff, Role::TechnicalTeam])
        .await;
    let (customer, _) = w.user("customer@example.com", Role::Customer).await;
    let (automation, ua) = w.automation_for(customer, "Contract bot", 100).await;
    w.paid(customer, automation, ua, 50000, 50).await;
    let ticket = w
        .insert(&format!(
            "INSERT INTO tickets (user_id, title, description, priority) VALUES ({customer}, \
             'help', 'it broke', 'high') RETURNING id"
        ))
        .await;
    w.sql(&format!(
        "INSERT INTO ticket_messages (ticket_id, author_id, is_staff, body) VALUES \
         ({ticket}, {customer}, false, 'it broke')"
    ))
    .await;
    w.sql(&format!(
        "INSERT INTO ticket_messages (ticket_id, author_id, is_staff, body, created_at) VALUES \
         ({ticket}, {customer}, false, 'still broken', now() + interval '1 second')"
    ))
    .await;

    // The preflight of a dashboard write (no CSRF header, no idempotency key).
    let res = d
        .http
        .request(Method::OPTIONS, d.gw.url("/api/admin/automations/1"))
        .header("Origin", ORIGIN)
        .header("Access-Control-Request-Method", "PUT")
        .header(
            "Access-Control-Request-Headers",
            "authorization, content-type",
        )
        .call()
        .await;
    assert!(res.status().is_success());
    assert_eq!(res.headers()["access-control-allow-origin"], ORIGIN);

    // Dashboard cards and usage.
    let v = d.get("/api/admin/dashboard", &support).await;
    assert_eq!(v["status"], "success");
    assert_types(
        &v["data"],
        &[
            ("total_users", num),
            ("total_automations", num),
            ("total_tickets", num),
            ("system_status", text),
        ],
        "dashboard",
    );
    assert_eq!(v["data"]["total_users"], 4);
    assert_eq!(v["data"]["total_tickets"], 1, "the open ticket is active");
    let v = d.get("/api/admin/usage/stats", &tech).await;
    assert_types(
        &v,
        &[("total_tokens_used", num), ("tokens_used_today", num)],
        "usage",
    );

    // Payments: `{payments}`, in the dashboard's status words; managers only.
    let v = d.get("/api/admin/payments", &manager).await;
    let payment = only_row(
        list(&v, "payments"),
        &[
            ("id", num),
            ("user_id", num),
            ("user_name", text),
            ("user_email", text),
            ("automation_id", num),
            ("automation_name", text),
            ("amount", num),
            ("tokens_purchased", num),
            ("method", text),
            ("gateway", text),
            ("status", text),
            ("payment_status", text),
            ("date", text),
            ("created_at", text),
        ],
        "payment",
    );
    assert_eq!(payment["status"], "completed");
    assert_eq!(payment["payment_status"], "succeeded");
    let v = d
        .get("/api/admin/payments?status=completed", &manager)
        .await;
    assert_eq!(v["total"], 1);
    let (status, v) = d
        .call(Method::GET, "/api/admin/payments", &support, None)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(v["detail"].is_string());

    // Users: the managers list is every account, `{users}`.
    let v = d.get("/api/admin/users/managers", &support).await;
    let users = list(&v, "users");
    assert_eq!(users.len(), 4);
    for u in users {
        assert_types(
            u,
            &[
                ("id", num),
                ("name", text),
                ("email", text),
                ("phone_number", text_or_null),
                ("role", text),
                ("is_admin", boolean),
                ("is_active", boolean),
                ("created_at", text),
            ],
            "user",
        );
        assert_eq!(u["is_admin"], u["role"] != "customer");
    }
    // Create (manager), as the form sends it; a customer cannot be made here yet.
    let form = json!({
        "email": "new.agent@example.com", "name": "Sara", "password": "Long-enough-pass-2026",
        "role": "support_staff", "is_admin": true, "is_active": true,
    });
    d.post(
        "/api/admin/users/managers",
        &support,
        form.clone(),
        StatusCode::FORBIDDEN,
    )
    .await;
    let v = d
        .post(
            "/api/admin/users/managers",
            &manager,
            form,
            StatusCode::CREATED,
        )
        .await;
    let new_id = v["id"].as_i64().unwrap();
    let (status, v) = d
        .call(
            Method::POST,
            "/api/admin/users/managers",
            &manager,
            Some(
                json!({"email": "c2@example.com", "name": "C", "password": "Long-enough-pass-2026",
                "role": "customer", "is_admin": false, "is_active": true}),
            ),
        )
        .await;
    // Any role, customers included; the typed email counts as verified.
    assert_eq!(status, StatusCode::CREATED, "{v}");
    assert_eq!(v["role"], "customer");
    assert_eq!(v["email_verified"], true);
    // The edit form always sends `{role, is_active}` to /role: a support agent saving a
    // customer unchanged is fine, promoting one is a manager's call.
    let path = format!("/api/admin/users/managers/{customer}/role");
    d.expect(
        Method::PUT,
        &path,
        &support,
        Some(json!({"role": "customer", "is_active": true})),
        StatusCode::OK,
    )
    .await;
    let (status, _) = d
        .call(
            Method::PUT,
            &path,
            &support,
            Some(json!({"role": "manager", "is_active": true})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    d.expect(
        Method::PUT,
        &format!("/api/admin/users/managers/{new_id}/role"),
        &manager,
        Some(json!({"role": "manager", "is_active": true})),
        StatusCode::OK,
    )
    .await;
    w.assert_count(
        &format!("SELECT count(*) AS n FROM users WHERE id = {new_id} AND role = 'manager'"),
        1,
    )
    .await;
    // "Deactivate": DELETE with no body.
    let v = d
        .expect(
            Method::DELETE,
            &format!("/api/admin/users/managers/{new_id}"),
            &manager,
            None,
            StatusCode::OK,
        )
        .await;
    assert!(v["message"].is_string());
    w.assert_count(
        &format!("SELECT count(*) AS n FROM users WHERE id = {new_id} AND NOT is_active"),
        1,
    )
    .await;

    // The fallbacks page's customer filter and the debug page read `GET /users` as `{users}`.
    let v = d.get("/api/admin/users", &support).await;
    assert_eq!(list(&v, "users").len(), 6);
    assert_types(
        &v["users"][0],
        &[("id", num), ("name", text), ("email", text), ("role", text)],
        "user",
    );

    // User automations: `{user_automations}`.
    let v = d.get("/api/admin/user-automations", &support).await;
    only_row(
        list(&v, "user_automations"),
        &[
            ("id", num),
            ("user_id", num),
            ("user_name", text),
            ("automation_id", num),
            ("automation_name", text),
            ("status", text),
            ("tokens_remaining", num),
            ("created_at", text),
        ],
        "user automation",
    );

    // Token adjustments: `delta_tokens`, no idempotency key: each call is one adjustment.
    let adjust = json!({"user_automation_id": ua, "delta_tokens": 25, "reason": "goodwill"});
    for expected in [125, 150] {
        let v = d
            .post(
                "/api/admin/tokens/adjust",
                &tech,
                adjust.clone(),
                StatusCode::CREATED,
            )
            .await;
        assert_eq!(v["tokens_remaining"], expected);
        assert_eq!(v["delta_tokens"], 25);
    }
    let v = d
        .post(
            "/api/admin/tokens/adjust",
            &tech,
            json!({"user_automation_id": ua, "delta_tokens": -1000, "reason": "x"}),
            StatusCode::CONFLICT,
        )
        .await;
    assert!(v["detail"].is_string());
    // History page: `items` + `total`; user-automations page: `adjustments`.
    let v = d
        .get(
            &format!(
                "/api/admin/tokens/adjustments?page=1&page_size=20&automation_id={automation}"
            ),
            &tech,
        )
        .await;
    assert_eq!(v["total"], 2);
    let items = v["items"].as_array().unwrap();
    assert_types(
        &items[0],
        &[
            ("id", num),
            ("user_id", num),
            ("user_name", text),
            ("user_automation_id", num),
            ("automation_name", text),
            ("admin_id", num),
            ("admin_name", text),
            ("delta_tokens", num),
            ("amount", num),
            ("created_by_name", text),
            ("created_at", text),
        ],
        "adjustment",
    );
    let v = d.get("/api/admin/tokens/adjustments", &manager).await;
    assert_eq!(list(&v, "adjustments").len(), 2);
    assert_eq!(v["adjustments"], v["items"]);

    // Automations: `{automations}`, `status` a boolean, edits in the dashboard's words.
    let v = d.get("/api/admin/automations", &tech).await;
    let autos = list(&v, "automations");
    assert_types(
        &autos[0],
        &[
            ("id", num),
            ("name", text),
            ("description", text),
            ("price_per_token", num),
            ("pricing_type", text),
            ("status", boolean),
            ("is_listed", boolean),
            ("health_status", text),
            ("has_service_token", boolean),
            ("api_provision_url", text_or_null),
            ("demo_tokens", num),
            ("created_at", text),
        ],
        "automation",
    );
    let path = format!("/api/admin/automations/{automation}");
    d.expect(
        Method::PUT,
        &path,
        &tech,
        Some(json!({"status": false})),
        StatusCode::OK,
    )
    .await;
    let form = json!({
        "name": "Contract bot 2", "description": "d", "price_per_token": 2000,
        "pricing_type": "token_per_message", "status": true, "api_base_url": null,
        "api_provision_url": "https://vendor.example/provision", "api_usage_url": "",
        "api_kb_status_url": null, "api_kb_reset_url": null, "dashboard_url": null,
    });
    let v = d.get(&path, &tech).await;
    assert_eq!(v["status"], false);
    assert_eq!(v["is_listed"], true, "status never unlists");
    d.expect(
        Method::PUT,
        &path,
        &tech,
        Some(form.clone()),
        StatusCode::OK,
    )
    .await;
    let v = d.get(&path, &tech).await;
    assert_eq!(v["status"], true);
    assert_eq!(v["pricing_type"], "token_per_message");
    assert_eq!(v["api_provision_url"], "https://vendor.example/provision");
    w.assert_count(
        &format!(
            "SELECT count(*) AS n FROM automations WHERE id = {automation} \
             AND pricing_type = 'token_per_step' AND price_per_token = 2000"
        ),
        1,
    )
    .await;
    let (status, _) = d
        .call(
            Method::PUT,
            &path,
            &tech,
            Some(json!({"price_per_token": 10.5})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let mut create = form;
    create["name"] = json!("Wizard bot");
    let v = d
        .post("/api/admin/automations", &tech, create, StatusCode::CREATED)
        .await;
    let created = v["id"].as_i64().unwrap();
    // Tokens: "generate" and "rotate" (no body), one mechanism.
    let v = d
        .expect(
            Method::POST,
            &format!("/api/admin/automations/{created}/generate-service-token"),
            &tech,
            None,
            StatusCode::OK,
        )
        .await;
    let first = str_at(&v, "service_token").to_owned();
    let v = d
        .expect(
            Method::POST,
            &format!("/api/admin/automations/{created}/rotate-token"),
            &tech,
            None,
            StatusCode::OK,
        )
        .await;
    let second = str_at(&v, "new_token");
    assert_ne!(first, second);
    assert!(str_at(&v, "masked_token").starts_with("****"));
    let v = d
        .get(&format!("/api/admin/automations/{created}"), &tech)
        .await;
    assert_eq!(v["has_service_token"], true);
    d.expect(
        Method::DELETE,
        &format!("/api/admin/automations/{created}"),
        &tech,
        None,
        StatusCode::OK,
    )
    .await;

    // Tickets: `{tickets}` with `description` and `priority` (and the panel's names).
    let v = d.get("/api/admin/tickets", &support).await;
    let tickets = list(&v, "tickets");
    assert_types(
        &tickets[0],
        &[
            ("id", num),
            ("user_id", num),
            ("user_name", text),
            ("subject", text),
            ("description", text),
            ("message", text),
            ("status", text),
            ("priority", text),
            ("importance", text),
            ("created_at", text),
        ],
        "ticket",
    );
    assert_eq!(
        tickets[0]["description"],
        "it broke\n\n--- Reply from Test User ---\nstill broken"
    );
    assert_eq!(tickets[0]["priority"], "high");

    // Discounts: create with the form's set of automations, list as `{discounts}`, edit in
    // the edit page's vocabulary (zone-less times are UTC).
    let v = d
        .post(
            "/api/admin/discounts",
            &manager,
            json!({"code": "SPRING10", "percent_off": 10, "active": true, "starts_at": null,
                "ends_at": null, "max_redemptions": null, "per_user_limit": null,
                "automation_ids": [automation]}),
            StatusCode::CREATED,
        )
        .await;
    let discount = v["id"].as_i64().unwrap();
    let v = d.get("/api/admin/discounts", &manager).await;
    let codes = list(&v, "discounts");
    assert_types(
        &codes[0],
        &[
            ("id", num),
            ("code", text),
            ("percent_off", num),
            ("discount_value", num),
            ("active", boolean),
            ("is_active", boolean),
            ("discount_type", text),
        ],
        "discount",
    );
    assert_eq!(codes[0]["automation_ids"], json!([automation]));
    d.expect(
        Method::PUT,
        &format!("/api/admin/discounts/{discount}"),
        &manager,
        Some(
            json!({"code": "SPRING10", "description": "spring", "discount_type": "percentage",
                "discount_value": 15, "is_active": true, "valid_from": "2026-01-01T10:00",
                "valid_until": "2027-01-01T10:00"}),
        ),
        StatusCode::OK,
    )
    .await;
    w.assert_count(
        &format!(
            "SELECT count(*) AS n FROM discount_codes WHERE id = {discount} AND percent_off = 15 \
             AND starts_at = '2026-01-01T10:00:00Z'"
        ),
        1,
    )
    .await;

    // Broadcast: `created` is the number of accounts it reaches.
    let (status, v) = d
        .call(
            Method::POST,
            "/api/admin/notifications/broadcast",
            &support,
            Some(json!({"type": "system", "title": "سلام", "body": "پیام همگانی", "role": "customer"})),
        )
        .await;
    assert!(status.is_success(), "{v}");
    // The customer of the fixtures and the one the users form created above.
    assert_eq!(v["created"], 2);
}
