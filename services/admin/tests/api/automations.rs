//! The admin dashboard's automations page and creation wizard (docs/panels.md "Automations and
//! service tokens"), end to end with the real auth and marketplace: the shape the pages read,
//! edits in the dashboard's words, the wizard's password-checked token, and the four token
//! buttons on one mechanism, each proved by a vendor's consumption call.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use common::{Call, With, World, body};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use zimmer_jwt::Role;
use zimmer_testkit::{TEST_PASSWORD, str_at};

const WITH: With = With {
    auth: true,
    marketplace: true,
    billing: false,
    support: false,
};

/// Every field of the dashboard's automation object (docs/panels.md).
const FIELDS: [&str; 20] = [
    "id",
    "name",
    "description",
    "price_per_token",
    "pricing_type",
    "status",
    "is_listed",
    "health_status",
    "health_check_url",
    "api_base_url",
    "api_provision_url",
    "api_usage_url",
    "api_kb_status_url",
    "api_kb_reset_url",
    "dashboard_url",
    "has_service_token",
    "service_token_masked",
    "demo_tokens",
    "created_at",
    "updated_at",
];

async fn call(
    w: &World,
    method: Method,
    path: &str,
    token: &str,
    b: Option<Value>,
) -> (StatusCode, Value) {
    let mut rb = w
        .admin
        .client
        .request(method, w.admin.url(path))
        .bearer_auth(token)
        .header("Content-Type", "application/json");
    if let Some(b) = b {
        rb = rb.body(b.to_string());
    }
    body(rb.call().await).await
}

/// Creates an automation from the page's `form`; its id.
async fn create(w: &World, token: &str, form: Value) -> i64 {
    let (status, v) = call(w, Method::POST, "/api/admin/automations", token, Some(form)).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    v["id"].as_i64().unwrap()
}

/// The automation as the automations page reads it: from `{automations: [...]}`.
async fn listed(w: &World, token: &str, id: i64) -> Value {
    let (status, v) = call(w, Method::GET, "/api/admin/automations", token, None).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let all = v["automations"].as_array().expect("{automations}");
    let a = all
        .iter()
        .find(|a| a["id"] == id)
        .unwrap_or_else(|| panic!("automation {id} not in {v}"))
        .clone();
    for f in FIELDS {
        assert!(a.get(f).is_some(), "`{f}` missing from {a}");
    }
    a
}

