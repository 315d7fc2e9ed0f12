//! Acceptance: every `/api/admin` route, for each of the four roles and an anonymous caller,
//! answers as docs/rbac.md says: anonymous 401, a role without the capability 403, a role with it
//! gets through the guard (and the route does its work: no 401/403, no 5xx, GETs 200).
//! The expected matrix below is written from docs/rbac.md, independently of the service's table;
//! the test also checks that the two list exactly the same routes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::collections::BTreeSet;

use common::{Call, With, World};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use zimmer_jwt::Role;

const M: &[Role] = &[Role::Manager];
const MT: &[Role] = &[Role::Manager, Role::TechnicalTeam];
const MS: &[Role] = &[Role::Manager, Role::SupportStaff];
const MTS: &[Role] = &[Role::Manager, Role::TechnicalTeam, Role::SupportStaff];

/// (method, route pattern, who may call it) from docs/rbac.md.
const MATRIX: &[(&str, &str, &[Role])] = &[
    // admin dashboard stats: all staff (revenue only for managers, checked in stats.rs)
    ("GET", "/api/admin/dashboard/stats", MTS),
    ("GET", "/api/admin/dashboard", MTS),
    ("GET", "/api/admin/usage/stats", MTS),
    // analytics: revenue — manager; usage, signups — all staff
    ("GET", "/api/admin/analytics/revenue", M),
    ("GET", "/api/admin/analytics/usage", MTS),
    ("GET", "/api/admin/analytics/signups", MTS),
    // list and view users; activate / deactivate customers: all staff
    ("GET", "/api/admin/users", MTS),
    ("GET", "/api/admin/users/{id}", MTS),
    ("PUT", "/api/admin/users/{id}", MTS),
    ("PATCH", "/api/admin/users/{id}", MTS),
    ("GET", "/api/admin/users/managers", MTS),
    ("PUT", "/api/admin/users/managers/{id}/role", MTS),
    ("PUT", "/api/admin/users/managers/{id}", MTS),
    ("DELETE", "/api/admin/users/managers/{id}", MTS),
    // create staff: manager
    ("POST", "/api/admin/users", M),
    ("POST", "/api/admin/users/managers", M),
    // permanently delete (anonymise) an account: manager
    ("DELETE", "/api/admin/users/managers/{id}/permanent", M),
    // user automations (view): all staff
    ("GET", "/api/admin/user-automations", MTS),
    // token adjustments: manager, technical team
    ("POST", "/api/admin/tokens/adjust", MT),
    ("GET", "/api/admin/tokens/history", MT),
    ("GET", "/api/admin/tokens/adjustments", MT),
    // automations: manager, technical team
    ("GET", "/api/admin/automations", MT),
    ("POST", "/api/admin/automations", MT),
    ("GET", "/api/admin/automations/{id}", MT),
    ("PUT", "/api/admin/automations/{id}", MT),
    ("DELETE", "/api/admin/automations/{id}", MT),
    ("POST", "/api/admin/automations/generate-token", MT),
    ("POST", "/api/admin/automations/{id}/service-token", MT),
    ("DELETE", "/api/admin/automations/{id}/service-token", MT),
    (
        "POST",
        "/api/admin/automations/{id}/generate-service-token",
        MT,
    ),
    ("POST", "/api/admin/automations/{id}/rotate-token", MT),
    ("POST", "/api/admin/automations/{id}/health-check", MT),
    // payments (all users): manager
    ("GET", "/api/admin/payments", M),
    ("GET", "/api/admin/payments/{id}", M),
    ("POST", "/api/admin/payments/{id}/reconcile", M),
    // discount codes: manager
    ("GET", "/api/admin/discounts", M),
    ("POST", "/api/admin/discounts", M),
    ("GET", "/api/admin/discounts/{id}", M),
    ("PUT", "/api/admin/discounts/{id}", M),
    ("DELETE", "/api/admin/discounts/{id}", M),
    ("GET", "/api/admin/discounts/{id}/redemptions", M),
    // all tickets: manager, support staff
    ("GET", "/api/admin/tickets", MS),
    ("GET", "/api/admin/tickets/{id}", MS),
    ("PUT", "/api/admin/tickets/{id}", MS),
    ("POST", "/api/admin/tickets/{id}/messages", MS),
    // OpenAI keys: manager, technical team
    ("GET", "/api/admin/openai-keys", MT),
    ("POST", "/api/admin/openai-keys", MT),
    ("GET", "/api/admin/openai-keys/{id}", MT),
    ("PUT", "/api/admin/openai-keys/{id}", MT),
    ("PATCH", "/api/admin/openai-keys/{id}", MT),
    ("DELETE", "/api/admin/openai-keys/{id}", MT),
    ("POST", "/api/admin/openai-keys/{id}/test", MT),
    // OpenAI keys, the dashboard's paths (aliases): manager, technical team
    ("GET", "/api/admin/list", MT),
    ("POST", "/api/admin/", MT),
    ("PUT", "/api/admin/keys/{id}", MT),
    ("PATCH", "/api/admin/keys/{id}/status", MT),
    ("DELETE", "/api/admin/keys/{id}", MT),
    ("POST", "/api/admin/keys/{id}/test", MT),
    // broadcast notifications: manager, support staff
    ("POST", "/api/admin/notifications/broadcast", MS),
    // notifications to chosen users: manager, support staff
    ("POST", "/api/admin/notifications", MS),
    // knowledge base: entries, templates: manager, technical team
    ("GET", "/api/admin/knowledge", MT),
    ("POST", "/api/admin/knowledge", MT),
    ("GET", "/api/admin/kb-templates", MT),
    ("POST", "/api/admin/kb-templates", MT),
    ("PUT", "/api/admin/kb-templates/{id}", MT),
    ("DELETE", "/api/admin/kb-templates/{id}", MT),
    // fallback log: view, resolve: all staff
    ("GET", "/api/admin/fallbacks", MTS),
    ("PUT", "/api/admin/fallbacks/{id}", MTS),
    // system status: manager, technical team
    ("GET", "/api/admin/system/status", MT),
    // backups (operations, like system status): manager, technical team
    ("GET", "/api/admin/backups", MT),
    ("GET", "/api/admin/backups/stats", MT),
    ("POST", "/api/admin/backups/trigger", MT),
    ("POST", "/api/admin/backups/verify/{id}", MT),
    ("DELETE", "/api/admin/backups/cleanup", MT),
    // knowledge base: KB status, reset, history: manager, technical team
    ("GET", "/api/admin/kb-status", MT),
    ("POST", "/api/admin/kb-reset/{id}", MT),
    ("POST", "/api/admin/user-automations/{id}/kb-reset", MT),
    ("GET", "/api/admin/kb-history", MT),
    ("GET", "/api/admin/kb-history/stats", MT),
    ("GET", "/api/admin/kb-history/chart-data", MT),
    // audit log: manager
    ("GET", "/api/admin/audit-log", M),
    // not in docs/rbac.md: the admin API's own OpenAPI document, for any staff member
    ("GET", "/api/admin/openapi.json", MTS),
];

