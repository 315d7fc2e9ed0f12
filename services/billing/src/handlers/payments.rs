//! Buying tokens (`POST /api/payments/zarinpal/init`) and the customer's payment history.

use std::{borrow::Cow, ops::RangeInclusive, time::Duration};

use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use zimmer_db::models::billing::{Payment, payment_status as ps};
use zimmer_http::{
    ApiError, HttpResult, Window,
    paging::{DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE},
    validate::Validator,
};
use zimmer_jwt::CurrentUser;

use super::{PaymentView, int_value};
use crate::{
    AppState,
    clients::zarinpal::{Answer, RequestRefusal},
    domain,
    ops::purchase::{self, Priced, Purchase},
    queries::{self, PaymentFilter},
};

/// What the panel sends (docs/panels.md). Anything else — an `amount`, a `user_id`, a price — is
/// ignored: the price is computed here from the database.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct InitBody {
    #[serde(default)]
    pub automation_id: Option<Value>,
    #[serde(default)]
    pub tokens: Option<Value>,
    #[serde(default)]
    pub return_path: Option<String>,
    #[serde(default)]
    pub discount_code: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct InitAnswer {
    pub payment_id: i64,
    pub status: String,
    pub authority: Option<String>,
    /// The StartPay URL (null when a 100 % discount settled the payment at once).
    pub payment_url: Option<String>,
    /// Where the panel sends the browser: `payment_url`, or the result page when nothing is
    /// left to pay.
    pub redirect_url: String,
    pub amount: i64,
    pub amount_before: i64,
    pub amount_discount: i64,
    pub discount_code: Option<String>,
    pub discount_percent: Option<i32>,
    pub tokens: i64,
}

