//! Checks that a service's OpenAPI document is complete (docs/api.md "OpenAPI documents").
//!
//! The route table of `routes.rs` (crates/http/src/routes.rs) is what registers routes AND
//! what the document is built from, so a route in the table is always documented. What could
//! still go wrong is a route registered some other way. Actix offers no way to list the routes
//! an `App` serves, so [`registrations_outside_table`] reads the service's source instead: any
//! call that registers a route or a scope with actix (`web::resource(`, `web::get(`,
//! `.route("…"`, `#[get(` …) outside the table is reported. It is a plain text scan, robust
//! enough because every route of a service goes through these few names; a new way to register
//! routes would have to be added to [`REGISTRATION_CALLS`].
//!
//! [`document_mismatches`] compares a served document with the table, both ways.
//!
//! [`declaration_problems`] checks what the table cannot prove by itself: that the routes a
//! service knows read a query string show their query parameters, and that every POST, PUT and
//! PATCH shows its request body unless the service lists it as body-less. Whether a handler
//! reads a query or a body is in its extractors, which the document builder cannot see; each
//! service's test names its query-taking routes (every list at least) and its body-less writes.

use std::path::Path;

use reqwest::StatusCode;
use serde_json::Value;

use zimmer_http::routes::{Route, RouteMeta, table_problems};

use crate::{Call, TestApp};

/// Actix calls that register a route, a resource or a scope (with `web::` or imported).
pub const REGISTRATION_CALLS: &[&str] = &[
    "web::resource(",
    "web::scope(",
    "web::route(",
    "web::get(",
    "web::post(",
    "web::put(",
    "web::patch(",
    "web::delete(",
    "web::head(",
    "web::method(",
    "web::to(",
    "Resource::new(",
    "Scope::new(",
    // `.route(path, …)` of `App`, `Scope`, `ServiceConfig` (a string path first; a method
    // named `route` elsewhere takes no string literal).
    ".route(\"",
    "#[get(",
    "#[post(",
    "#[put(",
    "#[patch(",
    "#[delete(",
    "#[route(",
    "#[routes",
    "App::new(",
    "HttpServer::new(",
];

/// `file:line: text` for every actix registration call in the `.rs` files under `src`, except
/// the `(file name, call)` pairs in `allowed` (e.g. admin's `web::scope(` in `routes.rs`) and
/// comments.
pub fn registrations_outside_table(src: &Path, allowed: &[(&str, &str)]) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![src.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            for (i, line) in lines.iter().enumerate() {
                let mut code = line.split("//").next().unwrap_or("").to_owned();
                // rustfmt puts a long call's arguments on the next line.
                if code.trim_end().ends_with('(') {
                    code = format!(
                        "{}{}",
                        code.trim_end(),
                        lines.get(i + 1).map_or("", |l| l.trim_start())
                    );
                }
                for call in REGISTRATION_CALLS {
                    if code.contains(call) && !allowed.contains(&(name.as_str(), *call)) {
                        found.push(format!("{}:{}: {}", path.display(), i + 1, line.trim()));
                    }
                }
            }
        }
    }
    found.sort();
    found
}

/// What differs between a served document and the table's `(METHOD, path)` pairs: routes of
/// the table missing from the document, and operations of the document not in the table.
pub fn document_mismatches(doc: &Value, table: &[(&str, &str)]) -> Vec<String> {
    let mut problems = Vec::new();
    for (method, path) in table {
        if doc["paths"][*path][method.to_ascii_lowercase()].is_null() {
            problems.push(format!("{method} {path} is served but not in the document"));
        }
    }
    if let Some(paths) = doc["paths"].as_object() {
        for (path, item) in paths {
            for method in item.as_object().into_iter().flat_map(|m| m.keys()) {
                let m = method.to_ascii_uppercase();
                if !table.iter().any(|(tm, tp)| *tm == m && tp == path) {
                    problems.push(format!("{m} {path} is documented but not in the table"));
                }
            }
        }
    }
    problems
}

/// What a served document leaves out: a route of `query_routes` without a parameter
/// `in: query`; a POST, PUT or PATCH without a `requestBody` that is not in `bodyless`; an
/// entry of `bodyless` that is not such a route or does have a body (so the list stays true).
pub fn declaration_problems(
    doc: &Value,
    query_routes: &[(&str, &str)],
    bodyless: &[(&str, &str)],
) -> Vec<String> {
    let mut problems = Vec::new();
    let op = |method: &str, path: &str| doc["paths"][path][method.to_ascii_lowercase()].clone();
    for (method, path) in query_routes {
        let o = op(method, path);
        if o.is_null() {
            problems.push(format!(
                "{method} {path} (a query route) is not in the document"
            ));
            continue;
        }
        let has_query = o["parameters"]
            .as_array()
            .is_some_and(|ps| ps.iter().any(|p| p["in"] == "query"));
        if !has_query {
            problems.push(format!("{method} {path} shows no query parameters"));
        }
    }
    if let Some(paths) = doc["paths"].as_object() {
        for (path, item) in paths {
            for (method, o) in item.as_object().into_iter().flatten() {
                let m = method.to_ascii_uppercase();
                if !matches!(m.as_str(), "POST" | "PUT" | "PATCH") {
                    continue;
                }
                let listed = bodyless.iter().any(|(bm, bp)| *bm == m && bp == path);
                match (o["requestBody"].is_null(), listed) {
                    (true, false) => problems.push(format!(
                        "{m} {path} shows no request body and is not listed as body-less"
                    )),
                    (false, true) => problems.push(format!(
                        "{m} {path} is listed as body-less but shows a request body"
                    )),
                    _ => {}
                }
            }
        }
    }
    for (method, path) in bodyless {
        if op(method, path).is_null() {
            problems.push(format!(
                "{method} {path} (listed as body-less) is not in the document"
            ));
        }
    }
    problems
}

