//! Automations: read from the catalogue table; created, edited, unlisted or deleted, given a
//! new service token and health-checked through the marketplace's internal API.

use actix_web::{HttpResponse, http::StatusCode, web};
use chrono::{DateTime, Utc};
use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use zimmer_http::{ApiError, HttpResult};

use super::{Audit, OwnerCall, WHOLE_LIST, call_owner, listed, one_of, picked, search_text};
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
    /// `token_per_session`, `token_per_message` (our `token_per_step`, in the admin
    /// dashboard's word) or `flat_fee`.
    pricing_type: String,
    price_per_token: i64,
    demo_tokens: i64,
    /// A boolean on the admin paths (true = active), as the admin dashboard reads it.
    status: bool,
    is_listed: bool,
    health_status: String,
    last_health_at: Option<DateTime<Utc>>,
    provision_url: Option<String>,
    /// = `provision_url` (the dashboard's name).
    api_provision_url: Option<String>,
    health_check_url: Option<String>,
    /// Vendor URLs the dashboard shows; not stored yet (always null).
    api_base_url: Option<String>,
    api_usage_url: Option<String>,
    api_kb_status_url: Option<String>,
    api_kb_reset_url: Option<String>,
    dashboard_url: Option<String>,
    has_service_token: bool,
    /// `****` when a token is set (its tail is not stored), else null.
    service_token_masked: Option<&'static str>,
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
        pricing_type: if a.pricing_type == "token_per_step" {
            "token_per_message".to_owned()
        } else {
            a.pricing_type
        },
        price_per_token: a.price_per_token,
        demo_tokens: a.demo_tokens,
        status: a.status == "active",
        is_listed: a.is_listed,
        health_status: a.health_status,
        last_health_at: a.last_health_at,
        api_provision_url: a.provision_url.clone(),
        provision_url: a.provision_url,
        health_check_url: a.health_check_url,
        api_base_url: None,
        api_usage_url: None,
        api_kb_status_url: None,
        api_kb_reset_url: None,
        dashboard_url: None,
        has_service_token,
        service_token_masked: has_service_token.then_some("****"),
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
    pub limit: Option<i64>,
    pub offset: Option<i64>,
}

/// `GET /api/admin/automations?search=&status=&is_listed=&health_status=`: listed or not.
pub async fn list(
    _staff: Staff,
    state: web::Data<AppState>,
    query: web::Query<ListQuery>,
) -> HttpResult {
    let filter = AutomationFilter {
        search: search_text(query.search.as_deref())?,
        status: match query.status.as_deref().map(str::trim) {
            Some("true") => Some("active".to_owned()),
            Some("false") => Some("inactive".to_owned()),
            other => one_of("status", other, &["active", "inactive"])?,
        },
        is_listed: query.is_listed,
        health_status: one_of(
            "health_status",
            query.health_status.as_deref(),
            &["healthy", "degraded", "down", "unknown"],
        )?,
    };
    let page = paged!(query, WHOLE_LIST);
    let mut conn = state.platform.pool.get().await?;
    let (rows, total) = q::list(&mut conn, &filter, page.offset, page.limit).await?;
    let items: Vec<AutomationView> = rows.into_iter().map(view).collect();
    listed("automations", items, total, &page)
}

/// `GET /api/admin/automations/{id}`
pub async fn get(_staff: Staff, state: web::Data<AppState>, path: web::Path<i64>) -> HttpResult {
    let mut conn = state.platform.pool.get().await?;
    let row = q::get(&mut conn, path.into_inner())
        .await?
        .ok_or_else(|| ApiError::not_found("Automation not found"))?;
    Ok(HttpResponse::Ok().json(view(row)))
}

/// The body for the marketplace, which validates the fields (and distinguishes an absent URL
/// from `null`, which clears it). The admin dashboard's vocabulary is translated first
/// (README.md, "admin dashboard"): `status` as a boolean, `token_per_message` (our
/// `token_per_step`), `api_provision_url` (our `provision_url`), a whole-number price sent as
/// `1500.0`. Fields the marketplace does not know are ignored by it.
fn object(body: Value) -> Result<Value, ApiError> {
    let Value::Object(mut map) = body else {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_error",
            "The request body must be a JSON object",
        ));
    };
    if let Some(Value::Bool(active)) = map.get("status") {
        let word = if *active { "active" } else { "inactive" };
        map.insert("status".into(), json!(word));
    }
    if map.get("pricing_type").and_then(Value::as_str) == Some("token_per_message") {
        map.insert("pricing_type".into(), json!("token_per_step"));
    }
    if !map.contains_key("provision_url")
        && let Some(url) = map.remove("api_provision_url")
    {
        map.insert("provision_url".into(), url);
    }
    if let Some(Value::Number(n)) = map.get("price_per_token")
        && n.as_i64().is_none()
    {
        match n.as_f64() {
            Some(f) if f.fract() == 0.0 && (0.0..=1e12).contains(&f) => {
                map.insert("price_per_token".into(), json!(f as i64));
            }
            _ => {
                return Err(ApiError::invalid(
                    "price_per_token",
                    "must be a whole number of Rials",
                ));
            }
        }
    }
    // A token chosen by the client (the automation wizard) cannot be stored yet: refusing
    // is better than creating the automation without the token the vendor was given.
    if map
        .get("service_token")
        .and_then(Value::as_str)
        .is_some_and(|t| !t.trim().is_empty())
    {
        return Err(ApiError::invalid(
            "service_token",
            "cannot be chosen yet: create the automation, then generate its service token",
        ));
    }
    map.remove("service_token");
    Ok(Value::Object(map))
}

