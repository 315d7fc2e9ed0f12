//! The OpenAPI document of admin is complete: every route the service answers is in it, with
//! the roles that may call it (docs/api.md "OpenAPI documents"). The route table
//! (`src/routes.rs`) registers the routes, feeds the staff guard and builds the document
//! (crates/http/src/routes.rs); this test checks the served document against the table both
//! ways, the table for duplicates and schema-name clashes, and the service's source for routes
//! registered around the table (a text scan for actix's registration calls: actix cannot list
//! an app's routes, and these few calls are the only ways to add one). The one allowed call is
//! the `/api/admin` scope the table is registered in, behind the guard.

use std::path::Path;

use reqwest::StatusCode;
use serde_json::Value;
use zimmer_jwt::Role;
use zimmer_testkit::openapi::{
    declaration_problems, document_mismatches, query_parameter_names, registrations_outside_table,
    table_pairs,
};

use crate::common::*;

/// Routes whose handler reads a query string (`web::Query`, `Listing`): the document must show
/// their query parameters. Every list route is here; add a route when its handler gains a query.
const QUERY_ROUTES: &[(&str, &str)] = &[
    ("GET", "/api/admin/analytics/revenue"),
    ("GET", "/api/admin/analytics/usage"),
    ("GET", "/api/admin/analytics/signups"),
    ("GET", "/api/admin/users"),
    ("GET", "/api/admin/users/managers"),
    ("GET", "/api/admin/user-automations"),
    ("GET", "/api/admin/tokens/history"),
    ("GET", "/api/admin/tokens/adjustments"),
    ("GET", "/api/admin/automations"),
    ("GET", "/api/admin/payments"),
    ("GET", "/api/admin/discounts"),
    ("GET", "/api/admin/discounts/{id}/redemptions"),
    ("GET", "/api/admin/tickets"),
    ("GET", "/api/admin/openai-keys"),
    ("GET", "/api/admin/list"),
    ("GET", "/api/admin/backups"),
    ("DELETE", "/api/admin/backups/cleanup"),
    ("GET", "/api/admin/knowledge"),
    ("GET", "/api/admin/kb-templates"),
    ("GET", "/api/admin/fallbacks"),
    ("GET", "/api/admin/kb-status"),
    ("GET", "/api/admin/kb-history"),
    ("GET", "/api/admin/kb-history/stats"),
    ("GET", "/api/admin/kb-history/chart-data"),
    ("GET", "/api/admin/audit-log"),
];

/// The POST, PUT and PATCH routes whose handler reads no body (every other one must show its
/// request body).
const BODYLESS: &[(&str, &str)] = &[
    // Actions on the automation, payment, key, backup or KB in the path.
    ("POST", "/api/admin/automations/{id}/service-token"),
    ("POST", "/api/admin/automations/{id}/generate-service-token"),
    ("POST", "/api/admin/automations/{id}/rotate-token"),
    ("POST", "/api/admin/automations/{id}/health-check"),
    ("POST", "/api/admin/payments/{id}/reconcile"),
    ("POST", "/api/admin/openai-keys/{id}/test"),
    ("POST", "/api/admin/keys/{id}/test"),
    ("POST", "/api/admin/backups/trigger"),
    ("POST", "/api/admin/backups/verify/{id}"),
    ("POST", "/api/admin/kb-reset/{id}"),
    ("POST", "/api/admin/user-automations/{id}/kb-reset"),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_served_route_is_in_the_openapi_document() {
    let table = zimmer_admin::routes::ROUTES;
    let pairs = table_pairs(table);

    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    assert_eq!(
        registrations_outside_table(&src, &[("routes.rs", "web::scope(")]),
        Vec::<String>::new(),
        "routes must be registered through the table of src/routes.rs"
    );

    let world = World::start(With::NONE).await;
    // Staff only, like the rest of /api/admin.
    world
        .admin
        .get("/api/admin/openapi.json")
        .expect_status(StatusCode::UNAUTHORIZED)
        .await;
    let (_, token) = world.user("support@example.com", Role::SupportStaff).await;
    let doc: Value = world.json("/api/admin/openapi.json", &token).await;
    assert_eq!(doc["openapi"], "3.1.0");
    assert_eq!(document_mismatches(&doc, &pairs), Vec::<String>::new());
    assert_eq!(
        declaration_problems(&doc, QUERY_ROUTES, BODYLESS),
        Vec::<String>::new()
    );
    // A `Listing` reads the list's filters and its paging as two structs: both are shown.
    assert_eq!(
        query_parameter_names(&doc, "GET", "/api/admin/users"),
        [
            "search",
            "role",
            "is_active",
            "page",
            "page_size",
            "limit",
            "offset"
        ]
    );
    for r in table {
        let op = &doc["paths"][r.path][r.method.as_str().to_ascii_lowercase()];
        assert_eq!(op["summary"], r.summary, "{} {}", r.method, r.path);
        match r.meta {
            Some(cap) => assert_eq!(
                op["x-roles"].as_array().map(Vec::len),
                Some(cap.roles().len()),
                "{} {}",
                r.method,
                r.path
            ),
            None => assert_eq!(op["tags"][0], "internal", "{} {}", r.method, r.path),
        }
    }

    // A known path answers other methods with the JSON 405 (after the guard let staff in).
    let payload = serde_json::json!({});
    world
        .send_expecting(
            reqwest::Method::DELETE,
            "/api/admin/openapi.json",
            &token,
            &payload,
            StatusCode::METHOD_NOT_ALLOWED,
        )
        .await;
}
