//! Automations: read from the catalogue table; created, edited, unlisted or deleted, given a
//! new service token and health-checked through the marketplace's internal API.

use actix_web::{HttpResponse, http::StatusCode, web};
use chrono::{DateTime, Utc};
use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use zimmer_http::{ApiError, HttpResult, Paged};

use super::{Audit, audit_after, invalidate_stats, one_of, page, search_text};
use crate::{
    AppState,
    clients::Service,
    queries::automations::{self as q, AutomationFilter, AutomationRow},
    rbac::Staff,
};

#[derive(Debug, Serialize)]
struct AutomationView {
    id: i64,
    name: String,
    description: String,
    pricing_type: String,
    price_per_token: i64,
    demo_tokens: i64,
    status: String,
    is_listed: bool,
    health_status: String,
    last_health_at: Option<DateTime<Utc>>,
    provision_url: Option<String>,
    health_check_url: Option<String>,
    has_service_token: bool,
    /// Customers who have added it (it can be deleted only at zero).
    users_count: i64,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

fn view((a, has_service_token, users_count): (AutomationRow, bool, i64)) -> AutomationView {
    AutomationView {
        id: a.id,
        name: a.name,
        description: a.description,
        pricing_type: a.pricing_type,
        price_per_token: a.price_per_token,
        demo_tokens: a.demo_tokens,
        status: a.status,
        is_listed: a.is_listed,
        health_status: a.health_status,
        last_health_at: a.last_health_at,
        provision_url: a.provision_url,
        health_check_url: a.health_check_url,
        has_service_token,
        users_count,
        created_at: a.created_at,
        updated_at: a.updated_at,
    }
}

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    pub search: Option<String>,
    pub status: Option<String>,
    pub is_listed: Option<bool>,
    pub health_status: Option<String>,
    pub page: Option<i64>,
    pub page_size: Option<i64>,
}

/// `GET /api/admin/automations?search=&status=&is_listed=&health_status=`: listed or not.
pub async fn list(
    _staff: Staff,
    state: web::Data<AppState>,
    query: web::Query<ListQuery>,
) -> HttpResult {
    let filter = AutomationFilter {
        search: search_text(query.search.as_deref())?,
        status: one_of("status", query.status.as_deref(), &["active", "inactive"])?,
        is_listed: query.is_listed,
        health_status: one_of(
            "health_status",
            query.health_status.as_deref(),
            &["healthy", "degraded", "down", "unknown"],
        )?,
    };
    let page = page(query.page, query.page_size);
    let mut conn = state.platform.pool.get().await?;
    let (rows, total) = q::list(&mut conn, &filter, page.offset(), page.limit()).await?;
    let items: Vec<AutomationView> = rows.into_iter().map(view).collect();
    Ok(HttpResponse::Ok().json(Paged::new(items, total, &page)))
}

/// `GET /api/admin/automations/{id}`
pub async fn get(_staff: Staff, state: web::Data<AppState>, path: web::Path<i64>) -> HttpResult {
    let mut conn = state.platform.pool.get().await?;
    let row = q::get(&mut conn, path.into_inner())
        .await?
        .ok_or_else(|| ApiError::not_found("Automation not found"))?;
    Ok(HttpResponse::Ok().json(view(row)))
}

/// The body as sent: the marketplace validates the fields (and distinguishes an absent URL
/// from `null`, which clears it), so admin passes the object through untouched.
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

