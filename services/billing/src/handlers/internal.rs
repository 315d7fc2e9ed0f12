//! The internal API admin calls (service credential, never routed by the gateway): discount
//! codes, payments, and reconciliation on demand. Admin checks the staff role and writes its
//! audit log; billing only owns the rows.

use actix_web::{HttpResponse, web};
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use zimmer_db::models::billing::{DiscountCode, NewDiscountCode, payment_status as ps};
use zimmer_http::{ApiError, HttpResult, InternalCaller, PageQuery, Paged, validate::Validator};

use super::{
    PaymentView, double_option,
    payments::{ListQuery, parse_order, parse_status, window},
};
use crate::{
    AppState, domain,
    queries::{self, DiscountChanges, DiscountStats, PaymentFilter},
};

#[derive(Debug, Serialize)]
pub struct DiscountView {
    #[serde(flatten)]
    pub code: DiscountJson,
    pub redemptions: DiscountStats,
}

/// The row as JSON (the model has no serde derive: the db crate stays serde-free for rows).
#[derive(Debug, Serialize)]
pub struct DiscountJson {
    pub id: i64,
    pub code: String,
    pub percent_off: i32,
    pub active: bool,
    pub starts_at: Option<DateTime<Utc>>,
    pub ends_at: Option<DateTime<Utc>>,
    pub max_redemptions: Option<i32>,
    pub per_user_limit: Option<i32>,
    pub automation_id: Option<i64>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<DiscountCode> for DiscountJson {
    fn from(d: DiscountCode) -> Self {
        Self {
            id: d.id,
            code: d.code,
            percent_off: d.percent_off,
            active: d.active,
            starts_at: d.starts_at,
            ends_at: d.ends_at,
            max_redemptions: d.max_redemptions,
            per_user_limit: d.per_user_limit,
            automation_id: d.automation_id,
            created_at: d.created_at,
            updated_at: d.updated_at,
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct NewDiscountBody {
    pub code: String,
    pub percent_off: i32,
    #[serde(default)]
    pub active: Option<bool>,
    #[serde(default)]
    pub starts_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub ends_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub max_redemptions: Option<i32>,
    #[serde(default)]
    pub per_user_limit: Option<i32>,
    #[serde(default)]
    pub automation_id: Option<i64>,
}

/// A partial update; `null` clears a nullable field, an absent field is left alone.
#[derive(Debug, Default, Deserialize)]
pub struct DiscountPatch {
    #[serde(default)]
    pub code: Option<String>,
    #[serde(default)]
    pub percent_off: Option<i32>,
    #[serde(default)]
    pub active: Option<bool>,
    #[serde(default, deserialize_with = "double_option")]
    pub starts_at: Option<Option<DateTime<Utc>>>,
    #[serde(default, deserialize_with = "double_option")]
    pub ends_at: Option<Option<DateTime<Utc>>>,
    #[serde(default, deserialize_with = "double_option")]
    pub max_redemptions: Option<Option<i32>>,
    #[serde(default, deserialize_with = "double_option")]
    pub per_user_limit: Option<Option<i32>>,
    #[serde(default, deserialize_with = "double_option")]
    pub automation_id: Option<Option<i64>>,
}

fn check_limits(
    v: &mut Validator,
    percent: Option<i32>,
    max_redemptions: Option<i32>,
    per_user_limit: Option<i32>,
) {
    if percent.is_some_and(|p| !(1..=100).contains(&p)) {
        v.error("percent_off", "must be between 1 and 100");
    }
    if max_redemptions.is_some_and(|m| m < 1) {
        v.error(
            "max_redemptions",
            "must be at least 1 (or null for no limit)",
        );
    }
    if per_user_limit.is_some_and(|m| m < 1) {
        v.error(
            "per_user_limit",
            "must be at least 1 (or null for no limit)",
        );
    }
}

fn check_window(
    v: &mut Validator,
    starts_at: Option<DateTime<Utc>>,
    ends_at: Option<DateTime<Utc>>,
) {
    if let (Some(s), Some(e)) = (starts_at, ends_at)
        && s >= e
    {
        v.error("ends_at", "must be after starts_at");
    }
}

fn duplicate_code(e: diesel::result::Error) -> ApiError {
    use diesel::result::{DatabaseErrorKind, Error};
    match e {
        Error::DatabaseError(DatabaseErrorKind::UniqueViolation, _) => ApiError::conflict(
            "discount_code_exists",
            "A discount code with this code exists",
        ),
        other => other.into(),
    }
}

async fn view(
    conn: &mut zimmer_db::AsyncPgConnection,
    d: DiscountCode,
) -> Result<DiscountView, ApiError> {
    let redemptions = queries::discount_stats(conn, d.id).await?;
    Ok(DiscountView {
        code: d.into(),
        redemptions,
    })
}

pub async fn create_discount(
    _caller: InternalCaller,
    state: web::Data<AppState>,
    body: web::Json<NewDiscountBody>,
) -> HttpResult {
    let mut v = Validator::new();
    let code = domain::normalize_code(Some(&body.code)).unwrap_or_default();
    v.check("code", domain::valid_code(&code));
    check_limits(
        &mut v,
        Some(body.percent_off),
        body.max_redemptions,
        body.per_user_limit,
    );
    check_window(&mut v, body.starts_at, body.ends_at);
    v.finish()?;
    let mut conn = state.billing.pool.get().await?;
    if let Some(a) = body.automation_id
        && queries::automation_price(&mut conn, a).await?.is_none()
    {
        return Err(ApiError::invalid("automation_id", "no such automation"));
    }
    let d = queries::insert_discount(
        &mut conn,
        &NewDiscountCode {
            code: &code,
            percent_off: body.percent_off,
            active: body.active.unwrap_or(true),
            starts_at: body.starts_at,
            ends_at: body.ends_at,
            max_redemptions: body.max_redemptions,
            per_user_limit: body.per_user_limit,
            automation_id: body.automation_id,
        },
    )
    .await
    .map_err(duplicate_code)?;
    Ok(HttpResponse::Created().json(view(&mut conn, d).await?))
}

#[derive(Debug, Deserialize)]
pub struct DiscountListQuery {
    pub search: Option<String>,
    pub active: Option<bool>,
    pub page: Option<i64>,
    pub page_size: Option<i64>,
}

pub async fn list_discounts(
    _caller: InternalCaller,
    state: web::Data<AppState>,
    query: web::Query<DiscountListQuery>,
) -> HttpResult {
    let page = PageQuery {
        page: query.page,
        page_size: query.page_size,
    };
    let search = query
        .search
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty());
    let mut conn = state.billing.pool.get().await?;
    let (rows, total) =
        queries::list_discounts(&mut conn, search, query.active, page.offset(), page.limit())
            .await?;
    let mut items = Vec::with_capacity(rows.len());
    for d in rows {
        items.push(view(&mut conn, d).await?);
    }
    Ok(HttpResponse::Ok().json(Paged::new(items, total, &page)))
}

pub async fn get_discount(
    _caller: InternalCaller,
    state: web::Data<AppState>,
    path: web::Path<i64>,
) -> HttpResult {
    let mut conn = state.billing.pool.get().await?;
    let d = queries::discount_by_id(&mut conn, path.into_inner())
        .await?
        .ok_or_else(|| ApiError::not_found("Discount code not found"))?;
    Ok(HttpResponse::Ok().json(view(&mut conn, d).await?))
}

pub async fn update_discount(
    _caller: InternalCaller,
    state: web::Data<AppState>,
    path: web::Path<i64>,
    body: web::Json<DiscountPatch>,
) -> HttpResult {
    let id = path.into_inner();
    let patch = body.into_inner();
    let mut conn = state.billing.pool.get().await?;
    let current = queries::discount_by_id(&mut conn, id)
        .await?
        .ok_or_else(|| ApiError::not_found("Discount code not found"))?;
    let mut v = Validator::new();
    let code = match &patch.code {
        None => None,
        Some(c) => {
            let c = domain::normalize_code(Some(c)).unwrap_or_default();
            v.check("code", domain::valid_code(&c));
            Some(c)
        }
    };
    check_limits(
        &mut v,
        patch.percent_off,
        patch.max_redemptions.flatten(),
        patch.per_user_limit.flatten(),
    );
    // The window as it will be after the change.
    check_window(
        &mut v,
        patch.starts_at.unwrap_or(current.starts_at),
        patch.ends_at.unwrap_or(current.ends_at),
    );
    v.finish()?;
    if let Some(Some(a)) = patch.automation_id
        && queries::automation_price(&mut conn, a).await?.is_none()
    {
        return Err(ApiError::invalid("automation_id", "no such automation"));
    }
    let changes = DiscountChanges {
        code,
        percent_off: patch.percent_off,
        active: patch.active,
        starts_at: patch.starts_at,
        ends_at: patch.ends_at,
        max_redemptions: patch.max_redemptions,
        per_user_limit: patch.per_user_limit,
        automation_id: patch.automation_id,
    };
    let d = queries::update_discount(&mut conn, id, &changes)
        .await
        .map_err(duplicate_code)?
        .ok_or_else(|| ApiError::not_found("Discount code not found"))?;
    Ok(HttpResponse::Ok().json(view(&mut conn, d).await?))
}

/// Deletes a code nobody used; a used code is deactivated instead (its redemptions are history).
pub async fn delete_discount(
    _caller: InternalCaller,
    state: web::Data<AppState>,
    path: web::Path<i64>,
) -> HttpResult {
    let id = path.into_inner();
    let mut conn = state.billing.pool.get().await?;
    queries::discount_by_id(&mut conn, id)
        .await?
        .ok_or_else(|| ApiError::not_found("Discount code not found"))?;
    let stats = queries::discount_stats(&mut conn, id).await?;
    if stats.reserved + stats.confirmed + stats.released == 0 {
        queries::delete_discount(&mut conn, id).await?;
        return Ok(HttpResponse::Ok().json(serde_json::json!({ "deleted": true })));
    }
    queries::update_discount(
        &mut conn,
        id,
        &DiscountChanges {
            active: Some(false),
            ..DiscountChanges::default()
        },
    )
    .await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "deleted": false, "deactivated": true })))
}

