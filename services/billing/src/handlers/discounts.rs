//! `POST /api/discounts/validate`: what a code would take off, before buying. It reserves
//! nothing; the purchase checks the code again under a lock.

use actix_web::{HttpResponse, web};
use chrono::Utc;
use serde::Deserialize;
use serde_json::Value;
use zimmer_http::{ApiError, HttpResult, validate::Validator};
use zimmer_jwt::CurrentUser;

use super::int_value;
use crate::{
    AppState,
    domain::{self, DiscountRefusal},
    queries,
};

#[derive(Debug, Deserialize)]
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

pub async fn validate(
    user: CurrentUser,
    state: web::Data<AppState>,
    body: web::Json<ValidateBody>,
) -> HttpResult {
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
            domain::check_discount(d, automation_id, usage, Utc::now())
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
