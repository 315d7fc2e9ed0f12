//! The OpenAPI document of billing is complete: every route the service answers is in it
//! (docs/api.md "OpenAPI documents"). The route table (`src/routes.rs`) both registers the
//! routes and builds the document (crates/http/src/routes.rs); this test checks the served
//! document against the table both ways, the table for duplicates and schema-name clashes,
//! and the service's source for routes registered around the table (a text scan for actix's
//! registration calls: actix cannot list an app's routes, and these few calls are the only
//! ways to add one).

use zimmer_billing::routes::ROUTES;
use zimmer_testkit::openapi::assert_route_table_served;

use crate::common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_served_route_is_in_the_openapi_document() {
    let Harness { app, .. } = harness(&[]).await;
    let doc = "/api/billing/openapi.json";
    assert_route_table_served(&app, doc, ROUTES, env!("CARGO_MANIFEST_DIR")).await;
}
