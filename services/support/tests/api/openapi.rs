//! The OpenAPI document of support is complete: every route the service answers is in it
//! (docs/api.md "OpenAPI documents"). The route table (`src/routes.rs`) both registers the
//! routes and builds the document (crates/http/src/routes.rs); this test checks the served
//! document against the table both ways, the table for duplicates and schema-name clashes,
//! and the service's source for routes registered around the table (a text scan for actix's
//! registration calls: actix cannot list an app's routes, and these few calls are the only
//! ways to add one).

use zimmer_support::routes::ROUTES;
use zimmer_testkit::openapi::{
    assert_route_table_served, declaration_problems, query_parameter_names,
};

use crate::common::*;

/// Routes whose handler reads a query string (`web::Query`): the document must show their
/// query parameters. Every list route is here; add a route when its handler gains a query.
const QUERY_ROUTES: &[(&str, &str)] = &[
    ("GET", "/api/tickets"),
    ("GET", "/api/tickets/{id}"),
    ("GET", "/api/notifications"),
    ("GET", "/api/notifications/stream"),
    ("GET", "/internal/tickets/{id}"),
];

/// The POST, PUT and PATCH routes whose handler reads no body (every other one must show its
/// request body).
const BODYLESS: &[(&str, &str)] = &[
    // Actions on the caller's notifications (all, or the one in the path).
    ("POST", "/api/notifications/mark-all-read"),
    ("POST", "/api/notifications/mark-read/{id}"),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_served_route_is_in_the_openapi_document() {
    let support = Support::start().await;
    let doc = "/api/support/openapi.json";
    let served =
        assert_route_table_served(&support.app, doc, ROUTES, env!("CARGO_MANIFEST_DIR")).await;
    assert_eq!(
        declaration_problems(&served, QUERY_ROUTES, BODYLESS),
        Vec::<String>::new()
    );
    // The lists read their filters and `ListPaging` as two extractors: both are shown.
    let paging = ["page", "page_size", "limit", "offset"];
    let tickets = ["status", "priority", "assigned_to", "user_id"];
    assert_eq!(
        query_parameter_names(&served, "GET", "/api/tickets"),
        [&tickets[..], &paging[..]].concat()
    );
    let notifications = ["type", "read", "unread_only"];
    assert_eq!(
        query_parameter_names(&served, "GET", "/api/notifications"),
        [&notifications[..], &paging[..]].concat()
    );
}