/// The names of the query parameters of `method path` in a served document, in order.
pub fn query_parameter_names(doc: &Value, method: &str, path: &str) -> Vec<String> {
    doc["paths"][path][method.to_ascii_lowercase()]["parameters"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| p["in"] == "query")
        .filter_map(|p| p["name"].as_str().map(str::to_owned))
        .collect()
}

/// The `(method, path)` pairs of a service's route table, once the table is checked for what
/// the type system cannot see ([`table_problems`]: none).
pub fn table_pairs<M: RouteMeta>(table: &[Route<M>]) -> Vec<(&'static str, &'static str)> {
    assert_eq!(table_problems(table), Vec::<String>::new());
    table.iter().map(|r| (r.method.as_str(), r.path)).collect()
}

/// A service's whole OpenAPI test: its route `table` checked by [`table_pairs`], then
/// [`assert_served_document_complete`] for the document `app` serves at `doc_path`, with the
/// source under `manifest_dir/src` scanned (the service crate's `env!("CARGO_MANIFEST_DIR")`).
/// Answers the served document.
pub async fn assert_route_table_served<M: RouteMeta>(
    app: &TestApp,
    doc_path: &str,
    table: &[Route<M>],
    manifest_dir: &str,
) -> Value {
    let pairs = table_pairs(table);
    let src = Path::new(manifest_dir).join("src");
    assert_served_document_complete(app, doc_path, &pairs, &src).await
}

/// The checks of a service's OpenAPI test that are the same in every service: nothing under
/// `src` registers a route around the table, the document at `doc_path` is served as OpenAPI
/// 3.1 with exactly the `(method, path)` pairs of the table and every schema it refers to, and
/// a known path answers other methods with the JSON 405. Answers the document.
pub async fn assert_served_document_complete(
    app: &TestApp,
    doc_path: &str,
    table: &[(&str, &str)],
    src: &Path,
) -> Value {
    assert_eq!(
        registrations_outside_table(src, &[]),
        Vec::<String>::new(),
        "routes must be registered through the table of src/routes.rs"
    );

    let (status, doc) = app.get(doc_path).json_of().await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(doc["openapi"], "3.1.0");
    assert_eq!(document_mismatches(&doc, table), Vec::<String>::new());
    // Every schema a route refers to is in the document.
    let text = doc.to_string();
    for name in text.split("#/components/schemas/").skip(1) {
        let name = name.split('"').next().unwrap_or_default();
        assert!(!doc["components"]["schemas"][name].is_null(), "{name}");
    }

    // A known path answers other methods with the JSON 405.
    let (status, body) = app.delete(doc_path).json_of().await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(body["code"], "method_not_allowed");
    doc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_a_route_registered_around_the_table() {
        let dir = crate::TempDir::new("openapi-scan");
        let src = "fn a(cfg: &mut ServiceConfig) {\n    cfg.route(\n        \"/api/x\",\n        web::get().to(h),\n    );\n    self.route(pool, &payload); // not actix\n}\n";
        std::fs::write(dir.path.join("lib.rs"), src).unwrap();
        let found = registrations_outside_table(&dir.path, &[]);
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(found[0].contains("lib.rs:2"), "{found:?}");
        assert!(found[1].contains("lib.rs:4"), "{found:?}");
        assert!(
            registrations_outside_table(
                &dir.path,
                &[("lib.rs", ".route(\""), ("lib.rs", "web::get(")]
            )
            .is_empty()
        );
    }

    #[test]
    fn finds_missing_query_parameters_and_request_bodies() {
        let doc = serde_json::json!({"paths": {
            "/list": {"get": {"parameters": [{"name": "page", "in": "query"}]}},
            "/bare": {"get": {"parameters": [{"name": "id", "in": "path"}]}},
            "/w": {"post": {"requestBody": {}}, "put": {}, "patch": {}},
        }});
        assert_eq!(
            declaration_problems(&doc, &[("GET", "/list")], &[("PUT", "/w"), ("PATCH", "/w")]),
            Vec::<String>::new()
        );
        assert_eq!(query_parameter_names(&doc, "GET", "/list"), ["page"]);
        let mut problems = declaration_problems(
            &doc,
            &[("GET", "/bare"), ("GET", "/gone")],
            &[("POST", "/w"), ("DELETE", "/x")],
        );
        problems.sort();
        assert_eq!(
            problems,
            [
                "DELETE /x (listed as body-less) is not in the document",
                "GET /bare shows no query parameters",
                "GET /gone (a query route) is not in the document",
                "PATCH /w shows no request body and is not listed as body-less",
                "POST /w is listed as body-less but shows a request body",
                "PUT /w shows no request body and is not listed as body-less",
            ]
        );
    }

    #[test]
    fn compares_a_document_with_the_table_both_ways() {
        let doc = serde_json::json!({"paths": {"/a": {"get": {}}, "/b": {"post": {}}}});
        assert!(document_mismatches(&doc, &[("GET", "/a"), ("POST", "/b")]).is_empty());
        assert_eq!(
            document_mismatches(&doc, &[("GET", "/a"), ("PUT", "/c")]),
            [
                "PUT /c is served but not in the document",
                "POST /b is documented but not in the table"
            ]
        );
    }
}