#[test]
fn the_matrix_covers_exactly_the_served_routes_with_the_same_roles() {
    let served: BTreeSet<(String, String, Vec<&str>)> = zimmer_admin::routes::ROUTES
        .iter()
        .filter_map(|r| {
            // `None`: the internal API, outside the staff guard.
            let mut roles: Vec<&str> = r.meta?.roles().iter().map(|x| x.as_str()).collect();
            roles.sort_unstable();
            Some((r.method.as_str().to_owned(), r.path.to_owned(), roles))
        })
        .collect();
    let expected: BTreeSet<(String, String, Vec<&str>)> = MATRIX
        .iter()
        .map(|(m, p, roles)| {
            let mut roles: Vec<&str> = roles.iter().map(|x| x.as_str()).collect();
            roles.sort_unstable();
            ((*m).to_owned(), (*p).to_owned(), roles)
        })
        .collect();
    let missing: Vec<_> = expected.difference(&served).collect();
    let extra: Vec<_> = served.difference(&expected).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "docs/rbac.md matrix and served routes differ\nonly in the matrix: {missing:#?}\nonly served: {extra:#?}"
    );
}

/// The request each route gets: a concrete path and a body. Write routes target things that
/// do not exist or send an incomplete body, so that callers who get through are refused by
/// validation or the owner (4xx) and nothing changes between callers.
fn request(method: &str, pattern: &str, ids: &Ids) -> (String, Option<Value>) {
    // Reads get the test's own row; writes an id that does not exist.
    let rows = [
        ("/api/admin/automations/", ids.automation),
        ("/api/admin/payments/", ids.payment),
        ("/api/admin/discounts/", ids.discount),
        ("/api/admin/tickets/", ids.ticket),
        ("/api/admin/openai-keys/", ids.key),
    ];
    let id = if pattern.starts_with("/api/admin/users/") {
        // Deactivation would change the customer for the callers after it.
        if method == "DELETE" {
            999_999
        } else {
            ids.customer
        }
    } else {
        match rows.iter().find(|(prefix, _)| pattern.starts_with(prefix)) {
            Some((_, row)) if method == "GET" => *row,
            Some(_) => 999_999,
            None => 0,
        }
    };
    let path = pattern.replace("{id}", &id.to_string());
    // The KB status of the test's automation, whose vendor URL answers nothing: a 200 whose
    // row says so (docs/panels.md "KB monitoring").
    let path = if pattern == "/api/admin/kb-status" {
        format!("{path}?automation_id={}", ids.automation)
    } else {
        path
    };
    let body = match method {
        "GET" => None,
        "DELETE" => None,
        _ => Some(json!({})),
    };
    (path, body)
}

