//! Payments of every user (managers): read from billing's table; a reconciliation on demand
//! goes through billing.

use std::collections::HashMap;

use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::json;
use zimmer_db::models::billing::{Payment, payment_status};
use zimmer_http::{ApiError, HttpResult, time_bound};

use super::{
    Listing, WHOLE_LIST, found, listed, to_json,
    user_automations::{Named, names_of},
};
use crate::{
    AppState,
    clients::Service,
    ops::{Audit, OwnerCall, call_owner},
    queries::payments::{self as q, PaymentFilter},
    rbac::Staff,
};

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    pub status: Option<String>,
    pub user_id: Option<i64>,
    pub automation_id: Option<i64>,
    pub from: Option<String>,
    pub to: Option<String>,
}

/// The admin dashboard's word for each of our statuses (README.md, "admin dashboard").
fn dashboard_status(ours: &str) -> &'static str {
    match ours {
        payment_status::SUCCEEDED => "completed",
        payment_status::PENDING | payment_status::VERIFYING => "pending",
        payment_status::FAILED => "failed",
        payment_status::CANCELED | payment_status::EXPIRED => "cancelled",
        _ => "needs_review",
    }
}

/// A `status` filter in either vocabulary → our statuses.
fn status_filter(raw: Option<&str>) -> Result<Vec<String>, ApiError> {
    let Some(raw) = raw.map(str::trim).filter(|s| !s.is_empty()) else {
        return Ok(Vec::new());
    };
    let ours: Vec<&str> = match raw {
        "completed" => vec![payment_status::SUCCEEDED],
        "cancelled" => vec![payment_status::CANCELED, payment_status::EXPIRED],
        s if payment_status::ALL.contains(&s) => vec![s],
        _ => {
            return Err(ApiError::invalid(
                "status",
                format!(
                    "must be one of {}, completed, cancelled",
                    payment_status::ALL.join(", ")
                ),
            ));
        }
    };
    Ok(ours.into_iter().map(str::to_owned).collect())
}

#[derive(Debug, Serialize)]
struct PaymentView {
    id: i64,
    #[serde(flatten)]
    named: Named,
    user_automation_id: i64,
    /// Rials.
    amount: i64,
    tokens_purchased: i64,
    method: String,
    gateway: String,
    /// The dashboard's vocabulary (completed, pending, failed, cancelled, needs_review).
    status: &'static str,
    /// Ours (pending, verifying, succeeded, ...).
    payment_status: String,
    ref_id: Option<i64>,
    transaction_id: Option<String>,
    authority: Option<String>,
    card_pan: Option<String>,
    discount_code: Option<String>,
    discount_percent: Option<i32>,
    description: Option<String>,
    failure_reason: Option<String>,
    verify_attempts: i32,
    next_check_at: Option<DateTime<Utc>>,
    last_checked_at: Option<DateTime<Utc>>,
    /// = `created_at` (the dashboard's name).
    date: DateTime<Utc>,
    created_at: DateTime<Utc>,
    verified_at: Option<DateTime<Utc>>,
    updated_at: DateTime<Utc>,
}

/// The payment with its customer's email and name and its automation's name, looked up in
/// what [`names_of`] loaded.
fn view(
    p: Payment,
    people: &HashMap<i64, (String, String)>,
    automations: &HashMap<i64, String>,
) -> PaymentView {
    PaymentView {
        id: p.id,
        named: Named::of(p.user_id, p.automation_id, people, automations),
        user_automation_id: p.user_automation_id,
        amount: p.amount,
        tokens_purchased: p.tokens_purchased,
        method: p.method,
        gateway: p.gateway,
        status: dashboard_status(&p.status),
        payment_status: p.status,
        ref_id: p.ref_id,
        transaction_id: p.transaction_id,
        authority: p.authority,
        card_pan: p.card_pan,
        discount_code: p.discount_code,
        discount_percent: p.discount_percent,
        description: p.description,
        failure_reason: p.failure_reason,
        verify_attempts: p.verify_attempts,
        next_check_at: p.next_check_at,
        last_checked_at: p.last_checked_at,
        date: p.created_at,
        created_at: p.created_at,
        verified_at: p.verified_at,
        updated_at: p.updated_at,
    }
}

/// `GET /api/admin/payments?status=&user_id=&automation_id=&from=&to=`: newest first; `from`
/// and `to` are dates (inclusive) or RFC 3339 times, on `created_at`.
pub async fn list(
    _staff: Staff,
    state: web::Data<AppState>,
    query: Listing<ListQuery>,
) -> HttpResult {
    let filter = PaymentFilter {
        status: status_filter(query.status.as_deref())?,
        user_id: query.user_id,
        automation_id: query.automation_id,
        from: time_bound("from", query.from.as_deref(), false)?,
        to: time_bound("to", query.to.as_deref(), true)?,
    };
    if let (Some(f), Some(t)) = (filter.from, filter.to)
        && f >= t
    {
        return Err(ApiError::invalid("to", "must be after from"));
    }
    let page = query.page(WHOLE_LIST);
    let mut conn = state.platform.pool.get().await?;
    let (rows, total) = q::list(&mut conn, &filter, page.offset, page.limit).await?;
    let (people, names) = names_of(
        &mut conn,
        rows.iter().map(|p| p.user_id),
        rows.iter().map(|p| p.automation_id),
    )
    .await?;
    drop(conn);
    let items: Vec<PaymentView> = rows.into_iter().map(|p| view(p, &people, &names)).collect();
    listed("payments", items, total, &page)
}

/// `GET /api/admin/payments/{id}`: the payment with its discount redemption, if any.
pub async fn get(_staff: Staff, state: web::Data<AppState>, path: web::Path<i64>) -> HttpResult {
    let id = path.into_inner();
    let mut conn = state.platform.pool.get().await?;
    let p = found(q::get(&mut conn, id).await?, "Payment not found")?;
    let redemption = q::redemption_of(&mut conn, id).await?;
    let (people, names) = names_of(&mut conn, [p.user_id], [p.automation_id]).await?;
    drop(conn);
    let mut body = to_json(&view(p, &people, &names))?;
    if let Some(map) = body.as_object_mut() {
        map.insert(
            "redemption".into(),
            redemption.map_or(serde_json::Value::Null, |r| {
                json!({
                    "discount_id": r.discount_id,
                    "status": r.status,
                    "amount_before": r.amount_before,
                    "amount_discount": r.amount_discount,
                    "amount_after": r.amount_after,
                })
            }),
        );
    }
    Ok(HttpResponse::Ok().json(body))
}

/// `POST /api/admin/payments/{id}/reconcile`: billing asks Zarinpal about it now (a pending
/// payment, or a closed one the customer says they paid); money moves only through billing's
/// own verify-once path.
pub async fn reconcile(
    staff: Staff,
    state: web::Data<AppState>,
    path: web::Path<i64>,
) -> HttpResult {
    let id = path.into_inner();
    let path = format!("/internal/payments/{id}/reconcile");
    let call = OwnerCall::new(Service::Billing, Method::POST, path).json(json!({}));
    let reply = call_owner(&state, &staff, call.changes_stats(), |reply| {
        Audit::new(
            "payment.reconcile",
            "payment",
            Some(id),
            json!({
                "checked": reply.body.get("checked"),
                "status": reply.body.get("payment").and_then(|p| p.get("status")),
            }),
        )
    })
    .await?;
    Ok(HttpResponse::Ok().json(reply.body))
}
