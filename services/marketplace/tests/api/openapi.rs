//! The OpenAPI document of marketplace is complete: every route the service answers is in it
//! (docs/api.md "OpenAPI documents"). The route table (`src/routes.rs`) both registers the
//! routes and builds the document (crates/http/src/routes.rs); this test checks the served
//! document against the table both ways, the table for duplicates and schema-name clashes,
//! and the service's source for routes registered around the table (a text scan for actix's
//! registration calls: actix cannot list an app's routes, and these few calls are the only
//! ways to add one).

use zimmer_marketplace::routes::ROUTES;
use zimmer_testkit::openapi::{assert_route_table_served, declaration_problems};

use crate::common::*;

/// Routes whose handler reads a query string (`web::Query`): the document must show their
/// query parameters. Every list route is here; add a route when its handler gains a query.
const QUERY_ROUTES: &[(&str, &str)] = &[
    ("GET", "/api/automations"),
    ("GET", "/api/automations/marketplace"),
    ("GET", "/api/automations/available"),
    ("GET", "/api/optimized/automations/marketplace"),
    ("GET", "/api/user/automations/{automation_id}/usage"),
    ("GET", "/api/user/usage"),
    ("GET", "/api/user/usage/distribution"),
    ("GET", "/api/automation-usage/knowledge"),
    ("GET", "/internal/knowledge"),
    ("GET", "/internal/kb-templates"),
    ("GET", "/internal/fallbacks"),
    ("GET", "/internal/kb/status"),
    ("GET", "/internal/kb/history"),
    ("GET", "/internal/kb/history/stats"),
    ("GET", "/internal/kb/history/chart-data"),
];

/// The POST, PUT and PATCH routes whose handler reads no body (every other one must show its
/// request body).
const BODYLESS: &[(&str, &str)] = &[
    // The path names the automation; demo tokens come with it.
    ("POST", "/api/user/automations/{automation_id}"),
    // Actions on the automation in the path.
    ("POST", "/internal/automations/{id}/service-token"),
    ("POST", "/internal/automations/{id}/health-check"),
    ("POST", "/internal/kb/reset/{user_automation_id}"),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_served_route_is_in_the_openapi_document() {
    let (_ctx, app) = market().await;
    let doc = "/api/marketplace/openapi.json";
    let served = assert_route_table_served(&app, doc, ROUTES, env!("CARGO_MANIFEST_DIR")).await;
    assert_eq!(
        declaration_problems(&served, QUERY_ROUTES, BODYLESS),
        Vec::<String>::new()
    );
}
