//! Discount codes (managers): billing owns them; admin passes the calls through its internal
//! API (typed in `zimmer_contracts::internal::discounts`) and audits the changes. The admin
//! dashboard reads and writes two vocabularies (docs/panels.md "Discount codes"): ours
//! (`percent_off`, `active`, `starts_at`, ...) and its edit page's (`discount_value`,
//! `is_active`, `valid_from`, ...); both are accepted and both are answered.

use actix_web::{HttpResponse, http::StatusCode, web};
use chrono::{DateTime, Utc};
use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use zimmer_events::contracts::internal::discounts::{
    Discount, DiscountList, DiscountPatch, NewDiscount, Redemption, RedemptionList,
};
use zimmer_http::{ApiError, HttpResult};

use super::{Listing, PageOnly, listed_as, not_an_object, picked, to_json};
use crate::{
    AppState,
    clients::Service,
    ops::{Audit, OwnerCall, call_owner, read_owner, typed},
    queries,
    rbac::Staff,
};

/// The newest codes (and redemptions) an unpaged call answers (docs/panels.md "The admin
/// dashboard": the pages have no paging).
const WHOLE_LIST: i64 = 500;

/// A code in both vocabularies: billing's fields and the dashboard's names for them.
#[derive(Debug, Serialize)]
pub struct DiscountView {
    #[serde(flatten)]
    pub discount: Discount,
    /// Reserved and confirmed redemptions (the ones that count toward the limits).
    pub redemptions_count: i64,
    /// Always "percentage": we have no fixed-amount codes.
    pub discount_type: &'static str,
    pub discount_value: i32,
    pub is_active: bool,
    pub valid_from: Option<DateTime<Utc>>,
    pub valid_until: Option<DateTime<Utc>>,
    pub max_uses: Option<i32>,
}

impl From<Discount> for DiscountView {
    fn from(d: Discount) -> Self {
        Self {
            redemptions_count: d.redemptions.reserved + d.redemptions.confirmed,
            discount_type: "percentage",
            discount_value: d.percent_off,
            is_active: d.active,
            valid_from: d.starts_at,
            valid_until: d.ends_at,
            max_uses: d.max_redemptions,
            discount: d,
        }
    }
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    pub search: Option<String>,
    pub active: Option<bool>,
}

/// `GET /api/admin/discounts?search=&active=&page=&page_size=`: `{discounts, items, total,
/// total_count, page, page_size}`, newest first, each code in both vocabularies; without
/// paging, the newest 500.
pub async fn list(
    _staff: Staff,
    state: web::Data<AppState>,
    query: Listing<ListQuery, PageOnly>,
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
    if query.paging.page.is_none() && query.paging.page_size.is_none() {
        q.push(("limit", WHOLE_LIST.to_string()));
    }
    if let Some(p) = query.paging.page {
        q.push(("page", p.to_string()));
    }
    if let Some(p) = query.paging.page_size {
        q.push(("page_size", p.to_string()));
    }
    let list: DiscountList =
        read_owner(&state, Service::Billing, "/internal/discounts", &q).await?;
    let items: Vec<DiscountView> = list.items.into_iter().map(Into::into).collect();
    listed_as("discounts", items, list.total, (list.page, list.page_size))
}

/// The dashboard's create and edit forms → billing's fields (docs/panels.md "Discount
/// codes"): `discount_value` with `discount_type` "percentage" (or absent; "fixed" → 422),
/// `is_active`, `valid_from`/`valid_until` (a zone-less time is UTC; `""` is none),
/// `max_uses`; `automation_ids` is a set (empty = every automation). Ours win when both are
/// sent; absent keeps, `null` clears.
fn from_dashboard(body: Value) -> Result<Map<String, Value>, ApiError> {
    let Value::Object(mut m) = body else {
        return Err(not_an_object());
    };
    match m.get("automation_ids") {
        None | Some(Value::Null) => {}
        Some(Value::Array(a)) if a.iter().all(Value::is_i64) => {}
        Some(_) => return Err(ApiError::invalid("automation_ids", "must be a list of ids")),
    }
    if let Some(t) = m.remove("discount_type")
        && !(t.is_null() || t == json!("percentage"))
    {
        return Err(ApiError::invalid(
            "discount_type",
            "only percentage codes exist (no fixed-amount codes)",
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
    // An empty text box is no value.
    for k in ["max_redemptions", "per_user_limit", "description"] {
        if m.get(k) == Some(&json!("")) {
            m.insert(k.to_owned(), Value::Null);
        }
    }
    Ok(m)
}

/// The form, typed; a field of the wrong type is a 422 naming it.
fn form<T: serde::de::DeserializeOwned>(m: Map<String, Value>) -> Result<T, ApiError> {
    serde_json::from_value(Value::Object(m)).map_err(|e| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_error",
            format!("Invalid discount code: {e}"),
        )
    })
}

/// A change to code `id` through billing.
fn on_discount(method: Method, id: i64) -> OwnerCall<'static> {
    let path = format!("/internal/discounts/{id}");
    OwnerCall::new(Service::Billing, method, path)
}

