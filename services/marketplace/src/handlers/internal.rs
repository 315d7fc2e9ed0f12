//! The internal API for the admin service (`/internal/...`: never routed by the gateway, and
//! `InternalCaller` requires the shared service credential). Admin records what it did in its
//! own audit log; these handlers are the only writers of the marketplace's tables.

use actix_web::{HttpResponse, HttpResponseBuilder, web};
use chrono::Utc;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use zimmer_db::models::marketplace::{AutomationChanges, NewAutomation};
use zimmer_events::contracts::internal::automations::{
    Automation, AutomationDeleted, AutomationInput, IssuedServiceToken, Secret,
    ServiceTokenRemoved, masked, service_token_tail,
};
use zimmer_events::contracts::internal::tokens::AdjustRequest;
use zimmer_http::{ApiError, HttpResult, InternalCaller, validate};

use super::json_body;
use crate::{
    AppState,
    domain::{
        automations as rules,
        tokens::{new_service_token, token_hash},
    },
    ops,
    queries::automations,
};

/// `GET /internal/automations` → `[Automation]`, listed or not.
pub async fn list(_: InternalCaller, state: web::Data<AppState>) -> HttpResult {
    let mut conn = state.platform.pool.get().await?;
    let all: Vec<Automation> = automations::all(&mut conn)
        .await?
        .into_iter()
        .map(Automation::from)
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
        .ok_or_else(not_found)?;
    Ok(HttpResponse::Ok().json(Automation::from(a)))
}

fn not_found() -> ApiError {
    ApiError::not_found("Automation not found")
}

/// Vendor URLs must lead to public addresses (see `outbound`): a URL that is, or whose host
/// name resolves to, a loopback, private, link-local or otherwise internal address is refused
/// with 422 before anything is stored. The workers check again on every call.
async fn check_destinations(state: &AppState, c: &AutomationChanges) -> Result<(), ApiError> {
    let mut v = validate::Validator::new();
    for (field, url) in rules::urls(c) {
        if let Some(Some(url)) = url
            && let Err(refused) = state.config.outbound.check_url(url).await
        {
            v.error(field, refused.0);
        }
    }
    v.finish()
}

/// The one unique column a write can collide on is the token hash: a chosen token that is
/// some automation's token already.
fn token_in_use(e: DieselError) -> ApiError {
    match e {
        DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _) => ApiError::conflict(
            "service_token_in_use",
            "This service token is already in use; generate a new one",
        ),
        e => e.into(),
    }
}

/// A URL of a create: absent and cleared are both "none".
fn url(u: &Option<Option<String>>) -> Option<&str> {
    u.as_ref().and_then(|u| u.as_deref())
}

/// `POST /internal/automations` [`AutomationInput`] → 201 [`Automation`]. A `service_token`
/// (the wizard's) is stored as its hash and tail, exactly as an issued one.
pub async fn create(_: InternalCaller, state: web::Data<AppState>, raw: web::Bytes) -> HttpResult {
    let input: AutomationInput = json_body(&raw)?;
    let rules::Checked { changes: c, token } = rules::check(input, true)?;
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
        provision_url: url(&c.provision_url),
        health_check_url: url(&c.health_check_url),
        api_base_url: url(&c.api_base_url),
        api_usage_url: url(&c.api_usage_url),
        api_kb_status_url: url(&c.api_kb_status_url),
        api_kb_reset_url: url(&c.api_kb_reset_url),
        dashboard_url: url(&c.dashboard_url),
        service_token_hash: token.as_ref().map(|(h, _)| h.as_slice()),
        service_token_tail: token.as_ref().map(|(_, t)| t.as_str()),
    };
    let mut conn = state.platform.pool.get().await?;
    let created = automations::insert(&mut conn, &new)
        .await
        .map_err(token_in_use)?;
    drop(conn);
    written(&state, HttpResponse::Created(), created).await
}

/// `PUT|PATCH /internal/automations/{id}` [`AutomationInput`] → [`Automation`]: only the
/// fields sent change (never `is_listed` or health otherwise).
pub async fn update(
    _: InternalCaller,
    state: web::Data<AppState>,
    path: web::Path<i64>,
    raw: web::Bytes,
) -> HttpResult {
    let input: AutomationInput = json_body(&raw)?;
    let c = rules::check(input, false)?.changes;
    check_destinations(&state, &c).await?;
    let mut conn = state.platform.pool.get().await?;
    let updated = automations::update(&mut conn, path.into_inner(), &c)
        .await?
        .ok_or_else(not_found)?;
    drop(conn);
    written(&state, HttpResponse::Ok(), updated).await
}

