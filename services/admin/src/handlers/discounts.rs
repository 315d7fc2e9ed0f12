//! Discount codes (managers): billing owns them; admin passes the calls through its internal
//! API and audits the changes.

use actix_web::{HttpResponse, http::StatusCode, web};
use reqwest::Method;
use serde::Deserialize;
use serde_json::{Value, json};
use zimmer_http::{ApiError, HttpResult};

use super::{Audit, audit_after};
use crate::{AppState, clients::Service, rbac::Staff};

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    pub search: Option<String>,
    pub active: Option<bool>,
    pub page: Option<i64>,
    pub page_size: Option<i64>,
}

/// `GET /api/admin/discounts?search=&active=&page=&page_size=`: codes with redemption counts.
pub async fn list(
    _staff: Staff,
    state: web::Data<AppState>,
    query: web::Query<ListQuery>,
) -> HttpResult {
    let mut q: Vec<(&str, String)> = Vec::new();
    if let Some(s) = query
        .search
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        q.push(("search", s.chars().take(100).collect()));
    }
    if let Some(a) = query.active {
        q.push(("active", a.to_string()));
    }
    if let Some(p) = query.page {
        q.push(("page", p.to_string()));
    }
    if let Some(p) = query.page_size {
        q.push(("page_size", p.to_string()));
    }
    let reply = state
        .upstreams
        .get(Service::Billing, "/internal/discounts", &q)
        .await?;
    Ok(HttpResponse::Ok().json(reply.body))
}

/// `GET /api/admin/discounts/{id}`
pub async fn get(_staff: Staff, state: web::Data<AppState>, path: web::Path<i64>) -> HttpResult {
    let reply = state
        .upstreams
        .get(
            Service::Billing,
            &format!("/internal/discounts/{}", path.into_inner()),
            &[],
        )
        .await?;
    Ok(HttpResponse::Ok().json(reply.body))
}

fn object(body: Value) -> Result<Value, ApiError> {
    if body.is_object() {
        Ok(body)
    } else {
        Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_error",
            "The request body must be a JSON object",
        ))
    }
}

/// The code's fields as the audit log keeps them.
fn audited(body: &Value) -> Value {
    let keep = [
        "code",
        "percent_off",
        "active",
        "starts_at",
        "ends_at",
        "max_redemptions",
        "per_user_limit",
        "automation_id",
    ];
    let mut out = serde_json::Map::new();
    if let Some(map) = body.as_object() {
        for k in keep {
            if let Some(v) = map.get(k) {
                out.insert(k.to_owned(), v.clone());
            }
        }
    }
    Value::Object(out)
}

/// `POST /api/admin/discounts` `{code, percent_off, active?, starts_at?, ends_at?,
/// max_redemptions?, per_user_limit?, automation_id?}` → 201; 409 on a taken code.
pub async fn create(
    staff: Staff,
    state: web::Data<AppState>,
    body: web::Json<Value>,
) -> HttpResult {
    let body = object(body.into_inner())?;
    let reply = state
        .upstreams
        .send(Service::Billing, Method::POST, "/internal/discounts", &body)
        .await?;
    audit_after(
        &state,
        &staff,
        Audit {
            action: "discount.create",
            target_type: "discount",
            target_id: reply
                .body
                .get("id")
                .and_then(Value::as_i64)
                .map(|i| i.to_string()),
            details: audited(&reply.body),
        },
        None,
    )
    .await;
    Ok(HttpResponse::Created().json(reply.body))
}

/// `PUT /api/admin/discounts/{id}`: partial; `null` clears a nullable field.
pub async fn update(
    staff: Staff,
    state: web::Data<AppState>,
    path: web::Path<i64>,
    body: web::Json<Value>,
) -> HttpResult {
    let id = path.into_inner();
    let body = object(body.into_inner())?;
    let reply = state
        .upstreams
        .send(
            Service::Billing,
            Method::PUT,
            &format!("/internal/discounts/{id}"),
            &body,
        )
        .await?;
    audit_after(
        &state,
        &staff,
        Audit {
            action: "discount.update",
            target_type: "discount",
            target_id: Some(id.to_string()),
            details: json!({ "changes": audited(&body) }),
        },
        None,
    )
    .await;
    Ok(HttpResponse::Ok().json(reply.body))
}

/// `DELETE /api/admin/discounts/{id}`: billing deletes an unused code and deactivates a used
/// one (its redemptions are payment history).
pub async fn delete(staff: Staff, state: web::Data<AppState>, path: web::Path<i64>) -> HttpResult {
    let id = path.into_inner();
    let reply = state
        .upstreams
        .call::<Value>(
            Service::Billing,
            Method::DELETE,
            &format!("/internal/discounts/{id}"),
            &[],
            None,
        )
        .await?;
    audit_after(
        &state,
        &staff,
        Audit {
            action: "discount.delete",
            target_type: "discount",
            target_id: Some(id.to_string()),
            details: reply.body.clone(),
        },
        None,
    )
    .await;
    if reply.status == 204 || reply.body.is_null() {
        return Ok(HttpResponse::NoContent().finish());
    }
    Ok(HttpResponse::Ok().json(reply.body))
}

#[derive(Debug, Deserialize)]
pub struct PageOnly {
    pub page: Option<i64>,
    pub page_size: Option<i64>,
}

/// `GET /api/admin/discounts/{id}/redemptions?page=&page_size=`
pub async fn redemptions(
    _staff: Staff,
    state: web::Data<AppState>,
    path: web::Path<i64>,
    query: web::Query<PageOnly>,
) -> HttpResult {
    let mut q: Vec<(&str, String)> = Vec::new();
    if let Some(p) = query.page {
        q.push(("page", p.to_string()));
    }
    if let Some(p) = query.page_size {
        q.push(("page_size", p.to_string()));
    }
    let reply = state
        .upstreams
        .get(
            Service::Billing,
            &format!("/internal/discounts/{}/redemptions", path.into_inner()),
            &q,
        )
        .await?;
    Ok(HttpResponse::Ok().json(reply.body))
}
