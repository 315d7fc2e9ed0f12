//! Discount codes (managers): billing owns them; admin passes the calls through its internal
//! API and audits the changes.

use actix_web::{HttpResponse, http::StatusCode, web};
use reqwest::Method;
use serde::Deserialize;
use serde_json::{Value, json};
use zimmer_http::{ApiError, HttpResult};

use super::{Audit, OwnerCall, call_owner, picked};
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
    if query.page.is_none() && query.page_size.is_none() {
        // The admin dashboard has no paging: the largest page billing serves.
        q.push(("page_size", "100".to_owned()));
    }
    let reply = state
        .upstreams
        .get(Service::Billing, "/internal/discounts", &q)
        .await?;
    let mut body = reply.body;
    if let Some(map) = body.as_object_mut() {
        let mut items = map
            .get("items")
            .cloned()
            .unwrap_or(Value::Array(Vec::new()));
        if let Some(list) = items.as_array_mut() {
            list.iter_mut().for_each(dashboard_names);
        }
        let total = map.get("total").cloned().unwrap_or(json!(0));
        map.insert("items".into(), items.clone());
        map.insert("discounts".into(), items);
        map.insert("total_count".into(), total);
    }
    Ok(HttpResponse::Ok().json(body))
}

/// Adds the admin dashboard's names to a code (its edit page reads another vocabulary):
/// `discount_type` (always a percentage), `discount_value`, `is_active`, `valid_from`,
/// `valid_until`, `max_uses`, `automation_ids`.
fn dashboard_names(code: &mut Value) {
    let Some(m) = code.as_object_mut() else {
        return;
    };
    let get = |k: &str| m.get(k).cloned().unwrap_or(Value::Null);
    let automation_ids = match m.get("automation_id") {
        Some(Value::Number(n)) => json!([n]),
        _ => json!([]),
    };
    let extra = [
        ("discount_type", json!("percentage")),
        ("discount_value", get("percent_off")),
        ("is_active", get("active")),
        ("valid_from", get("starts_at")),
        ("valid_until", get("ends_at")),
        ("max_uses", get("max_redemptions")),
        ("automation_ids", automation_ids),
    ];
    for (k, v) in extra {
        m.entry(k).or_insert(v);
    }
}

/// The admin dashboard's create and edit forms → billing's fields (README.md): a set of
/// automations of at most one (`[]` = every automation), `discount_value` with
/// `discount_type` "percentage", `is_active`, `valid_from`/`valid_until` (a zone-less time is
/// UTC), `max_uses`. Ours win when both are sent.
fn from_dashboard(body: Value) -> Result<Value, ApiError> {
    let Value::Object(mut m) = object(body)? else {
        return Err(ApiError::bad_request("Invalid request"));
    };
    if let Some(ids) = m.remove("automation_ids") {
        let ids = match ids {
            Value::Null => Vec::new(),
            Value::Array(a) => a,
            _ => return Err(ApiError::invalid("automation_ids", "must be a list of ids")),
        };
        match ids.as_slice() {
            [] => {}
            [one] if one.is_i64() => {
                m.entry("automation_id").or_insert(one.clone());
            }
            [_] => return Err(ApiError::invalid("automation_ids", "must be a list of ids")),
            _ => {
                return Err(ApiError::invalid(
                    "automation_ids",
                    "a code can name one automation (or none, for every automation) for now",
                ));
            }
        }
    }
    if let Some(t) = m.remove("discount_type")
        && !(t.is_null() || t == json!("percentage"))
    {
        return Err(ApiError::invalid(
            "discount_type",
            "only percentage codes exist",
        ));
    }
    for (theirs, ours) in [
        ("discount_value", "percent_off"),
        ("is_active", "active"),
        ("valid_from", "starts_at"),
        ("valid_until", "ends_at"),
        ("max_uses", "max_redemptions"),
    ] {
        if let Some(v) = m.remove(theirs) {
            m.entry(ours).or_insert(v);
        }
    }
    for k in ["starts_at", "ends_at"] {
        if let Some(Value::String(t)) = m.get(k) {
            let t = t.trim();
            let fixed = if t.is_empty() {
                Value::Null
            } else if chrono::NaiveDateTime::parse_from_str(t, "%Y-%m-%dT%H:%M").is_ok() {
                json!(format!("{t}:00Z"))
            } else if chrono::NaiveDateTime::parse_from_str(t, "%Y-%m-%dT%H:%M:%S").is_ok() {
                json!(format!("{t}Z"))
            } else {
                json!(t)
            };
            m.insert(k.to_owned(), fixed);
        }
    }
    // `description` is not stored yet; billing ignores fields it does not know.
    Ok(Value::Object(m))
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
    Value::Object(picked(
        body,
        &[
            "code",
            "percent_off",
            "active",
            "starts_at",
            "ends_at",
            "max_redemptions",
            "per_user_limit",
            "automation_id",
        ],
    ))
}

/// `POST /api/admin/discounts` `{code, percent_off, active?, starts_at?, ends_at?,
/// max_redemptions?, per_user_limit?, automation_id?}` → 201; 409 on a taken code.
pub async fn create(
    staff: Staff,
    state: web::Data<AppState>,
    body: web::Json<Value>,
) -> HttpResult {
    let body = from_dashboard(body.into_inner())?;
    let call = OwnerCall::new(Service::Billing, Method::POST, "/internal/discounts");
    let reply = call_owner(&state, &staff, call.body(&body), |reply| {
        let id = reply.body.get("id").and_then(Value::as_i64);
        Audit::new("discount.create", "discount", id, audited(&reply.body))
    })
    .await?;
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
    let body = from_dashboard(body.into_inner())?;
    let path = format!("/internal/discounts/{id}");
    let call = OwnerCall::new(Service::Billing, Method::PUT, &path);
    let reply = call_owner(&state, &staff, call.body(&body), |_| {
        let details = json!({ "changes": audited(&body) });
        Audit::new("discount.update", "discount", Some(id), details)
    })
    .await?;
    Ok(HttpResponse::Ok().json(reply.body))
}

/// `DELETE /api/admin/discounts/{id}`: billing deletes an unused code and deactivates a used
/// one (its redemptions are payment history).
pub async fn delete(staff: Staff, state: web::Data<AppState>, path: web::Path<i64>) -> HttpResult {
    let id = path.into_inner();
    let path = format!("/internal/discounts/{id}");
    let call = OwnerCall::new(Service::Billing, Method::DELETE, &path);
    let reply = call_owner(&state, &staff, call, |reply| {
        Audit::new("discount.delete", "discount", Some(id), reply.body.clone())
    })
    .await?;
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