/// The answer to a write: the catalogue caches forget the old automation first (the
/// connection is back in the pool by then).
async fn written(
    state: &AppState,
    mut answer: HttpResponseBuilder,
    a: zimmer_db::models::marketplace::Automation,
) -> HttpResult {
    state.cache.invalidate().await;
    Ok(answer.json(Automation::from(a)))
}

/// Deletes an automation nobody has (and nothing else refers to); otherwise unlists it, so
/// the customers who have it keep it and their tokens. → [`AutomationDeleted`]
pub async fn delete(
    _: InternalCaller,
    state: web::Data<AppState>,
    path: web::Path<i64>,
) -> HttpResult {
    let id = path.into_inner();
    let mut conn = state.platform.pool.get().await?;
    automations::get(&mut conn, id)
        .await?
        .ok_or_else(not_found)?;
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
        AutomationDeleted {
            automation_id: id,
            deleted: true,
            unlisted: false,
            message: "The automation was deleted".to_owned(),
            automation: None,
        }
    } else {
        let changes = AutomationChanges {
            is_listed: Some(false),
            updated_at: Some(Utc::now()),
            ..AutomationChanges::default()
        };
        let a = automations::update(&mut conn, id, &changes)
            .await?
            .ok_or_else(not_found)?;
        AutomationDeleted {
            automation_id: id,
            deleted: false,
            unlisted: true,
            message: "Customers still use this automation: it was unlisted instead of deleted"
                .to_owned(),
            automation: Some(Automation::from(a)),
        }
    };
    drop(conn);
    state.cache.invalidate().await;
    Ok(HttpResponse::Ok().json(answer))
}

/// `POST /internal/automations/{id}/service-token` → 201 [`IssuedServiceToken`]: answered
/// this once (only its SHA-256 and last four characters are kept); the previous token stops
/// working at once, and the new one works at once for consumption and request signing (both
/// use the stored hash).
pub async fn issue_service_token(
    _: InternalCaller,
    state: web::Data<AppState>,
    path: web::Path<i64>,
) -> HttpResult {
    let id = path.into_inner();
    let token = new_service_token();
    let tail = service_token_tail(&token);
    let mut conn = state.platform.pool.get().await?;
    if !automations::set_token_hash(&mut conn, id, &token_hash(&token), &tail).await? {
        return Err(not_found());
    }
    Ok(HttpResponse::Created()
        .insert_header(("Cache-Control", "no-store"))
        .json(IssuedServiceToken {
            automation_id: id,
            service_token: Secret::new(token),
            service_token_masked: masked(&tail),
            issued_at: Utc::now(),
        }))
}

/// `DELETE /internal/automations/{id}/service-token` → [`ServiceTokenRemoved`]: the
/// automation has no token any more (consumption answers 401); it stays listed.
pub async fn remove_service_token(
    _: InternalCaller,
    state: web::Data<AppState>,
    path: web::Path<i64>,
) -> HttpResult {
    let id = path.into_inner();
    let mut conn = state.platform.pool.get().await?;
    let removed = automations::clear_token(&mut conn, id)
        .await?
        .ok_or_else(not_found)?;
    Ok(HttpResponse::Ok().json(ServiceTokenRemoved {
        automation_id: id,
        removed,
        message: if removed {
            "The service token was removed; calls with it are refused from now on".to_owned()
        } else {
            "The automation had no service token".to_owned()
        },
    }))
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
        .ok_or_else(not_found)?;
    Ok(HttpResponse::Ok().json(report))
}

/// `POST /internal/tokens/adjust`: a staff adjustment of the paid balance through the ledger
/// (`adjust:<idempotency key>`): 201 when applied, 200 with the same answer when the key was
/// applied before, 409 when the key was used for something else or the balance would go
/// below zero, 403 `self_adjustment` when the actor owns the user automation. Emits
/// `tokens.adjusted`.
pub async fn adjust(_: InternalCaller, state: web::Data<AppState>, raw: web::Bytes) -> HttpResult {
    let body: AdjustRequest = json_body(&raw)?;
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
    // Committed: customers' lists in memory show the new balance (staff adjustments are rare).
    state.mine.forget_all();
    if replayed {
        Ok(HttpResponse::Ok()
            .insert_header(("Idempotent-Replayed", "true"))
            .json(answer))
    } else {
        Ok(HttpResponse::Created().json(answer))
    }
}
