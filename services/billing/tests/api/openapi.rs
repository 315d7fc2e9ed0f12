//! The OpenAPI document of billing is complete: every route the service answers is in it
//! (docs/api.md "OpenAPI documents"). The route table (`src/routes.rs`) both registers the
//! routes and builds the document (crates/http/src/routes.rs); this test checks the served
//! document against the table both ways, the table for duplicates and schema-name clashes,
//! and the service's source for routes registered around the table (a text scan for actix's
//! registration calls: actix cannot list an app's routes, and these few calls are the only
//! ways to add one).

use zimmer_billing::routes::ROUTES;
use zimmer_testkit::openapi::{assert_route_table_served, declaration_problems};

use crate::common::*;

/// Routes whose handler reads a query string (`web::Query`): the document must show their
/// query parameters. Every list route is here; add a route when its handler gains a query.
const QUERY_ROUTES: &[(&str, &str)] = &[
    ("GET", "/api/payments/zarinpal/callback"),
    ("GET", "/api/user/payments"),
    ("GET", "/api/user/payments/summary"),
    ("GET", "/internal/discounts"),
    ("GET", "/internal/discounts/{id}/redemptions"),
    ("GET", "/internal/payments"),
];

/// The POST, PUT and PATCH routes whose handler reads no body (every other one must show its
/// request body).
const BODYLESS: &[(&str, &str)] = &[
    // Actions: ask Zarinpal about one payment / all pending ones now.
    ("POST", "/internal/payments/{id}/reconcile"),
    ("POST", "/internal/reconcile"),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_served_route_is_in_the_openapi_document() {
    let Harness { app, .. } = harness(&[]).await;
    let doc = "/api/billing/openapi.json";
    let served = assert_route_table_served(&app, doc, ROUTES, env!("CARGO_MANIFEST_DIR")).await;
    assert_eq!(
        declaration_problems(&served, QUERY_ROUTES, BODYLESS),
        Vec::<String>::new()
    );
}
