//! The OpenAPI document of auth is complete: every route the service answers is in it
//! (docs/api.md "OpenAPI documents"). The route table (`src/routes.rs`) both registers the
//! routes and builds the document (crates/http/src/routes.rs); this test checks the served
//! document against the table both ways, the table for duplicates and schema-name clashes,
//! and the service's source for routes registered around the table (a text scan for actix's
//! registration calls: actix cannot list an app's routes, and these few calls are the only
//! ways to add one).

use zimmer_auth::routes::ROUTES;
use zimmer_testkit::openapi::{assert_route_table_served, declaration_problems};

use crate::common::*;

/// Routes whose handler reads a query string (`web::Query`): none in auth (its lists take no
/// filters or paging); add a route here when its handler gains a query.
const QUERY_ROUTES: &[(&str, &str)] = &[];

/// The POST, PUT and PATCH routes whose handler reads no body (every other one must show its
/// request body).
const BODYLESS: &[(&str, &str)] = &[
    // Revokes the Bearer's session, else the refresh cookie's.
    ("POST", "/api/auth/logout"),
    ("POST", "/api/auth/logout-all"),
    // The path names the user; the acting staff member is in a header.
    ("POST", "/internal/users/{id}/deactivate"),
    ("POST", "/internal/users/{id}/activate"),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_served_route_is_in_the_openapi_document() {
    let (_ctx, app) = auth().await;
    let doc = "/api/auth/openapi.json";
    let served = assert_route_table_served(&app, doc, ROUTES, env!("CARGO_MANIFEST_DIR")).await;
    assert_eq!(
        declaration_problems(&served, QUERY_ROUTES, BODYLESS),
        Vec::<String>::new()
    );
}
