//! The internal API for the admin service (`/internal/...`: never routed by the gateway, and
//! `InternalCaller` requires the shared service credential). Admin records what it did in its
//! own audit log; these handlers are the only writers of the marketplace's tables.

use actix_web::{HttpResponse, web};
use chrono::Utc;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use serde::Deserialize;
use serde_json::json;
use zimmer_db::models::marketplace::{AutomationChanges, NewAutomation};
use zimmer_http::{ApiError, HttpResult, InternalCaller, validate};

use super::{double_option, json_body};
use crate::{
    AppState,
    domain::tokens::{new_service_token, token_hash},
    ops::{self, adjust::AdjustBody},
    queries::automations::{self, AdminAutomation},
};

const PRICING_TYPES: [&str; 3] = ["token_per_session", "token_per_step", "flat_fee"];
const STATUSES: [&str; 2] = ["active", "inactive"];
/// 10^12 Rials: far above any real per-token price, far below BIGINT overflow in totals.
const MAX_PRICE: i64 = 1_000_000_000_000;
const MAX_DEMO_TOKENS: i64 = 100_000;

/// Fields of an automation; on update, absent fields stay as they are and `null` clears a
/// URL.
#[derive(Debug, Default, Deserialize)]
pub struct AutomationInput {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub pricing_type: Option<String>,
    #[serde(default)]
    pub price_per_token: Option<i64>,
    #[serde(default)]
    pub demo_tokens: Option<i64>,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub is_listed: Option<bool>,
    #[serde(default, deserialize_with = "double_option")]
    pub provision_url: Option<Option<String>>,
    #[serde(default, deserialize_with = "double_option")]
    pub health_check_url: Option<Option<String>>,
}

fn check_url(
    v: &mut validate::Validator,
    field: &'static str,
    raw: Option<Option<String>>,
) -> Option<Option<String>> {
    match raw {
        None => None,
        Some(None) => Some(None),
        Some(Some(s)) if s.trim().is_empty() => Some(None),
        Some(Some(s)) => {
            let s = s.trim().to_owned();
            let ok = s.len() <= 2048
                && reqwest::Url::parse(&s).is_ok_and(|u| {
                    matches!(u.scheme(), "http" | "https") && u.host_str().is_some()
                });
            if ok {
                Some(Some(s))
            } else {
                v.error(field, "must be an http(s) URL");
                None
            }
        }
    }
}

/// Validates `input` into a change set; `creating` requires name and price.
fn changes(input: AutomationInput, creating: bool) -> Result<AutomationChanges, ApiError> {
    let mut v = validate::Validator::new();
    if creating && input.name.is_none() {
        v.error("name", "is required");
    }
    if creating && input.price_per_token.is_none() {
        v.error("price_per_token", "is required");
    }
    let name = input
        .name
        .and_then(|n| v.check("name", validate::line(&n, 200)));
    let description = match input.description {
        None => None,
        Some(d) if d.trim().is_empty() => Some(String::new()),
        Some(d) => v.check("description", validate::text(&d, 5000)),
    };
    if let Some(p) = &input.pricing_type
        && !PRICING_TYPES.contains(&p.as_str())
    {
        v.error(
            "pricing_type",
            "must be token_per_session, token_per_step or flat_fee",
        );
    }
    if let Some(p) = input.price_per_token
        && !(0..=MAX_PRICE).contains(&p)
    {
        v.error("price_per_token", "must be between 0 and 10^12 Rials");
    }
    if let Some(d) = input.demo_tokens
        && !(0..=MAX_DEMO_TOKENS).contains(&d)
    {
        v.error("demo_tokens", "must be between 0 and 100000");
    }
    if let Some(s) = &input.status
        && !STATUSES.contains(&s.as_str())
    {
        v.error("status", "must be active or inactive");
    }
    let provision_url = check_url(&mut v, "provision_url", input.provision_url);
    let health_check_url = check_url(&mut v, "health_check_url", input.health_check_url);
    v.finish()?;
    Ok(AutomationChanges {
        name,
        description,
        pricing_type: input.pricing_type,
        price_per_token: input.price_per_token,
        demo_tokens: input.demo_tokens,
        status: input.status,
        is_listed: input.is_listed,
        provision_url,
        health_check_url,
        updated_at: Some(Utc::now()),
    })
}

