//! The fallback log (docs/panels.md "Fallback log"): vendors report a customer's message
//! their automation could not answer (`POST /api/automation-usage/fallback`, service token
//! checked as for consumption); admin lists them and resolves or reopens one through the
//! internal API (types in `zimmer_contracts::internal::knowledge`).

use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use zimmer_events::contracts::internal::knowledge::{
    Fallback, FallbackList, FallbackQuery, FallbackStatusChange, ListWindow,
};
use zimmer_http::{ApiError, HttpResult, InternalCaller};

use super::{
    consume::{vendor_automation, vendor_customer},
    json_body,
};
use crate::{
    AppState,
    domain::knowledge as rules,
    ops::fallbacks::{self as ops, Stored},
    queries::fallbacks as q,
};

/// `GET /internal/fallbacks?client_id=&offset=&limit=`: newest first.
pub async fn list(
    _: InternalCaller,
    state: web::Data<AppState>,
    query: web::Query<FallbackQuery>,
    window: web::Query<ListWindow>,
) -> HttpResult {
    let (offset, limit) = window.bounds();
    let mut conn = state.platform.pool.get().await?;
    let (rows, total) = q::list(&mut conn, query.client_id, offset, limit).await?;
    let items: Vec<Fallback> = rows.into_iter().map(Fallback::from).collect();
    Ok(HttpResponse::Ok().json(FallbackList { items, total }))
}

/// `PUT /internal/fallbacks/{id}` `{status, actor_id}`: resolve or reopen.
pub async fn set_status(
    _: InternalCaller,
    state: web::Data<AppState>,
    path: web::Path<i64>,
    raw: web::Bytes,
) -> HttpResult {
    let body: FallbackStatusChange = json_body(&raw)?;
    let status = rules::fallback_status(&body.status)?;
    if body.actor_id <= 0 {
        return Err(ApiError::invalid("actor_id", "must be a user id"));
    }
    let mut conn = state.platform.pool.get().await?;
    let row = q::set_status(&mut conn, path.into_inner(), status, body.actor_id)
        .await?
        .ok_or_else(|| ApiError::not_found("Fallback not found"))?;
    Ok(HttpResponse::Ok().json(Fallback::from(row)))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct ReportBody {
    pub user_automation_id: i64,
    pub message: String,
    #[serde(default)]
    pub error_type: Option<String>,
    #[serde(default)]
    pub idempotency_key: Option<String>,
}

#[derive(Debug, Serialize)]
struct ReportAnswer {
    id: i64,
}

/// `POST /api/automation-usage/fallback` (vendor) → 201 `{id}`; the same
/// `idempotency_key` again (body or `Idempotency-Key` header) → 200 with the same id and
/// `Idempotent-Replayed: true`, stored once; the key with another report → 409.
pub async fn report(req: HttpRequest, state: web::Data<AppState>, raw: web::Bytes) -> HttpResult {
    let mut conn = state.platform.pool.get().await?;
    let (automation_id, _status) = vendor_automation(&req, &mut conn).await?;
    let body: ReportBody = json_body(&raw)?;
    let header_key = req
        .headers()
        .get("idempotency-key")
        .and_then(|h| h.to_str().ok())
        .map(str::trim)
        .filter(|s| !s.is_empty());
    let body_key = body
        .idempotency_key
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty());
    if let (Some(b), Some(h)) = (body_key, header_key)
        && b != h
    {
        return Err(ApiError::invalid(
            "idempotency_key",
            "differs from the Idempotency-Key header",
        ));
    }
    let checked = rules::fallback(
        body.user_automation_id,
        &body.message,
        body.error_type.as_deref(),
        body_key.or(header_key),
    )?;
    let user_id = vendor_customer(&mut conn, automation_id, checked.user_automation_id).await?;
    match ops::report(&mut conn, &checked, user_id, automation_id).await? {
        Stored::Created(row) => Ok(HttpResponse::Created().json(ReportAnswer { id: row.id })),
        Stored::Replayed(row) => Ok(HttpResponse::Ok()
            .insert_header(("Idempotent-Replayed", "true"))
            .json(ReportAnswer { id: row.id })),
    }
}
