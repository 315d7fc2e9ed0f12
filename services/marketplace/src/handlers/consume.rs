//! `POST /api/automation-usage/consume`: an automation vendor spends a customer's tokens.
//!
//! This handler authenticates the caller's header and validates the body, then hands the call
//! to the consume batcher (`workers::consume_batcher`), which applies it with the calls that
//! arrived meanwhile in one transaction (`ops::consume`) and answers after the commit.
//! Exactness: the batch locks the user automations it touches (`SELECT … FOR UPDATE`) and
//! decides its calls one after another against the locked balances, so the balance can never
//! be overdrawn or charged twice. Idempotency: the ledger entry's source key is
//! `usage:<automation id>:<idempotency key>` and its meta stores the answer; a repeated key
//! gets that stored answer without a second charge. A refused call (not enough tokens)
//! changes nothing and stores nothing, so retrying it with the same key after a top-up can
//! succeed.

use actix_web::{HttpRequest, HttpResponse, web};
use diesel_async::AsyncPgConnection;
use serde::Deserialize;
use zimmer_http::{ApiError, HttpResult};

use super::json_body;
use crate::{
    AppState,
    domain::tokens::{SERVICE_TOKEN_HEADER, token_hash},
    ops::consume::{Call, Checked, Outcome, not_for_user_automation, unauthorized},
    queries::{automations, knowledge},
};

const KEY_MAX: usize = 200;
const USAGE_TYPE_MAX: usize = 64;
const META_MAX_BYTES: usize = 4096;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct ConsumeRequest {
    pub user_automation_id: i64,
    pub units: i64,
    #[serde(default)]
    pub usage_type: Option<String>,
    #[serde(default)]
    pub idempotency_key: Option<String>,
    #[serde(default)]
    pub meta: Option<serde_json::Value>,
}

fn valid_key(key: &str) -> bool {
    (1..=KEY_MAX).contains(&key.len()) && key.bytes().all(|b| (0x21..=0x7e).contains(&b))
}

fn has_nul(v: &serde_json::Value) -> bool {
    match v {
        serde_json::Value::String(s) => s.contains('\0'),
        serde_json::Value::Array(a) => a.iter().any(has_nul),
        serde_json::Value::Object(o) => o.iter().any(|(k, v)| k.contains('\0') || has_nul(v)),
        _ => false,
    }
}

fn check(req: &HttpRequest, body: ConsumeRequest, max_units: i64) -> Result<Checked, ApiError> {
    let mut v = zimmer_http::validate::Validator::new();
    if body.units <= 0 {
        v.error("units", "must be a positive whole number");
    } else if body.units > max_units {
        v.error("units", format!("must be at most {max_units} per call"));
    }
    if body.user_automation_id <= 0 {
        v.error("user_automation_id", "must be a positive id");
    }
    let usage_type = match body.usage_type.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(t)
            if t.len() <= USAGE_TYPE_MAX
                && t.bytes().all(|b| {
                    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b':')
                }) =>
        {
            Some(t.to_owned())
        }
        Some(_) => {
            v.error(
                "usage_type",
                "must be at most 64 of letters, digits, _ - . :",
            );
            None
        }
    };
    let header_key = req
        .headers()
        .get("idempotency-key")
        .and_then(|h| h.to_str().ok())
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty());
    let body_key = body
        .idempotency_key
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty());
    let key = match (body_key, header_key) {
        (Some(b), Some(h)) if b != h => {
            v.error("idempotency_key", "differs from the Idempotency-Key header");
            None
        }
        (b, h) => b.or(h),
    };
    if let Some(k) = &key
        && !valid_key(k)
    {
        v.error(
            "idempotency_key",
            "must be 1 to 200 visible ASCII characters",
        );
    }
    let meta = match body.meta {
        None | Some(serde_json::Value::Null) => None,
        Some(m @ serde_json::Value::Object(_)) => {
            if serde_json::to_vec(&m).map_or(usize::MAX, |b| b.len()) > META_MAX_BYTES {
                v.error("meta", "is larger than 4 KB");
            } else if has_nul(&m) {
                // PostgreSQL's jsonb cannot store U+0000.
                v.error("meta", "must not contain the character U+0000");
            }
            Some(m)
        }
        Some(_) => {
            v.error("meta", "must be an object");
            None
        }
    };
    v.finish()?;
    Ok(Checked {
        ua_id: body.user_automation_id,
        units: body.units,
        usage_type,
        key,
        meta,
    })
}

/// The `X-Zimmer-Service-Token` of the request, else 401.
fn service_token(req: &HttpRequest) -> Result<&str, ApiError> {
    req.headers()
        .get(SERVICE_TOKEN_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| unauthorized("Service token required", "service_token_required"))
}

fn invalid_token() -> ApiError {
    unauthorized("Invalid service token", "invalid_service_token")
}

/// The automation whose `X-Zimmer-Service-Token` the request carries: `(id, status)`, else 401.
/// Every vendor route (consumption, knowledge, fallback reports) authenticates with this
/// before looking at the body or query: an unauthenticated caller learns nothing.
pub async fn vendor_automation(
    req: &HttpRequest,
    conn: &mut AsyncPgConnection,
) -> Result<(i64, String), ApiError> {
    let hash = token_hash(service_token(req)?);
    automations::by_token_hash(conn, &hash)
        .await?
        .ok_or_else(invalid_token)
}

/// The customer who owns user automation `user_automation_id`, when it is one of the vendor's
/// `automation_id` (from [`vendor_automation`]); else 401, as for consumption.
pub async fn vendor_customer(
    conn: &mut AsyncPgConnection,
    automation_id: i64,
    user_automation_id: i64,
) -> Result<i64, ApiError> {
    let (user_id, _) = knowledge::user_automation_owner(conn, user_automation_id)
        .await?
        .filter(|(_, a)| *a == automation_id)
        .ok_or_else(not_for_user_automation)?;
    Ok(user_id)
}

pub async fn consume(req: HttpRequest, state: web::Data<AppState>, raw: web::Bytes) -> HttpResult {
    let token_hash = token_hash(service_token(&req)?);
    let checked = json_body::<ConsumeRequest>(&raw)
        .and_then(|body| check(&req, body, state.config.consume_max_units));
    let checked = match checked {
        Ok(c) => c,
        Err(e) => {
            // The token of a valid call is checked in its batch's transaction; a caller
            // with a bad body hears 401 before anything about the body if its token is bad.
            let mut conn = state.platform.pool.get().await?;
            automations::by_token_hash(&mut conn, &token_hash)
                .await?
                .ok_or_else(invalid_token)?;
            return Err(e);
        }
    };
    let key = checked
        .key
        .clone()
        .unwrap_or_else(|| format!("auto-{}", uuid::Uuid::now_v7()));
    let outcome = state
        .consume
        .submit(Call {
            token_hash,
            checked,
            key,
        })
        .await?;
    let label = match &outcome {
        Outcome::Answered(a) if a.accepted => "accepted",
        Outcome::Answered(_) => "refused",
        Outcome::Replayed(_) => "replayed",
    };
    state.consume_total.with_label_values(&[label]).inc();
    match outcome {
        Outcome::Answered(a) => Ok(HttpResponse::Ok().json(a)),
        Outcome::Replayed(a) => Ok(HttpResponse::Ok()
            .insert_header(("Idempotent-Replayed", "true"))
            .json(a)),
    }
}