/// Fields worth keeping in the audit log (the URLs and prices; never secrets, there are none).
fn audited_fields(body: &Value) -> Value {
    Value::Object(picked(
        body,
        &[
            "name",
            "pricing_type",
            "price_per_token",
            "demo_tokens",
            "status",
            "is_listed",
            "provision_url",
            "health_check_url",
        ],
    ))
}

/// `POST /api/admin/automations` → 201 (marketplace's automation)
pub async fn create(
    staff: Staff,
    state: web::Data<AppState>,
    body: web::Json<Value>,
) -> HttpResult {
    let body = object(body.into_inner())?;
    let call = OwnerCall::new(Service::Marketplace, Method::POST, "/internal/automations");
    let reply = call_owner(&state, &staff, call.body(&body).changes_stats(), |reply| {
        let id = reply.body.get("id").and_then(Value::as_i64);
        Audit::new("automation.create", "automation", id, audited_fields(&body))
    })
    .await?;
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
    let path = format!("/internal/automations/{id}");
    let call = OwnerCall::new(Service::Marketplace, Method::PUT, &path);
    let reply = call_owner(&state, &staff, call.body(&body).changes_stats(), |_| {
        Audit::new(
            "automation.update",
            "automation",
            Some(id),
            audited_fields(&body),
        )
    })
    .await?;
    Ok(HttpResponse::Ok().json(reply.body))
}

/// `DELETE /api/admin/automations/{id}`: deleted when no customer has it, otherwise unlisted
/// (customers keep what they bought); the answer says which.
pub async fn delete(staff: Staff, state: web::Data<AppState>, path: web::Path<i64>) -> HttpResult {
    let id = path.into_inner();
    let path = format!("/internal/automations/{id}");
    let call = OwnerCall::new(Service::Marketplace, Method::DELETE, &path);
    let reply = call_owner(&state, &staff, call.changes_stats(), |reply| {
        let deleted = reply.body.get("deleted").and_then(Value::as_bool) == Some(true);
        let action = if deleted {
            "automation.delete"
        } else {
            "automation.unlist"
        };
        Audit::new(
            action,
            "automation",
            Some(id),
            json!({ "deleted": deleted }),
        )
    })
    .await?;
    Ok(HttpResponse::Ok().json(reply.body))
}

/// A new service token through the marketplace (the previous one stops working), audited.
/// The token is never stored by admin, never logged.
async fn new_token(
    state: &AppState,
    staff: &Staff,
    id: i64,
    action: &str,
) -> Result<Value, ApiError> {
    let path = format!("/internal/automations/{id}/service-token");
    let call = OwnerCall::new(Service::Marketplace, Method::POST, &path).json(json!({}));
    let reply = call_owner(state, staff, call, |_| {
        Audit::new(action, "automation", Some(id), json!({}))
    })
    .await?;
    Ok(reply.body)
}

/// `POST /api/admin/automations/{id}/service-token` → 201 `{automation_id, service_token}`:
/// shown this once (never stored by admin, never logged, not cacheable); the previous token
/// stops working.
pub async fn issue_token(
    staff: Staff,
    state: web::Data<AppState>,
    path: web::Path<i64>,
) -> HttpResult {
    let body = new_token(
        &state,
        &staff,
        path.into_inner(),
        "automation.issue_service_token",
    )
    .await?;
    Ok(HttpResponse::Created()
        .insert_header(("Cache-Control", "no-store"))
        .json(body))
}

/// `POST /api/admin/automations/{id}/generate-service-token` (the admin dashboard's "generate
/// token" and "connect" buttons; no body) → `{service_token, automation_id, message}`: the
/// same mechanism as `/service-token`.
pub async fn generate_service_token(
    staff: Staff,
    state: web::Data<AppState>,
    path: web::Path<i64>,
) -> HttpResult {
    let id = path.into_inner();
    let body = new_token(&state, &staff, id, "automation.issue_service_token").await?;
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(json!({
            "service_token": body.get("service_token"),
            "automation_id": id,
            "message": "A new service token was issued; the previous one no longer works. It is shown only once.",
        })))
}

/// `POST /api/admin/automations/{id}/rotate-token` (no body) → `{new_token, masked_token,
/// automation_id, rotated_at, message}`: the same mechanism again.
pub async fn rotate_token(
    staff: Staff,
    state: web::Data<AppState>,
    path: web::Path<i64>,
) -> HttpResult {
    let id = path.into_inner();
    let body = new_token(&state, &staff, id, "automation.rotate_service_token").await?;
    let token = body
        .get("service_token")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let tail: String = {
        let chars: Vec<char> = token.chars().collect();
        chars[chars.len().saturating_sub(4)..].iter().collect()
    };
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(json!({
            "new_token": token,
            "masked_token": format!("****{tail}"),
            "automation_id": id,
            "rotated_at": Utc::now(),
            "message": "The service token was rotated; the previous one no longer works. It is shown only once.",
        })))
}

/// `POST /api/admin/automations/{id}/health-check`: checks now and records the result.
pub async fn health_check(
    staff: Staff,
    state: web::Data<AppState>,
    path: web::Path<i64>,
) -> HttpResult {
    let id = path.into_inner();
    let path = format!("/internal/automations/{id}/health-check");
    let call = OwnerCall::new(Service::Marketplace, Method::POST, &path).json(json!({}));
    let reply = call_owner(&state, &staff, call, |reply| {
        let details = json!({
            "health_status": reply.body.get("health_status"),
            "previous": reply.body.get("previous"),
        });
        Audit::new("automation.health_check", "automation", Some(id), details)
    })
    .await?;
    Ok(HttpResponse::Ok().json(reply.body))
}