/// Code `id` as billing has it (billing's refusal, as a 404, passed on).
async fn read_discount(state: &AppState, id: i64) -> Result<Discount, ApiError> {
    let path = format!("/internal/discounts/{id}");
    read_owner(state, Service::Billing, &path, &[]).await
}

/// `GET /api/admin/discounts/{id}`
pub async fn get(_staff: Staff, state: web::Data<AppState>, path: web::Path<i64>) -> HttpResult {
    let d = read_discount(&state, path.into_inner()).await?;
    Ok(HttpResponse::Ok().json(DiscountView::from(d)))
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
            "automation_ids",
            "description",
        ],
    ))
}

/// `POST /api/admin/discounts` `{code, percent_off, active?, starts_at?, ends_at?,
/// max_redemptions?, per_user_limit?, automation_ids?, description?}` (or the edit page's
/// names) → 201; 409 on a taken code.
pub async fn create(
    staff: Staff,
    state: web::Data<AppState>,
    body: web::Json<Value>,
) -> HttpResult {
    let new: NewDiscount = form(from_dashboard(body.into_inner())?)?;
    let body = to_json(&new)?;
    let call = OwnerCall::new(Service::Billing, Method::POST, "/internal/discounts");
    let reply = call_owner(&state, &staff, call.body(&body), |reply| {
        Audit::of_answer("discount.create", "discount", reply, audited(&reply.body))
    })
    .await?;
    let d: Discount = typed(Service::Billing, reply)?;
    Ok(HttpResponse::Created().json(DiscountView::from(d)))
}

/// `PUT /api/admin/discounts/{id}`: partial, in either vocabulary; absent keeps, `null`
/// clears. A `code` another code has is refused with 409 by billing (codes are unique), so
/// the edit page, which pre-fills from the newest code whatever the URL, never copies one
/// code onto another (docs/panels.md "Shapes the pages disagree on").
pub async fn update(
    staff: Staff,
    state: web::Data<AppState>,
    path: web::Path<i64>,
    body: web::Json<Value>,
) -> HttpResult {
    let id = path.into_inner();
    let patch: DiscountPatch = form(from_dashboard(body.into_inner())?)?;
    let body = to_json(&patch)?;
    let call = on_discount(Method::PUT, id);
    let reply = call_owner(&state, &staff, call.body(&body), |_| {
        let details = json!({ "changes": audited(&body) });
        Audit::new("discount.update", "discount", Some(id), details)
    })
    .await?;
    let d: Discount = typed(Service::Billing, reply)?;
    Ok(HttpResponse::Ok().json(DiscountView::from(d)))
}

/// `DELETE /api/admin/discounts/{id}`: billing deletes an unused code and deactivates a used
/// one (its redemptions are payment history).
pub async fn delete(staff: Staff, state: web::Data<AppState>, path: web::Path<i64>) -> HttpResult {
    let id = path.into_inner();
    let call = on_discount(Method::DELETE, id);
    let reply = call_owner(&state, &staff, call, |reply| {
        Audit::new("discount.delete", "discount", Some(id), reply.body.clone())
    })
    .await?;
    if reply.status == 204 || reply.body.is_null() {
        return Ok(HttpResponse::NoContent().finish());
    }
    Ok(HttpResponse::Ok().json(reply.body))
}

/// One redemption as the dashboard's redemptions page reads it: billing's fields, the code
/// and the automation bought.
#[derive(Debug, Serialize)]
struct RedemptionView {
    #[serde(flatten)]
    redemption: Redemption,
    automation_id: Option<i64>,
    code: String,
}

/// `GET /api/admin/discounts/{id}/redemptions?page=&page_size=`: a **bare array**, newest
/// first (the dashboard's redemptions page reads one), each with the code, the automation
/// bought and `status`; without paging, billing's largest page.
pub async fn redemptions(
    _staff: Staff,
    state: web::Data<AppState>,
    path: web::Path<i64>,
    query: web::Query<PageOnly>,
) -> HttpResult {
    let id = path.into_inner();
    let code = read_discount(&state, id).await?;
    let mut q: Vec<(&str, String)> = Vec::new();
    if let Some(p) = query.page {
        q.push(("page", p.to_string()));
    }
    q.push((
        "page_size",
        query.page_size.unwrap_or(WHOLE_LIST).to_string(),
    ));
    let path = format!("/internal/discounts/{id}/redemptions");
    let list: RedemptionList = read_owner(&state, Service::Billing, &path, &q).await?;
    let payment_ids: Vec<i64> = list.items.iter().map(|r| r.payment_id).collect();
    let mut conn = state.platform.pool.get().await?;
    let bought = queries::payments::automations_of(&mut conn, &payment_ids).await?;
    drop(conn);
    let rows: Vec<RedemptionView> = list
        .items
        .into_iter()
        .map(|redemption| RedemptionView {
            automation_id: bought
                .iter()
                .find(|(p, _)| *p == redemption.payment_id)
                .map(|(_, a)| *a),
            code: code.code.clone(),
            redemption,
        })
        .collect();
    Ok(HttpResponse::Ok().json(rows))
}
