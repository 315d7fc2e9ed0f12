//! The user panel's calls (docs/panels.md "The user panel", table "Calls") are in the services'
//! OpenAPI documents, served through the real gateway at `/api/<service>/openapi.json`
//! (docs/api.md "OpenAPI documents"), with the fields the panel sends and reads.
//!
//! The calls are read from docs/panels.md itself, so a call added there must be documented;
//! the fields are listed here, from the same table.

use std::collections::BTreeSet;

use reqwest::StatusCode;
use serde_json::Value;
use zimmer_platform_tests::{Stack, StackOptions};
use zimmer_testkit::{Call, repo_root};

/// The services whose documents hold the panel's calls (admin's is for staff only).
const SERVICES: &[&str] = &["auth", "marketplace", "billing", "support"];

/// `(METHOD, path)` of every row of the user panel's "Calls" table, the path as written there
/// without its query string.
fn panel_calls() -> Vec<(String, String)> {
    let text = std::fs::read_to_string(repo_root().join("docs/panels.md")).unwrap();
    let section = text
        .split("## The user panel")
        .nth(1)
        .and_then(|s| s.split("\n## ").next())
        .unwrap();
    let table = section.split("### Calls").nth(1).unwrap();
    let mut calls = Vec::new();
    for line in table.lines() {
        let Some(cell) = line.strip_prefix("| ").and_then(|l| l.split(" |").next()) else {
            continue;
        };
        let mut words = cell.split_whitespace();
        let (Some(method), Some(path)) = (words.next(), words.next()) else {
            continue;
        };
        if !matches!(method, "GET" | "POST" | "PUT" | "PATCH" | "DELETE") {
            continue;
        }
        let path = path.split('?').next().unwrap().to_owned();
        calls.push((method.to_owned(), path));
    }
    assert!(calls.len() > 30, "the Calls table was not read: {calls:?}");
    calls
}

/// Does a document path (`/api/user/automations/{automation_id}`) match the panel's path
/// (`/api/user/automations/{automation_id}` or `{id}`)?
fn same_path(doc: &str, panel: &str) -> bool {
    let (d, p): (Vec<_>, Vec<_>) = (doc.split('/').collect(), panel.split('/').collect());
    d.len() == p.len()
        && d.iter()
            .zip(&p)
            .all(|(a, b)| a == b || (a.starts_with('{') && b.starts_with('{')))
}

/// The properties of a schema, following `$ref`s, array items and `allOf`.
fn properties(doc: &Value, schema: &Value) -> BTreeSet<String> {
    if let Some(r) = schema["$ref"].as_str() {
        let name = r.trim_start_matches("#/components/schemas/");
        return properties(doc, &doc["components"]["schemas"][name]);
    }
    let mut out: BTreeSet<String> = schema["properties"]
        .as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    if !schema["items"].is_null() {
        out.extend(properties(doc, &schema["items"]));
    }
    for part in ["allOf", "oneOf", "anyOf"] {
        for s in schema[part].as_array().into_iter().flatten() {
            out.extend(properties(doc, s));
        }
    }
    out
}

fn response_schema(op: &Value) -> Option<&Value> {
    let responses = op["responses"].as_object()?;
    responses
        .iter()
        .filter(|(code, _)| code.starts_with('2'))
        .find_map(|(_, r)| {
            r["content"]
                .as_object()
                .and_then(|c| c.values().next())
                .map(|c| &c["schema"])
        })
}