#[derive(Debug, Serialize)]
pub struct RedemptionView {
    pub id: i64,
    pub discount_id: i64,
    pub user_id: i64,
    pub payment_id: i64,
    pub status: String,
    pub amount_before: i64,
    pub amount_discount: i64,
    pub amount_after: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

pub async fn list_redemptions(
    _caller: InternalCaller,
    state: web::Data<AppState>,
    path: web::Path<i64>,
    page: web::Query<PageQuery>,
) -> HttpResult {
    let id = path.into_inner();
    let mut conn = state.billing.pool.get().await?;
    queries::discount_by_id(&mut conn, id)
        .await?
        .ok_or_else(|| ApiError::not_found("Discount code not found"))?;
    let (rows, total) =
        queries::list_redemptions(&mut conn, id, page.offset(), page.limit()).await?;
    let items: Vec<RedemptionView> = rows
        .into_iter()
        .map(|r| RedemptionView {
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
    Ok(HttpResponse::Ok().json(Paged::new(items, total, &page)))
}

#[derive(Debug, Deserialize)]
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

/// RFC 3339, or a date (`YYYY-MM-DD`, midnight UTC).
fn parse_time(field: &'static str, s: Option<&str>) -> Result<Option<DateTime<Utc>>, ApiError> {
    let Some(s) = s.map(str::trim).filter(|s| !s.is_empty()) else {
        return Ok(None);
    };
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(Some(t.with_timezone(&Utc)));
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| Some(t.and_utc()))
        .ok_or_else(|| ApiError::invalid(field, "must be a date or an RFC 3339 time"))
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
        from: parse_time("from", q.from.as_deref())?,
        to: parse_time("to", q.to.as_deref())?,
        ascending: parse_order(q.order.as_deref())?,
    };
    let (offset, limit, page, page_size) = window(&ListQuery {
        limit: q.limit,
        offset: q.offset,
        page: q.page,
        page_size: q.page_size,
        order: None,
        status: None,
    });
    let mut conn = state.billing.pool.get().await?;
    let (rows, total) = queries::list_payments(&mut conn, &filter, offset, limit).await?;
    let items: Vec<serde_json::Value> = rows
        .into_iter()
        .map(|(p, name)| {
            let user_id = p.user_id;
            let verify_attempts = p.verify_attempts;
            let mut v = serde_json::to_value(PaymentView::new(p, name)).unwrap_or_default();
            v["user_id"] = user_id.into();
            v["verify_attempts"] = verify_attempts.into();
            v
        })
        .collect();
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "items": items, "total": total, "page": page, "page_size": page_size,
    })))
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

fn admin_payment(p: zimmer_db::models::billing::Payment) -> serde_json::Value {
    let (user_id, attempts, meta, next, last) = (
        p.user_id,
        p.verify_attempts,
        p.meta.clone(),
        p.next_check_at,
        p.last_checked_at,
    );
    let mut v = serde_json::to_value(PaymentView::new(p, None)).unwrap_or_default();
    v["user_id"] = user_id.into();
    v["verify_attempts"] = attempts.into();
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