/// A customer of automation `id` with paid tokens, and the status of one consumption with
/// `service_token` (what the vendor does).
async fn consumes(w: &World, id: i64, service_token: &str) -> StatusCode {
    let email = format!("c{}@example.com", uuid::Uuid::new_v4().simple());
    let (customer, _) = w.user(&email, Role::Customer).await;
    let ua = w
        .insert(&format!(
            "INSERT INTO user_automations (user_id, automation_id, tokens_remaining) \
             VALUES ({customer}, {id}, 10) RETURNING id"
        ))
        .await;
    let m = w.market.as_ref().unwrap();
    m.client
        .post(m.url("/api/automation-usage/consume"))
        .header("X-Zimmer-Service-Token", service_token)
        .json(&json!({ "user_automation_id": ua, "units": 1 }))
        .status()
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_page_reads_every_field_and_edits_in_its_own_words() {
    let w = World::start(WITH).await;
    let (_, tech) = w.user("tech@example.com", Role::TechnicalTeam).await;
    // The form: blank URLs as null, `status` a boolean, the dashboard's pricing word.
    let form = json!({
        "name": "Form bot", "description": "d", "price_per_token": 1500.0,
        "pricing_type": "token_per_message", "status": true,
        "api_base_url": "https://vendor.example/api", "api_provision_url": "https://vendor.example/p",
        "api_usage_url": null, "api_kb_status_url": "https://vendor.example/kb/status",
        "api_kb_reset_url": "https://vendor.example/kb/reset", "dashboard_url": "https://vendor.example/dash",
    });
    let id = create(&w, &tech, form).await;
    let a = listed(&w, &tech, id).await;
    assert_eq!(a["status"], true);
    assert_eq!(a["is_listed"], true);
    assert_eq!(a["pricing_type"], "token_per_message");
    assert_eq!(a["price_per_token"], 1500);
    assert_eq!(a["api_provision_url"], "https://vendor.example/p");
    assert_eq!(a["api_base_url"], "https://vendor.example/api");
    assert_eq!(a["api_usage_url"], Value::Null);
    assert_eq!(a["api_kb_status_url"], "https://vendor.example/kb/status");
    assert_eq!(a["api_kb_reset_url"], "https://vendor.example/kb/reset");
    assert_eq!(a["dashboard_url"], "https://vendor.example/dash");
    assert_eq!(a["has_service_token"], false);
    assert_eq!(a["service_token_masked"], Value::Null);
    w.assert_count(&format!(
            "SELECT count(*) AS n FROM automations WHERE id = {id} AND pricing_type = 'token_per_step'"
        ), 1).await;

    // The row's select: `{status}` alone; nothing else moves (never is_listed).
    let path = format!("/api/admin/automations/{id}");
    let (status, v) = call(
        &w,
        Method::PUT,
        &path,
        &tech,
        Some(json!({ "status": false })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["status"], false);
    let b = listed(&w, &tech, id).await;
    assert_eq!(b["status"], false);
    assert_eq!(b["is_listed"], true);
    for f in [
        "api_base_url",
        "api_kb_status_url",
        "dashboard_url",
        "api_provision_url",
        "health_status",
    ] {
        assert_eq!(b[f], a[f], "{f} kept");
    }
    // docs/api.md's strings still work; null and "" clear a URL; absent ones stay.
    let (status, v) = call(
        &w,
        Method::PUT,
        &path,
        &tech,
        Some(json!({ "status": "active", "api_base_url": "", "dashboard_url": null })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let c = listed(&w, &tech, id).await;
    assert_eq!(c["status"], true);
    assert_eq!(c["api_base_url"], Value::Null);
    assert_eq!(c["dashboard_url"], Value::Null);
    assert_eq!(c["api_kb_reset_url"], a["api_kb_reset_url"]);
    // A fraction of a Rial, a bad URL, a bad status: 422 with `detail`.
    for bad in [
        json!({ "price_per_token": 10.5 }),
        json!({ "api_kb_status_url": "not a url" }),
        json!({ "status": "maybe" }),
    ] {
        let (status, v) = call(&w, Method::PUT, &path, &tech, Some(bad.clone())).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}: {v}");
        assert!(v["detail"].is_string(), "{v}");
    }

    // Delete: unlisted while a customer has it, deleted otherwise; `{message}` says which.
    let (customer, _) = w.user("owner@example.com", Role::Customer).await;
    w.sql(&format!(
        "INSERT INTO user_automations (user_id, automation_id) VALUES ({customer}, {id})"
    ))
    .await;
    let (status, v) = call(&w, Method::DELETE, &path, &tech, None).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert!(v["message"].is_string() && v["unlisted"] == true, "{v}");
    assert_eq!(listed(&w, &tech, id).await["is_listed"], false);
    let gone = create(&w, &tech, json!({ "name": "Gone", "price_per_token": 1 })).await;
    let (status, v) = call(
        &w,
        Method::DELETE,
        &format!("/api/admin/automations/{gone}"),
        &tech,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert!(v["message"].is_string() && v["deleted"] == true, "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_wizard_gets_a_token_for_its_password_and_creates_the_automation_with_it() {
    let w = World::start(WITH).await;
    let (_, tech) = w.user("tech@example.com", Role::TechnicalTeam).await;
    let before = w.count("SELECT count(*) AS n FROM automations").await;
    let generate = |password: Value| {
        let w = &w;
        let tech = tech.clone();
        async move {
            call(
                w,
                Method::POST,
                "/api/admin/automations/generate-token",
                &tech,
                Some(json!({ "password": password })),
            )
            .await
        }
    };
    // Wrong password: 403 with `detail`, never 401 (the dashboard would log out).
    let (status, v) = generate(json!("not-my-password")).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{v}");
    assert!(v["detail"].is_string(), "{v}");
    let (status, v) = generate(json!("")).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    let (status, v) = generate(json!(TEST_PASSWORD)).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert!(v["message"].is_string() && v["warning"].is_string(), "{v}");
    let token = str_at(&v, "token").to_owned();
    assert!(token.len() >= 32, "{token}");
    // Nothing stored yet.
    w.assert_count("SELECT count(*) AS n FROM automations", before)
        .await;

    // The wizard's create: blank URLs as "", `status: true`, the token.
    let wizard = json!({
        "name": "Wizard bot", "description": "w", "pricing_type": "token_per_session",
        "price_per_token": 2000, "api_base_url": "", "api_provision_url": "",
        "api_usage_url": "", "api_kb_status_url": "", "api_kb_reset_url": "",
        "health_check_url": "", "status": true, "service_token": token,
    });
    let id = create(&w, &tech, wizard.clone()).await;
    let a = listed(&w, &tech, id).await;
    assert_eq!(a["has_service_token"], true);
    assert_eq!(
        a["service_token_masked"],
        format!("****{}", &token[token.len() - 4..])
    );
    assert_eq!(a["api_base_url"], Value::Null);
    assert_eq!(a["health_check_url"], Value::Null);
    assert!(!a.to_string().contains(&token));
    // The vendor can consume with it at once.
    assert_eq!(consumes(&w, id, &token).await, StatusCode::OK);
    // The same token cannot serve a second automation.
    let mut again = wizard;
    again["name"] = json!("Copy");
    let (status, v) = call(
        &w,
        Method::POST,
        "/api/admin/automations",
        &tech,
        Some(again),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{v}");

    // Throttled like login: after 5 wrong passwords even the right one waits (429).
    let (_, other) = w.user("other-tech@example.com", Role::TechnicalTeam).await;
    let mut statuses = Vec::new();
    for _ in 0..6 {
        let (status, _) = call(
            &w,
            Method::POST,
            "/api/admin/automations/generate-token",
            &other,
            Some(json!({ "password": "wrong-guess" })),
        )
        .await;
        statuses.push(status);
    }
    assert_eq!(&statuses[..4], &[StatusCode::FORBIDDEN; 4], "{statuses:?}");
    assert_eq!(statuses[5], StatusCode::TOO_MANY_REQUESTS, "{statuses:?}");
    let (status, _) = call(
        &w,
        Method::POST,
        "/api/admin/automations/generate-token",
        &other,
        Some(json!({ "password": TEST_PASSWORD })),
    )
    .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn generate_rotate_and_disconnect_share_one_mechanism() {
    let w = World::start(WITH).await;
    let [(_, tech), (_, support)] = w.staff([Role::TechnicalTeam, Role::SupportStaff]).await;
    let id = create(
        &w,
        &tech,
        json!({ "name": "Buttons", "price_per_token": 100 }),
    )
    .await;

    // "generate token" / "connect" (no body).
    let gen_path = format!("/api/admin/automations/{id}/generate-service-token");
    let (status, v) = call(&w, Method::POST, &gen_path, &tech, None).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["automation_id"], id);
    assert!(v["message"].is_string());
    let first = str_at(&v, "service_token").to_owned();
    assert_eq!(consumes(&w, id, &first).await, StatusCode::OK);
    assert_eq!(
        listed(&w, &tech, id).await["service_token_masked"],
        format!("****{}", &first[first.len() - 4..])
    );

    // "rotate": the old one stops, the new one works at once.
    let (status, v) = call(
        &w,
        Method::POST,
        &format!("/api/admin/automations/{id}/rotate-token"),
        &tech,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let second = str_at(&v, "new_token").to_owned();
    assert!(
        v["rotated_at"].is_string() && v["message"].is_string(),
        "{v}"
    );
    assert_eq!(
        v["masked_token"],
        format!("****{}", &second[second.len() - 4..])
    );
    assert_eq!(
        listed(&w, &tech, id).await["service_token_masked"],
        v["masked_token"]
    );
    assert_eq!(consumes(&w, id, &first).await, StatusCode::UNAUTHORIZED);
    assert_eq!(consumes(&w, id, &second).await, StatusCode::OK);

    // "disconnect": no token, consumption 401, still listed.
    let token_path = format!("/api/admin/automations/{id}/service-token");
    let (status, v) = call(&w, Method::DELETE, &token_path, &support, None).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "support staff: {v}");
    let (status, v) = call(&w, Method::DELETE, &token_path, &tech, None).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["automation_id"], id);
    assert!(v["message"].is_string(), "{v}");
    let a = listed(&w, &tech, id).await;
    assert_eq!(a["has_service_token"], false);
    assert_eq!(a["service_token_masked"], Value::Null);
    assert_eq!(a["is_listed"], true);
    assert_eq!(consumes(&w, id, &second).await, StatusCode::UNAUTHORIZED);
    // docs/api.md's /service-token issues on the same mechanism again.
    let (status, v) = call(&w, Method::POST, &token_path, &tech, None).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    let third = str_at(&v, "service_token").to_owned();
    assert_eq!(consumes(&w, id, &third).await, StatusCode::OK);

    // Support staff get 403 with `detail` on every automations call of the dashboard.
    for (method, path) in [
        (Method::GET, "/api/admin/automations".to_owned()),
        (Method::POST, "/api/admin/automations".to_owned()),
        (Method::PUT, format!("/api/admin/automations/{id}")),
        (Method::DELETE, format!("/api/admin/automations/{id}")),
        (Method::POST, gen_path.clone()),
        (
            Method::POST,
            format!("/api/admin/automations/{id}/rotate-token"),
        ),
        (
            Method::POST,
            "/api/admin/automations/generate-token".to_owned(),
        ),
    ] {
        let (status, v) = call(
            &w,
            method.clone(),
            &path,
            &support,
            Some(json!({ "password": TEST_PASSWORD })),
        )
        .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{method} {path}: {v}");
        assert!(v["detail"].is_string(), "{v}");
    }
    // Every change is in the audit log, never with a token.
    let log = w
        .count(&format!(
            "SELECT count(*) AS n FROM admin_audit_log WHERE target_id = '{id}' AND action IN \
             ('automation.issue_service_token', 'automation.rotate_service_token', \
             'automation.remove_service_token')"
        ))
        .await;
    assert_eq!(log, 4);
    for t in [&first, &second, &third] {
        w.assert_count(
            &format!("SELECT count(*) AS n FROM admin_audit_log WHERE details::text LIKE '%{t}%'"),
            0,
        )
        .await;
    }
}
