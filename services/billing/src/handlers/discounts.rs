//! `POST /api/discounts/validate`: what a code would take off, before buying. It reserves
//! nothing; the purchase checks the code again under a lock.
//!
//! Rate-limited per user and per client IP (`DISCOUNT_VALIDATE_LIMIT` per
//! `DISCOUNT_VALIDATE_WINDOW_SECS`, each counted on its own), so codes cannot be found by
//! guessing: 429 with `Retry-After`. When Redis is down the check fails open (logged): guessing
//! is slowed, not made possible, by the limit, and the purchase enforces a code's limits in
//! PostgreSQL whatever happens here.

use actix_web::{HttpRequest, HttpResponse, web};
use chrono::Utc;
use serde::Deserialize;
use serde_json::Value;
use zimmer_http::{ApiError, HttpResult, client_ip, validate::Validator};
use zimmer_jwt::CurrentUser;

use super::int_value;
use crate::{
    AppState,
    domain::{self, DiscountRefusal},
    queries,
};

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct ValidateBody {
    #[serde(default)]
    pub code: Option<String>,
    #[serde(default)]
    pub automation_id: Option<Value>,
    #[serde(default)]
    pub tokens: Option<Value>,
    /// The panel may send the amount it shows instead of tokens; it only feeds the preview.
    #[serde(default)]
    pub amount: Option<Value>,
}

/// Counts this check against the caller's and the IP's budgets; 429 when either is spent.
async fn rate_limit(st: &AppState, user_id: i64, ip: Option<&str>) -> Result<(), ApiError> {
    let config = &st.billing.config;
    if config.validate_limit == 0 {
        return Ok(());
    }
    let mut keys = vec![format!("billing:validate:user:{user_id}")];
    if let Some(ip) = ip {
        keys.push(format!("billing:validate:ip:{ip}"));
    }
    let mut retry_after: Option<u64> = None;
    for key in &keys {
        match st
            .platform
            .redis
            .rate_limit(key, config.validate_limit, config.validate_window)
            .await
        {
            Ok(d) if !d.allowed => {
                retry_after = Some(retry_after.unwrap_or(0).max(d.retry_after));
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %e, key, "discount validation rate limit unavailable; allowing");
            }
        }
    }
    // `{"detail", "code": "rate_limited"}` with `Retry-After`, like every rate limit here.
    match retry_after {
        None => Ok(()),
        Some(secs) => Err(ApiError::too_many_requests(secs)),
    }
}

pub async fn validate(
    req: HttpRequest,
    user: CurrentUser,
    state: web::Data<AppState>,
    body: web::Json<ValidateBody>,
) -> HttpResult {
    rate_limit(&state, user.id, client_ip(&req).as_deref()).await?;
    let max_tokens = state.billing.config.max_tokens;
    let mut v = Validator::new();
    let code = domain::normalize_code(body.code.as_deref());
    if code.is_none() {
        v.error("code", "is required");
    }
    let automation_id = v
        .check("automation_id", int_value(body.automation_id.as_ref()))
        .flatten();
    let tokens = v.check("tokens", int_value(body.tokens.as_ref())).flatten();
    let amount = v.check("amount", int_value(body.amount.as_ref())).flatten();
    if let Some(t) = tokens
        && !(1..=max_tokens).contains(&t)
    {
        v.error("tokens", format!("must be between 1 and {max_tokens}"));
    }
    if amount.is_some_and(|a| a < 0) {
        v.error("amount", "must not be negative");
    }
    if tokens.is_some() && automation_id.is_none() {
        v.error("automation_id", "is required with tokens");
    }
    if tokens.is_none() && amount.is_none() {
        v.error("tokens", "tokens or amount is required");
    }
    v.finish()?;
    let Some(code) = code else {
        return Err(ApiError::invalid("code", "is required"));
    };

    let mut conn = state.billing.pool.get().await?;
    let amount_before = match (tokens, automation_id) {
        (Some(t), Some(a)) => {
            let automation = queries::automation_price(&mut conn, a)
                .await?
                .ok_or_else(|| ApiError::not_found("Automation not found"))?;
            domain::price(t, automation.price_per_token)
                .ok_or_else(|| ApiError::invalid("tokens", "is too many for one payment"))?
        }
        _ => amount.unwrap_or(0),
    };
    let discount = queries::discount_by_code(&mut conn, &code).await?;
    let verdict = match &discount {
        None => Err(DiscountRefusal::NotFound),
        Some(d) => {
            let usage = queries::discount_usage(&mut conn, d.id, Some(user.id)).await?;
            let scope = queries::discount_automations(&mut conn, d.id).await?;
            domain::check_discount(d, &scope, automation_id, usage, Utc::now())
        }
    };
    let (valid, percent, reason) = match (&verdict, &discount) {
        (Ok(()), Some(d)) => (true, d.percent_off, None),
        (Err(r), _) => (false, 0, Some(*r)),
        (Ok(()), None) => (false, 0, Some(DiscountRefusal::NotFound)),
    };
    let (amount_discount, amount_after) = domain::apply_percent(amount_before, percent);
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "valid": valid,
        "code": code,
        "percent_off": percent,
        "amount_before": amount_before,
        "amount_discount": amount_discount,
        "amount_after": amount_after,
        "reason": reason.map(DiscountRefusal::reason),
        "message": reason.map(DiscountRefusal::message),
    })))
}