pub async fn init(
    user: CurrentUser,
    state: web::Data<AppState>,
    body: web::Json<InitBody>,
) -> HttpResult {
    let st = state.get_ref();
    let config = &st.billing.config;

    let mut v = Validator::new();
    // An id below 1 is as good as none.
    let automation_id = required_int(
        &mut v,
        "automation_id",
        body.automation_id.as_ref(),
        1..=i64::MAX,
        "is required",
    );
    let tokens = required_int(
        &mut v,
        "tokens",
        body.tokens.as_ref(),
        1..=config.max_tokens,
        format!("must be between 1 and {}", config.max_tokens),
    );
    let return_path = body
        .return_path
        .as_deref()
        .map(str::trim)
        .filter(|p| !p.is_empty());
    if let Some(p) = return_path {
        v.check("return_path", domain::valid_return_path(p));
    }
    let code = domain::normalize_code(body.discount_code.as_deref());
    v.finish()?;
    let (Some(automation_id), Some(tokens)) = (automation_id, tokens) else {
        return Err(ApiError::bad_request("Invalid request"));
    };

    // Each init opens a gateway session: a runaway client should not open thousands. Redis
    // down → allowed (the cost of a few extra sessions is lower than refusing payments).
    let per_minute = config.init_rate_per_min;
    if let Ok(decision) = st
        .platform
        .redis
        .rate_limit(
            &format!("billing:init:{}", user.id),
            per_minute,
            Duration::from_secs(60),
        )
        .await
        && !decision.allowed
    {
        return Err(ApiError::too_many_requests(decision.retry_after));
    }

    let priced = purchase::open(
        &st.billing,
        Purchase {
            user_id: user.id,
            automation_id,
            tokens,
            code,
            return_path,
        },
    )
    .await?;

    let Priced {
        payment,
        amount_before,
        amount_discount,
    } = priced;
    let answer = |p: &Payment, payment_url: Option<String>, redirect_url: String| InitAnswer {
        payment_id: p.id,
        status: p.status.clone(),
        authority: p.authority.clone(),
        payment_url,
        redirect_url,
        amount: p.amount,
        amount_before,
        amount_discount,
        discount_code: p.discount_code.clone(),
        discount_percent: p.discount_percent,
        tokens: p.tokens_purchased,
    };
    if payment.status == ps::SUCCEEDED {
        let result = domain::result_page_url(
            &st.platform.settings.frontend_url,
            payment.return_path.as_deref(),
            payment.id,
            None,
            "OK",
        );
        return Ok(HttpResponse::Ok().json(answer(&payment, None, result)));
    }

    let description = payment.description.clone().unwrap_or_default();
    let requested = st
        .billing
        .zarinpal
        .request(
            payment.amount,
            &description,
            &config.callback_url,
            &payment.id.to_string(),
        )
        .await;
    let mut conn = st.billing.pool.get().await?;
    match requested {
        Answer::Ok(ok) => {
            if !domain::plausible_authority(&ok.authority) {
                queries::fail_unrequested(&mut conn, payment.id, "gateway_bad_authority").await?;
                tracing::error!(
                    payment_id = payment.id,
                    "zarinpal returned an unusable authority"
                );
                return Err(gateway_unavailable());
            }
            let Some(p) = queries::set_authority(&mut conn, payment.id, &ok.authority).await?
            else {
                // Expired under us (the gateway took longer than the reconciler's patience).
                return Err(gateway_unavailable());
            };
            let url = st.billing.zarinpal.start_pay_url(&ok.authority);
            tracing::info!(payment_id = p.id, amount = p.amount, "payment requested");
            Ok(HttpResponse::Ok().json(answer(&p, Some(url.clone()), url)))
        }
        Answer::Refused(e) => {
            queries::fail_unrequested(
                &mut conn,
                payment.id,
                &format!("gateway_refused_{}", -e.code),
            )
            .await?;
            Err(match RequestRefusal::of(e.code) {
                RequestRefusal::RetryLater => ApiError::unavailable(
                    "The payment gateway is busy; please try again in a few minutes",
                )
                .with_code("gateway_busy"),
                RequestRefusal::AmountOutOfRange => {
                    ApiError::invalid("tokens", "the amount is above the gateway's maximum")
                        .with_code("amount_out_of_range")
                }
                refusal => {
                    // Ours to fix (merchant setup or a malformed request): alert, not the payer.
                    tracing::error!(
                        payment_id = payment.id,
                        code = e.code,
                        message = %e.message,
                        validations = ?e.validations,
                        ?refusal,
                        "zarinpal refused a payment request"
                    );
                    gateway_unavailable()
                }
            })
        }
        Answer::Indeterminate(_) => {
            // Nobody was sent to pay, so nobody can pay it: closing it loses nothing.
            queries::fail_unrequested(&mut conn, payment.id, "gateway_unavailable").await?;
            Err(gateway_unavailable())
        }
    }
}

/// A required whole number of the body in `range`; otherwise `None` and an error for `field`
/// in `v` ("is required", not a whole number, or `out_of_range`).
fn required_int(
    v: &mut Validator,
    field: &'static str,
    raw: Option<&Value>,
    range: RangeInclusive<i64>,
    out_of_range: impl Into<Cow<'static, str>>,
) -> Option<i64> {
    match int_value(raw) {
        Ok(Some(n)) if range.contains(&n) => return Some(n),
        Ok(Some(_)) => v.error(field, out_of_range),
        Ok(None) => v.error(field, "is required"),
        Err(m) => v.error(field, m),
    }
    None
}

fn gateway_unavailable() -> ApiError {
    ApiError::unavailable("The payment gateway is not available; please try again later")
        .with_code("gateway_unavailable")
}

/// `limit`/`offset`/`order` (the panel) or `page`/`page_size` (docs/api.md).
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    pub limit: Option<i64>,
    pub offset: Option<i64>,
    pub page: Option<i64>,
    pub page_size: Option<i64>,
    pub order: Option<String>,
    pub status: Option<String>,
}