/// Fields worth keeping in the audit log (the URLs and prices; never secrets, there are none).
fn audited_fields(body: &Value) -> Value {
    let keep = [
        "name",
        "pricing_type",
        "price_per_token",
        "demo_tokens",
        "status",
        "is_listed",
        "provision_url",
        "health_check_url",
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

/// `POST /api/admin/automations` → 201 (marketplace's automation)
pub async fn create(
    staff: Staff,
    state: web::Data<AppState>,
    body: web::Json<Value>,
) -> HttpResult {
    let body = object(body.into_inner())?;
    let reply = state
        .upstreams
        .send(
            Service::Marketplace,
            Method::POST,
            "/internal/automations",
            &body,
        )
        .await?;
    let id = reply.body.get("id").and_then(Value::as_i64);
    audit_after(
        &state,
        &staff,
        Audit {
            action: "automation.create",
            target_type: "automation",
            target_id: id.map(|i| i.to_string()),
            details: audited_fields(&body),
        },
        None,
    )
    .await;
    invalidate_stats(&state).await;
    Ok(HttpResponse::Created().json(reply.body))
}

/// `PUT /api/admin/automations/{id}`: partial; `is_listed: false` unlists.
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
            Service::Marketplace,
            Method::PUT,
            &format!("/internal/automations/{id}"),
            &body,
        )
        .await?;
    audit_after(
        &state,
        &staff,
        Audit {
            action: "automation.update",
            target_type: "automation",
            target_id: Some(id.to_string()),
            details: audited_fields(&body),
        },
        None,
    )
    .await;
    invalidate_stats(&state).await;
    Ok(HttpResponse::Ok().json(reply.body))
}

/// `DELETE /api/admin/automations/{id}`: deleted when no customer has it, otherwise unlisted
/// (customers keep what they bought); the answer says which.
pub async fn delete(staff: Staff, state: web::Data<AppState>, path: web::Path<i64>) -> HttpResult {
    let id = path.into_inner();
    let reply = state
        .upstreams
        .call::<Value>(
            Service::Marketplace,
            Method::DELETE,
            &format!("/internal/automations/{id}"),
            &[],
            None,
        )
        .await?;
    let deleted = reply.body.get("deleted").and_then(Value::as_bool) == Some(true);
    audit_after(
        &state,
        &staff,
        Audit {
            action: if deleted {
                "automation.delete"
            } else {
                "automation.unlist"
            },
            target_type: "automation",
            target_id: Some(id.to_string()),
            details: json!({ "deleted": deleted }),
        },
        None,
    )
    .await;
    invalidate_stats(&state).await;
    Ok(HttpResponse::Ok().json(reply.body))
}

/// `POST /api/admin/automations/{id}/service-token` → 201 `{automation_id, service_token}`:
/// shown this once (never stored by admin, never logged, not cacheable); the previous token
/// stops working.
pub async fn issue_token(
    staff: Staff,
    state: web::Data<AppState>,
    path: web::Path<i64>,
) -> HttpResult {
    let id = path.into_inner();
    let reply = state
        .upstreams
        .send(
            Service::Marketplace,
            Method::POST,
            &format!("/internal/automations/{id}/service-token"),
            &json!({}),
        )
        .await?;
    audit_after(
        &state,
        &staff,
        Audit {
            action: "automation.issue_service_token",
            target_type: "automation",
            target_id: Some(id.to_string()),
            details: json!({}),
        },
        None,
    )
    .await;
    Ok(HttpResponse::Created()
        .insert_header(("Cache-Control", "no-store"))
        .json(reply.body))
}

/// `POST /api/admin/automations/{id}/health-check`: checks now and records the result.
pub async fn health_check(
    staff: Staff,
    state: web::Data<AppState>,
    path: web::Path<i64>,
) -> HttpResult {
    let id = path.into_inner();
    let reply = state
        .upstreams
        .send(
            Service::Marketplace,
            Method::POST,
            &format!("/internal/automations/{id}/health-check"),
            &json!({}),
        )
        .await?;
    audit_after(
        &state,
        &staff,
        Audit {
            action: "automation.health_check",
            target_type: "automation",
            target_id: Some(id.to_string()),
            details: json!({
                "health_status": reply.body.get("health_status"),
                "previous": reply.body.get("previous"),
            }),
        },
        None,
    )
    .await;
    Ok(HttpResponse::Ok().json(reply.body))
}