pub async fn list(_: InternalCaller, state: web::Data<AppState>) -> HttpResult {
    let mut conn = state.platform.pool.get().await?;
    let all: Vec<AdminAutomation> = automations::all(&mut conn)
        .await?
        .into_iter()
        .map(Into::into)
        .collect();
    Ok(HttpResponse::Ok().json(all))
}

pub async fn get(
    _: InternalCaller,
    state: web::Data<AppState>,
    path: web::Path<i64>,
) -> HttpResult {
    let mut conn = state.platform.pool.get().await?;
    let a = automations::get(&mut conn, path.into_inner())
        .await?
        .ok_or_else(|| ApiError::not_found("Automation not found"))?;
    Ok(HttpResponse::Ok().json(AdminAutomation::from(a)))
}

/// Vendor URLs must lead to public addresses (see `outbound`): a URL that is, or whose host
/// name resolves to, a loopback, private, link-local or otherwise internal address is refused
/// with 422 before anything is stored. The workers check again on every call.
async fn check_destinations(state: &AppState, c: &AutomationChanges) -> Result<(), ApiError> {
    let mut v = validate::Validator::new();
    for (field, url) in [
        ("provision_url", &c.provision_url),
        ("health_check_url", &c.health_check_url),
    ] {
        if let Some(Some(url)) = url
            && let Err(refused) = state.config.outbound.check_url(url).await
        {
            v.error(field, refused.0);
        }
    }
    v.finish()
}

pub async fn create(_: InternalCaller, state: web::Data<AppState>, raw: web::Bytes) -> HttpResult {
    let input: AutomationInput = json_body(&raw)?;
    let c = changes(input, true)?;
    check_destinations(&state, &c).await?;
    let (Some(name), Some(price)) = (c.name.as_deref(), c.price_per_token) else {
        return Err(ApiError::invalid("name", "is required"));
    };
    let new = NewAutomation {
        name,
        description: c.description.as_deref().unwrap_or(""),
        pricing_type: c.pricing_type.as_deref().unwrap_or("token_per_session"),
        price_per_token: price,
        demo_tokens: c.demo_tokens.unwrap_or(5),
        status: c.status.as_deref().unwrap_or("active"),
        is_listed: c.is_listed.unwrap_or(true),
        provision_url: c.provision_url.as_ref().and_then(|u| u.as_deref()),
        health_check_url: c.health_check_url.as_ref().and_then(|u| u.as_deref()),
    };
    let created = {
        let mut conn = state.platform.pool.get().await?;
        automations::insert(&mut conn, &new).await?
    };
    state.cache.invalidate().await;
    Ok(HttpResponse::Created().json(AdminAutomation::from(created)))
}

pub async fn update(
    _: InternalCaller,
    state: web::Data<AppState>,
    path: web::Path<i64>,
    raw: web::Bytes,
) -> HttpResult {
    let input: AutomationInput = json_body(&raw)?;
    let c = changes(input, false)?;
    check_destinations(&state, &c).await?;
    let updated = {
        let mut conn = state.platform.pool.get().await?;
        automations::update(&mut conn, path.into_inner(), &c)
            .await?
            .ok_or_else(|| ApiError::not_found("Automation not found"))?
    };
    state.cache.invalidate().await;
    Ok(HttpResponse::Ok().json(AdminAutomation::from(updated)))
}