/// The page either style asks for: `limit`/`offset` win over `page_size`/`page`.
pub fn window(
    limit: Option<i64>,
    offset: Option<i64>,
    page: Option<i64>,
    page_size: Option<i64>,
) -> Window {
    let size = limit
        .or(page_size)
        .unwrap_or(DEFAULT_PAGE_SIZE)
        .clamp(1, MAX_PAGE_SIZE);
    let offset = match offset {
        Some(o) => o.max(0),
        None => (page.unwrap_or(1).max(1) - 1).saturating_mul(size),
    };
    Window::at(size, offset)
}

pub fn parse_status(s: Option<&str>) -> Result<Option<String>, ApiError> {
    match s.map(str::trim).filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(s) if ps::ALL.contains(&s) => Ok(Some(s.to_owned())),
        Some(_) => Err(ApiError::invalid("status", "is not a payment status")),
    }
}

pub fn parse_order(s: Option<&str>) -> Result<bool, ApiError> {
    match s.map(|s| s.trim().to_ascii_lowercase()).as_deref() {
        None | Some("" | "desc") => Ok(false),
        Some("asc") => Ok(true),
        Some(_) => Err(ApiError::invalid("order", "must be asc or desc")),
    }
}

pub async fn list(
    user: CurrentUser,
    state: web::Data<AppState>,
    query: web::Query<ListQuery>,
) -> HttpResult {
    let filter = PaymentFilter {
        user_id: Some(user.id),
        status: parse_status(query.status.as_deref())?,
        ascending: parse_order(query.order.as_deref())?,
        ..PaymentFilter::default()
    };
    let window = window(query.limit, query.offset, query.page, query.page_size);
    payments_page(&state, &filter, window, PaymentView::new).await
}

/// The page `window` of the payments `filter` selects, each as `view` shows it (with its
/// automation's name), answered with the page in both vocabularies.
pub async fn payments_page<T: Serialize>(
    state: &AppState,
    filter: &PaymentFilter,
    window: Window,
    view: impl Fn(Payment, Option<String>) -> T,
) -> HttpResult {
    let mut conn = state.billing.pool.get().await?;
    let (rows, total) =
        queries::list_payments(&mut conn, filter, window.offset, window.limit).await?;
    let items: Vec<T> = rows.into_iter().map(|(p, name)| view(p, name)).collect();
    Ok(HttpResponse::Ok().json(window.answer(items, total)))
}

pub async fn get(
    user: CurrentUser,
    state: web::Data<AppState>,
    path: web::Path<i64>,
) -> HttpResult {
    let mut conn = state.billing.pool.get().await?;
    let (p, name) = queries::user_payment(&mut conn, user.id, path.into_inner())
        .await?
        .ok_or_else(|| ApiError::not_found("Payment not found"))?;
    Ok(HttpResponse::Ok().json(PaymentView::new(p, name)))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SummaryQuery {
    pub months: Option<i32>,
}

/// Totals (docs/api.md) and the monthly series the panel charts (docs/panels.md `points`).
pub async fn summary(
    user: CurrentUser,
    state: web::Data<AppState>,
    query: web::Query<SummaryQuery>,
) -> HttpResult {
    let months = query.months.unwrap_or(6).clamp(1, 24);
    let mut conn = state.billing.pool.get().await?;
    let totals = queries::totals_by_status(&mut conn, user.id).await?;
    let points = queries::monthly_spend(&mut conn, user.id, months).await?;
    let succeeded = totals.iter().find(|t| t.status == ps::SUCCEEDED);
    let by_status: serde_json::Map<String, Value> = ps::ALL
        .iter()
        .map(|s| {
            let n = totals
                .iter()
                .find(|t| t.status == *s)
                .map_or(0, |t| t.count);
            ((*s).to_owned(), Value::from(n))
        })
        .collect();
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "total_spent": succeeded.map_or(0, |t| t.amount),
        "tokens_purchased": succeeded.map_or(0, |t| t.tokens),
        "payments_count": totals.iter().map(|t| t.count).sum::<i64>(),
        "succeeded_count": succeeded.map_or(0, |t| t.count),
        "count_by_status": by_status,
        "months": months,
        "points": points,
    })))
}
