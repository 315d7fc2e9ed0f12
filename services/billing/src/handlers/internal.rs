//! The internal API admin calls (service credential, never routed by the gateway): discount
//! codes, payments, and reconciliation on demand. Admin checks the staff role and writes its
//! audit log; billing only owns the rows. Request and answer types of the discount calls are
//! `zimmer_contracts::internal::discounts`, shared with admin.

use actix_web::{HttpResponse, web};
use serde::Deserialize;
use zimmer_db::models::billing::{Payment, payment_status as ps};
use zimmer_events::contracts::internal::discounts::{
    DiscountList, DiscountPatch, NewDiscount, Redemption, RedemptionList,
};
use zimmer_http::{ApiError, HttpResult, InternalCaller, PageQuery, Window, time_bound};

use super::{
    PaymentView,
    payments::{parse_order, parse_status, payments_page, window},
};
use crate::{
    AppState,
    ops::discounts as ops,
    queries::{self, PaymentFilter},
};

/// The most codes one unpaged call answers (the admin dashboard has no paging:
/// docs/panels.md "The admin dashboard", the newest 500).
const WHOLE_LIST: i64 = 500;

pub async fn create_discount(
    _caller: InternalCaller,
    state: web::Data<AppState>,
    body: web::Json<NewDiscount>,
) -> HttpResult {
    let mut conn = state.billing.pool.get().await?;
    let d = ops::create(&mut conn, &body).await?;
    Ok(HttpResponse::Created().json(d))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DiscountListQuery {
    pub search: Option<String>,
    pub active: Option<bool>,
    pub page: Option<i64>,
    pub page_size: Option<i64>,
    /// Instead of paging: the newest `limit` codes (1 to 500).
    pub limit: Option<i64>,
}

/// Codes newest first, each with its automations and redemption counts.
pub async fn list_discounts(
    _caller: InternalCaller,
    state: web::Data<AppState>,
    query: web::Query<DiscountListQuery>,
) -> HttpResult {
    let page = PageQuery {
        page: query.page,
        page_size: query.page_size,
    };
    let window = match query.limit {
        Some(l) => Window::at(l.clamp(1, WHOLE_LIST), 0),
        None => Window::of(&page),
    };
    let search = query
        .search
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty());
    let mut conn = state.billing.pool.get().await?;
    let (rows, total) =
        queries::list_discounts(&mut conn, search, query.active, window.offset, window.limit)
            .await?;
    let items = ops::views(&mut conn, rows).await?;
    Ok(HttpResponse::Ok().json(DiscountList {
        items,
        total,
        page: window.page,
        page_size: window.page_size,
    }))
}

pub async fn get_discount(
    _caller: InternalCaller,
    state: web::Data<AppState>,
    path: web::Path<i64>,
) -> HttpResult {
    let mut conn = state.billing.pool.get().await?;
    let d = ops::existing(&mut conn, path.into_inner()).await?;
    Ok(HttpResponse::Ok().json(ops::view(&mut conn, d).await?))
}

/// A partial update; `null` clears a nullable field, an absent field is left alone.
pub async fn update_discount(
    _caller: InternalCaller,
    state: web::Data<AppState>,
    path: web::Path<i64>,
    body: web::Json<DiscountPatch>,
) -> HttpResult {
    let mut conn = state.billing.pool.get().await?;
    let d = ops::update(&mut conn, path.into_inner(), &body).await?;
    Ok(HttpResponse::Ok().json(d))
}

/// Deletes a code nobody used; a used code is deactivated instead (its redemptions are history).
pub async fn delete_discount(
    _caller: InternalCaller,
    state: web::Data<AppState>,
    path: web::Path<i64>,
) -> HttpResult {
    let mut conn = state.billing.pool.get().await?;
    let answer = if ops::delete(&mut conn, path.into_inner()).await? {
        serde_json::json!({ "deleted": true })
    } else {
        serde_json::json!({ "deleted": false, "deactivated": true })
    };
    Ok(HttpResponse::Ok().json(answer))
}

