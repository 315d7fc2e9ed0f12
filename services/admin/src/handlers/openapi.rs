//! `GET /api/admin/openapi.json`: the OpenAPI 3.1 document of the admin API, generated from
//! the route table, so it cannot drift from what is served or from who may call it (each
//! operation names its roles in `x-roles`).

use std::sync::OnceLock;

use actix_web::HttpResponse;
use serde_json::{Map, Value, json};
use zimmer_http::HttpResult;

use crate::{rbac::Staff, routes::ROUTES};

fn build() -> Value {
    let mut paths = Map::new();
    for r in ROUTES {
        let tag = r
            .path
            .trim_start_matches("/api/admin/")
            .split('/')
            .next()
            .unwrap_or("admin");
        let roles: Vec<&str> = r.capability.roles().iter().map(|x| x.as_str()).collect();
        let mut params = Vec::new();
        if r.path.contains("{id}") {
            params.push(json!({
                "name": "id", "in": "path", "required": true,
                "schema": { "type": "integer", "format": "int64" }
            }));
        }
        let mut responses = json!({
            "200": { "description": "OK" },
            "401": { "$ref": "#/components/responses/Error" },
            "403": { "$ref": "#/components/responses/Error" },
        });
        if let Some(map) = responses.as_object_mut() {
            match r.method {
                "POST" | "PUT" | "PATCH" => {
                    map.insert("201".into(), json!({ "description": "Created" }));
                    map.insert(
                        "422".into(),
                        json!({ "$ref": "#/components/responses/Error" }),
                    );
                    map.insert(
                        "409".into(),
                        json!({ "$ref": "#/components/responses/Error" }),
                    );
                }
                "DELETE" => {
                    map.insert("204".into(), json!({ "description": "Deleted" }));
                }
                _ => {}
            }
            if r.path.contains("{id}") {
                map.insert(
                    "404".into(),
                    json!({ "$ref": "#/components/responses/Error" }),
                );
            }
            map.insert(
                "503".into(),
                json!({ "$ref": "#/components/responses/Error" }),
            );
        }
        let mut op = json!({
            "operationId": format!(
                "{}_{}",
                r.method.to_ascii_lowercase(),
                r.path.trim_start_matches("/api/admin/").replace(['/', '-', '{', '}', '.'], "_")
            ),
            "summary": r.summary,
            "tags": [tag],
            "security": [{ "bearer": [] }],
            "x-roles": roles,
            "parameters": params,
            "responses": responses,
        });
        if matches!(r.method, "POST" | "PUT" | "PATCH")
            && let Some(map) = op.as_object_mut()
        {
            map.insert(
                "requestBody".into(),
                json!({
                    "required": r.method != "POST" || !r.path.ends_with("}/health-check"),
                    "content": { "application/json": { "schema": { "type": "object" } } }
                }),
            );
        }
        let entry = paths
            .entry(r.path.to_owned())
            .or_insert_with(|| Value::Object(Map::new()));
        if let Some(map) = entry.as_object_mut() {
            map.insert(r.method.to_ascii_lowercase(), op);
        }
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Zimmer admin API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Everything under /api/admin for managers, the technical team and support staff (docs/rbac.md). Lists take `page` (from 1) and `page_size` (default 20, max 100) and answer `{items, total, page, page_size}`. Money is integer Rials. Errors are `{detail, code}` (422 adds `errors: [{field, message}]`)."
        },
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearer": { "type": "http", "scheme": "bearer", "bearerFormat": "JWT" }
            },
            "responses": {
                "Error": {
                    "description": "An error",
                    "content": { "application/json": { "schema": {
                        "type": "object",
                        "required": ["detail", "code"],
                        "properties": {
                            "detail": { "type": "string" },
                            "code": { "type": "string" },
                            "errors": { "type": "array", "items": {
                                "type": "object",
                                "properties": { "field": { "type": "string" }, "message": { "type": "string" } }
                            } }
                        }
                    } } }
                }
            }
        }
    })
}

/// `GET /api/admin/openapi.json`
pub async fn document(_staff: Staff) -> HttpResult {
    static DOC: OnceLock<Value> = OnceLock::new();
    Ok(HttpResponse::Ok().json(DOC.get_or_init(build)))
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_route_is_documented_with_its_roles() {
        let doc = super::build();
        for r in crate::routes::ROUTES {
            let op = &doc["paths"][r.path][r.method.to_ascii_lowercase()];
            assert_eq!(op["summary"], r.summary, "{} {}", r.method, r.path);
            assert_eq!(
                op["x-roles"].as_array().map(Vec::len),
                Some(r.capability.roles().len())
            );
        }
    }
}