/// What the panel sends and reads (docs/panels.md "Calls"), for the calls with a JSON shape.
const SHAPES: &[(&str, &str, &[&str], &[&str])] = &[
    (
        "POST",
        "/api/auth/login",
        &["email", "password"],
        &["access_token", "user"],
    ),
    (
        "POST",
        "/api/auth/signup",
        &["email", "password", "name", "confirm_password"],
        &["access_token", "user"],
    ),
    ("POST", "/api/auth/refresh", &[], &["access_token"]),
    (
        "GET",
        "/api/me",
        &[],
        &[
            "id",
            "name",
            "email",
            "role",
            "is_admin",
            "phone_number",
            "email_verified_at",
            "created_at",
        ],
    ),
    (
        "POST",
        "/api/auth/2fa/verify",
        &["challenge_token", "otp_code"],
        &["access_token", "user"],
    ),
    ("POST", "/api/forgot-password", &["email"], &[]),
    (
        "POST",
        "/api/reset-password",
        &["token", "new_password"],
        &[],
    ),
    ("PUT", "/api/user/profile", &["name", "phone_number"], &[]),
    (
        "POST",
        "/api/user/password",
        &["current_password", "new_password", "confirm_password"],
        &[],
    ),
    (
        "GET",
        "/api/optimized/automations/marketplace",
        &[],
        &["automations"],
    ),
    (
        "GET",
        "/api/automations/{id}",
        &[],
        &[
            "id",
            "name",
            "description",
            "pricing_type",
            "price_per_token",
            "status",
            "is_listed",
            "health_status",
            "user_has_automation",
        ],
    ),
    (
        "GET",
        "/api/user/automations",
        &[],
        &[
            "id",
            "automation_id",
            "name",
            "description",
            "tokens_remaining",
            "demo_tokens",
            "is_demo_active",
            "demo_expired",
            "integration_status",
            "status",
            "created_at",
        ],
    ),
    (
        "GET",
        "/api/user/automations/{automation_id}",
        &[],
        &["user_automation"],
    ),
    (
        "GET",
        "/api/user/usage/distribution",
        &[],
        &["name", "value"],
    ),
    ("GET", "/api/user/payments", &[], &["items", "total"]),
    ("GET", "/api/user/payments/summary", &[], &["points"]),
    (
        "GET",
        "/api/user/payments/{id}",
        &[],
        &[
            "id",
            "amount",
            "tokens_purchased",
            "gateway",
            "status",
            "ref_id",
            "transaction_id",
            "created_at",
        ],
    ),
    (
        "POST",
        "/api/discounts/validate",
        &["code", "automation_id", "amount", "tokens"],
        &[
            "valid",
            "code",
            "percent_off",
            "amount_before",
            "amount_discount",
            "amount_after",
            "reason",
        ],
    ),
    (
        "POST",
        "/api/payments/zarinpal/init",
        &["automation_id", "tokens", "return_path", "discount_code"],
        &["redirect_url"],
    ),
    (
        "GET",
        "/api/payments/zarinpal/callback",
        &[],
        &["payment_id", "status", "ref_id", "message"],
    ),
    ("GET", "/api/tickets", &[], &["tickets", "total"]),
    (
        "POST",
        "/api/tickets",
        &["subject", "message", "importance"],
        &[
            "id",
            "subject",
            "status",
            "importance",
            "created_at",
            "updated_at",
            "message",
        ],
    ),
    ("PUT", "/api/tickets/{id}", &["message"], &[]),
    ("GET", "/api/notifications", &[], &["items"]),
    ("GET", "/api/notifications/unread-count", &[], &["count"]),
    ("POST", "/api/notifications/mark-read", &["ids"], &[]),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn panel_contract_calls_are_in_the_openapi_documents_through_the_gateway() {
    let stack = Stack::start(StackOptions::default()).await;
    let client = reqwest::Client::new();
    let mut docs = Vec::new();
    for service in SERVICES {
        let res = client
            .get(stack.gw.url(&format!("/api/{service}/openapi.json")))
            .call()
            .await;
        assert_eq!(res.status(), StatusCode::OK, "{service}");
        let doc: Value = res.json().await.unwrap();
        assert_eq!(doc["openapi"], "3.1.0", "{service}");
        assert!(
            doc["info"]["title"].as_str().unwrap().contains(service),
            "{service}: the gateway routed to the wrong service"
        );
        docs.push(doc);
    }
    let find = |method: &str, path: &str| -> Option<(&Value, &Value)> {
        docs.iter().find_map(|doc| {
            doc["paths"].as_object()?.iter().find_map(|(p, item)| {
                let op = &item[method.to_ascii_lowercase()];
                (same_path(p, path) && !op.is_null()).then_some((doc, op))
            })
        })
    };

    let mut missing = Vec::new();
    for (method, path) in panel_calls() {
        if find(&method, &path).is_none() {
            missing.push(format!("{method} {path}"));
        }
    }
    assert_eq!(
        missing,
        Vec::<String>::new(),
        "panel calls missing from the documents"
    );

    let mut wrong = Vec::new();
    for (method, path, sends, reads) in SHAPES {
        let (doc, op) = find(method, path).unwrap();
        let body = op["requestBody"]["content"]
            .as_object()
            .and_then(|c| c.values().next())
            .map(|c| properties(doc, &c["schema"]))
            .unwrap_or_default();
        for field in *sends {
            if !body.contains(*field) {
                wrong.push(format!("{method} {path}: request lacks {field}"));
            }
        }
        let answer = response_schema(op)
            .map(|s| properties(doc, s))
            .unwrap_or_default();
        for field in *reads {
            if !answer.contains(*field) {
                wrong.push(format!("{method} {path}: answer lacks {field}"));
            }
        }
    }
    assert_eq!(wrong, Vec::<String>::new());
}