pub async fn list_redemptions(
    _caller: InternalCaller,
    state: web::Data<AppState>,
    path: web::Path<i64>,
    page: web::Query<PageQuery>,
) -> HttpResult {
    let id = path.into_inner();
    let mut conn = state.billing.pool.get().await?;
    ops::existing(&mut conn, id).await?;
    let (rows, total) =
        queries::list_redemptions(&mut conn, id, page.offset(), page.limit()).await?;
    let items = rows
        .into_iter()
        .map(|r| Redemption {
            id: r.id,
            discount_id: r.discount_id,
            user_id: r.user_id,
            payment_id: r.payment_id,
            status: r.status,
            amount_before: r.amount_before,
            amount_discount: r.amount_discount,
            amount_after: r.amount_after,
            created_at: r.created_at,
            updated_at: r.updated_at,
        })
        .collect();
    Ok(HttpResponse::Ok().json(RedemptionList {
        items,
        total,
        page: page.page(),
        page_size: page.page_size(),
    }))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AdminPaymentsQuery {
    pub status: Option<String>,
    pub user_id: Option<i64>,
    pub automation_id: Option<i64>,
    pub from: Option<String>,
    pub to: Option<String>,
    pub page: Option<i64>,
    pub page_size: Option<i64>,
    pub limit: Option<i64>,
    pub offset: Option<i64>,
    pub order: Option<String>,
}

pub async fn list_payments(
    _caller: InternalCaller,
    state: web::Data<AppState>,
    query: web::Query<AdminPaymentsQuery>,
) -> HttpResult {
    let q = query.into_inner();
    let filter = PaymentFilter {
        user_id: q.user_id,
        automation_id: q.automation_id,
        status: parse_status(q.status.as_deref())?,
        from: time_bound("from", q.from.as_deref(), false)?,
        // A `to` day means its start here (as before), not the whole day.
        to: time_bound("to", q.to.as_deref(), false)?,
        ascending: parse_order(q.order.as_deref())?,
    };
    let window = window(q.limit, q.offset, q.page, q.page_size);
    payments_page(&state, &filter, window, admin_listed).await
}

pub async fn get_payment(
    _caller: InternalCaller,
    state: web::Data<AppState>,
    path: web::Path<i64>,
) -> HttpResult {
    let mut conn = state.billing.pool.get().await?;
    let p = queries::payment_by_id(&mut conn, path.into_inner())
        .await?
        .ok_or_else(|| ApiError::not_found("Payment not found"))?;
    Ok(HttpResponse::Ok().json(admin_payment(p)))
}

/// A payment as admin lists it: the panel's view, its owner and its verification attempts.
fn admin_listed(p: Payment, automation_name: Option<String>) -> serde_json::Value {
    let (user_id, attempts) = (p.user_id, p.verify_attempts);
    let mut v = serde_json::to_value(PaymentView::new(p, automation_name)).unwrap_or_default();
    v["user_id"] = user_id.into();
    v["verify_attempts"] = attempts.into();
    v
}

/// One payment as admin reads it: as listed, with its reconciliation state.
fn admin_payment(p: Payment) -> serde_json::Value {
    let (meta, next, last) = (p.meta.clone(), p.next_check_at, p.last_checked_at);
    let mut v = admin_listed(p, None);
    v["meta"] = meta;
    v["next_check_at"] = serde_json::to_value(next).unwrap_or_default();
    v["last_checked_at"] = serde_json::to_value(last).unwrap_or_default();
    v
}

/// Verifies one payment now (pending, or closed but perhaps paid), as the reconciler would.
pub async fn reconcile_payment(
    _caller: InternalCaller,
    state: web::Data<AppState>,
    path: web::Path<i64>,
) -> HttpResult {
    let id = path.into_inner();
    let billing = &state.billing;
    let claimed = {
        let mut conn = billing.pool.get().await?;
        let claimed = queries::claim_by_id(
            &mut conn,
            id,
            &[ps::PENDING, ps::CANCELED, ps::EXPIRED, ps::FAILED],
            billing.config.claim_lease(),
        )
        .await?;
        if claimed.is_none() {
            let p = queries::payment_by_id(&mut conn, id)
                .await?
                .ok_or_else(|| ApiError::not_found("Payment not found"))?;
            return Ok(HttpResponse::Ok().json(serde_json::json!({
                "checked": false, "payment": admin_payment(p),
            })));
        }
        claimed
    };
    let Some(claimed) = claimed else {
        return Err(ApiError::not_found("Payment not found"));
    };
    let p = billing.verify_claimed(claimed).await?;
    Ok(
        HttpResponse::Ok()
            .json(serde_json::json!({ "checked": true, "payment": admin_payment(p) })),
    )
}

/// Runs one reconciliation round now.
pub async fn reconcile_now(_caller: InternalCaller, state: web::Data<AppState>) -> HttpResult {
    let r = state.billing.reconcile_round().await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "expired_unrequested": r.expired_unrequested,
        "checked": r.checked,
        "succeeded": r.succeeded,
        "unverified_listed": r.unverified_listed,
    })))
}