/// Deletes an automation nobody has (and nothing else refers to); otherwise unlists it, so
/// the customers who have it keep it and their tokens.
pub async fn delete(
    _: InternalCaller,
    state: web::Data<AppState>,
    path: web::Path<i64>,
) -> HttpResult {
    let id = path.into_inner();
    let mut conn = state.platform.pool.get().await?;
    automations::get(&mut conn, id)
        .await?
        .ok_or_else(|| ApiError::not_found("Automation not found"))?;
    let deleted = if automations::has_users(&mut conn, id).await? {
        false
    } else {
        // Payments or discount codes may still refer to it (FK): then it is unlisted too.
        match automations::delete(&mut conn, id).await {
            Ok(n) => n == 1,
            Err(DieselError::DatabaseError(DatabaseErrorKind::ForeignKeyViolation, _)) => false,
            Err(e) => return Err(e.into()),
        }
    };
    let answer = if deleted {
        json!({ "deleted": true, "unlisted": false, "automation_id": id })
    } else {
        let changes = AutomationChanges {
            is_listed: Some(false),
            updated_at: Some(Utc::now()),
            ..AutomationChanges::default()
        };
        let a = automations::update(&mut conn, id, &changes)
            .await?
            .ok_or_else(|| ApiError::not_found("Automation not found"))?;
        json!({ "deleted": false, "unlisted": true, "automation_id": id, "automation": AdminAutomation::from(a) })
    };
    drop(conn);
    state.cache.invalidate().await;
    Ok(HttpResponse::Ok().json(answer))
}

/// Issues a new service token, answered this once (only its SHA-256 is kept); the previous
/// token stops working at once.
pub async fn issue_service_token(
    _: InternalCaller,
    state: web::Data<AppState>,
    path: web::Path<i64>,
) -> HttpResult {
    let id = path.into_inner();
    let token = new_service_token();
    let mut conn = state.platform.pool.get().await?;
    if !automations::set_token_hash(&mut conn, id, &token_hash(&token)).await? {
        return Err(ApiError::not_found("Automation not found"));
    }
    Ok(HttpResponse::Created()
        .insert_header(("Cache-Control", "no-store"))
        .json(json!({ "automation_id": id, "service_token": token })))
}

pub async fn health_check(
    _: InternalCaller,
    state: web::Data<AppState>,
    path: web::Path<i64>,
) -> HttpResult {
    let report = state
        .health
        .check_one(path.into_inner())
        .await?
        .ok_or_else(|| ApiError::not_found("Automation not found"))?;
    Ok(HttpResponse::Ok().json(report))
}

/// `POST /internal/tokens/adjust`: a staff adjustment of the paid balance through the ledger
/// (`adjust:<idempotency key>`): 201 when applied, 200 with the same answer when the key was
/// applied before, 409 when the key was used for something else or the balance would go
/// below zero, 403 `self_adjustment` when the actor owns the user automation. Emits
/// `tokens.adjusted`.
pub async fn adjust(_: InternalCaller, state: web::Data<AppState>, raw: web::Bytes) -> HttpResult {
    let body: AdjustBody = json_body(&raw)?;
    let mut v = validate::Validator::new();
    if body.delta == 0 {
        v.error("delta", "must not be zero");
    } else if body.delta.unsigned_abs() > state.config.adjust_max_delta.unsigned_abs() {
        v.error("delta", "is too large");
    }
    let reason = v.check("reason", validate::text(&body.reason, 500));
    let key = body.idempotency_key.trim().to_owned();
    if !(1..=200).contains(&key.len()) || !key.bytes().all(|b| (0x21..=0x7e).contains(&b)) {
        v.error(
            "idempotency_key",
            "must be 1 to 200 visible ASCII characters",
        );
    }
    if body.actor_id <= 0 {
        v.error("actor_id", "must be a user id");
    }
    v.finish()?;
    let reason = reason.unwrap_or_default();
    let source_key = format!("adjust:{key}");
    let threshold = state.config.low_tokens_threshold;
    let mut conn = state.platform.pool.get().await?;
    let (answer, replayed) =
        ops::adjust::adjust(&mut conn, &body, &key, &reason, &source_key, threshold).await?;
    if replayed {
        Ok(HttpResponse::Ok()
            .insert_header(("Idempotent-Replayed", "true"))
            .json(answer))
    } else {
        Ok(HttpResponse::Created().json(answer))
    }
}
