//! HTTP handlers of billing and the views they share.

pub mod callback;
pub mod discounts;
pub mod internal;
pub mod payments;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use zimmer_db::models::billing::Payment;

/// A payment as the panel and the admin read it (docs/panels.md lists `id, automation_id, amount,
/// tokens_purchased, gateway, method, transaction_id, ref_id, status, created_at,
/// description`; docs/api.md adds the discount and `verified_at`).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PaymentView {
    pub id: i64,
    pub automation_id: i64,
    pub automation_name: Option<String>,
    pub user_automation_id: i64,
    pub amount: i64,
    pub tokens_purchased: i64,
    pub gateway: String,
    pub method: String,
    pub status: String,
    pub ref_id: Option<i64>,
    pub transaction_id: Option<String>,
    pub authority: Option<String>,
    pub card_pan: Option<String>,
    pub discount_code: Option<String>,
    pub discount_percent: Option<i32>,
    pub description: Option<String>,
    pub failure_reason: Option<String>,
    pub created_at: DateTime<Utc>,
    pub verified_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
}

impl PaymentView {
    pub fn new(p: Payment, automation_name: Option<String>) -> Self {
        Self {
            id: p.id,
            automation_id: p.automation_id,
            automation_name,
            user_automation_id: p.user_automation_id,
            amount: p.amount,
            tokens_purchased: p.tokens_purchased,
            gateway: p.gateway,
            method: p.method,
            status: p.status,
            ref_id: p.ref_id,
            transaction_id: p.transaction_id,
            authority: p.authority,
            card_pan: p.card_pan,
            discount_code: p.discount_code,
            discount_percent: p.discount_percent,
            description: p.description,
            failure_reason: p.failure_reason,
            created_at: p.created_at,
            verified_at: p.verified_at,
            updated_at: p.updated_at,
        }
    }
}

/// An integer sent as a JSON number or a numeric string (form fields in the panel arrive as
/// strings); `Err` when present but not an integer.
pub fn int_value(v: Option<&Value>) -> Result<Option<i64>, &'static str> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n.as_i64().map(Some).ok_or("must be a whole number"),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) => s
            .trim()
            .parse::<i64>()
            .map(Some)
            .map_err(|_| "must be a whole number"),
        Some(_) => Err("must be a whole number"),
    }
}