struct Ids {
    customer: i64,
    automation: i64,
    payment: i64,
    discount: i64,
    ticket: i64,
    key: i64,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_admin_route_answers_each_role_as_rbac_md_says() {
    // Backups on (a directory of this test's own, no schedule), so a trigger really runs.
    let backups = zimmer_testkit::TempDir::new("admin-rbac-backups");
    let w = World::with_backups(With::ALL, &backups, &[]).await;
    let (customer, customer_token) = w.user("customer@example.com", Role::Customer).await;
    let mut callers: Vec<(Option<Role>, Option<String>)> =
        vec![(None, None), (Some(Role::Customer), Some(customer_token))];
    for (i, role) in [Role::SupportStaff, Role::TechnicalTeam, Role::Manager]
        .into_iter()
        .enumerate()
    {
        let (_, token) = w.user(&format!("staff{i}@example.com"), role).await;
        callers.push((Some(role), Some(token)));
    }
    let (automation, ua) = w.automation_for(customer, "RBAC bot", 10).await;
    w.sql(&format!(
        "UPDATE automations SET api_kb_status_url = 'http://127.0.0.1:9/kb' WHERE id = {automation}"
    ))
    .await;
    let payment = w
        .insert(&format!(
            "INSERT INTO payments (user_id, automation_id, user_automation_id, amount, \
             tokens_purchased, status) VALUES ({customer}, {automation}, {ua}, 50000, 50, \
             'pending') RETURNING id"
        ))
        .await;
    let discount = w
        .insert("INSERT INTO discount_codes (code, percent_off) VALUES ('rbac10', 10) RETURNING id")
        .await;
    let ticket = w
        .insert(&format!(
            "INSERT INTO tickets (user_id, title, description) VALUES ({customer}, 'help', \
             'it broke') RETURNING id"
        ))
        .await;
    let key = w
        .insert(
            "INSERT INTO openai_keys (alias, key_ciphertext, key_tail) \
             VALUES ('rbac', '\\x00'::bytea, 'abcd') RETURNING id",
        )
        .await;
    let ids = Ids {
        customer,
        automation,
        payment,
        discount,
        ticket,
        key,
    };

    let mut failures = Vec::new();
    for (method, pattern, allowed) in MATRIX {
        let (path, body) = request(method, pattern, &ids);
        for (role, token) in &callers {
            let mut req = w.admin.client.request(
                Method::from_bytes(method.as_bytes()).unwrap(),
                w.admin.url(&path),
            );
            if let Some(t) = token {
                req = req.bearer_auth(t);
            }
            if let Some(b) = &body {
                req = req.json(b);
            }
            let res = req.call().await;
            let status = res.status();
            let text = res.text().await.unwrap_or_default();
            let ok = match role {
                None => status == StatusCode::UNAUTHORIZED,
                Some(r) if !allowed.contains(r) => status == StatusCode::FORBIDDEN,
                Some(_) => {
                    status != StatusCode::UNAUTHORIZED
                        && status != StatusCode::FORBIDDEN
                        && !status.is_server_error()
                        && (*method != "GET" || status == StatusCode::OK)
                }
            };
            // Every refusal is our JSON error shape.
            let json_error = !(status.is_client_error() || status.is_server_error())
                || serde_json::from_str::<Value>(&text)
                    .is_ok_and(|v| v["detail"].is_string() && v["code"].is_string());
            if !ok || !json_error {
                failures.push(format!(
                    "{method} {path} as {}: {status} {text}",
                    role.map_or("anonymous", Role::as_str)
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );

    // A bad token is a 401 too, not a 403.
    let res = w.get("/api/admin/dashboard/stats", "not-a-jwt").await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
}
