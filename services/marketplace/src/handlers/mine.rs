//! A customer's own automations: list, add (with the demo grant), view, bot token.

use actix_web::{HttpResponse, web, web::Bytes};
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel_async::AsyncConnection;
use serde::Deserialize;
use serde_json::json;
use zimmer_events::contracts::internal::nullable;
use zimmer_http::{ApiError, HttpResult};
use zimmer_jwt::CurrentUser;

use super::{UserAutomationView, optional_json};
use crate::{
    AppState,
    domain::bot_token,
    local_cache::{self, json_ok},
    ops,
    queries::user_automations,
};

/// The caller's automations with balances: a bare array (docs/panels.md), few per customer.
/// Kept in memory per user for a moment (`local_cache`: this process's own changes forget it).
pub async fn list(user: CurrentUser, state: web::Data<AppState>) -> HttpResult {
    listed(&state, user.id, false).await
}

/// The same, status `active` only.
pub async fn list_active(user: CurrentUser, state: web::Data<AppState>) -> HttpResult {
    listed(&state, user.id, true).await
}

/// The list of the authenticated `user_id`: the key is the verified token's user, so an
/// entry can only ever answer that user.
async fn listed(state: &AppState, user_id: i64, active_only: bool) -> HttpResult {
    let key = (user_id, active_only);
    if let Some(body) = state.mine.get(&key) {
        return Ok(json_ok(body));
    }
    let ticket = state.mine.ticket();
    let items = {
        let mut conn = state.platform.pool.get().await?;
        user_automations::list(&mut conn, user_id, active_only).await?
    };
    let body = Bytes::from(serde_json::to_vec(&items).map_err(ApiError::internal)?);
    state.mine.store(key, body.clone(), ticket);
    Ok(json_ok(body))
}

fn not_added() -> ApiError {
    ApiError::not_found("You have not added this automation")
}

/// `GET /api/user/automations/{automation_id}` (the automation's id: one per customer).
pub async fn get(
    user: CurrentUser,
    state: web::Data<AppState>,
    path: web::Path<i64>,
) -> HttpResult {
    let mut conn = state.platform.pool.get().await?;
    let (ua, automation) = user_automations::owned(&mut conn, user.id, path.into_inner())
        .await?
        .ok_or_else(not_added)?;
    Ok(HttpResponse::Ok().json(
        json!({ "user_automation": UserAutomationView::new(ua, automation, &state.bot_tokens) }),
    ))
}

/// `POST /api/user/automations/{automation_id}` (no body): adds a listed, active automation
/// with its demo tokens, granted through the ledger (`demo:<user automation id>`), and emits
/// `user_automation.created`, all in one transaction; provisioning follows in the background.
pub async fn add(
    user: CurrentUser,
    state: web::Data<AppState>,
    path: web::Path<i64>,
) -> HttpResult {
    let automation_id = path.into_inner();
    let threshold = state.config.low_tokens_threshold;
    let mut conn = state.platform.pool.get().await?;
    let (ua, automation) =
        ops::user_automations::add(&mut conn, user.id, automation_id, threshold).await?;
    local_cache::forget_user(&state.mine, user.id);
    let view = UserAutomationView::new(ua, automation, &state.bot_tokens);
    state.provisioner.wake();
    Ok(HttpResponse::Created().json(json!({ "user_automation": view })))
}

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[schema(as = UserAutomationUpdate)]
pub struct UpdateBody {
    /// Absent: unchanged; `null` or empty: disconnect the bot; a token: connect it.
    #[serde(default, deserialize_with = "nullable::deserialize")]
    pub telegram_bot_token: Option<Option<String>>,
}

/// `PUT /api/user/automations/{automation_id}` `{telegram_bot_token?}`: format-checked,
/// unique across the platform, never answered in full; a change queues provisioning.
pub async fn update(
    user: CurrentUser,
    state: web::Data<AppState>,
    path: web::Path<i64>,
    raw: web::Bytes,
) -> HttpResult {
    let body: UpdateBody = optional_json(&raw)?;
    let new_token = match body.telegram_bot_token {
        None => None,
        Some(None) => Some(None),
        Some(Some(t)) if t.trim().is_empty() => Some(None),
        Some(Some(t)) => Some(Some(
            bot_token::validate(&t).map_err(|m| ApiError::invalid("telegram_bot_token", m))?,
        )),
    };
    let automation_id = path.into_inner();
    let vault = &state.bot_tokens;
    let mut conn = state.platform.pool.get().await?;
    let (view, changed) = conn
        .transaction(async |conn| {
            let (ua, automation) = user_automations::owned(conn, user.id, automation_id)
                .await?
                .ok_or_else(not_added)?;
            let Some(token) = new_token else {
                return Ok::<_, ApiError>((UserAutomationView::new(ua, automation, vault), false));
            };
            let new_hash = token.as_deref().map(|t| vault.fingerprint(t));
            if ua.telegram_bot_token_hash == new_hash && ua.telegram_bot_token.is_none() {
                return Ok((UserAutomationView::new(ua, automation, vault), false));
            }
            // Stored sealed (bound to this row) with its keyed hash; the hash's unique index
            // keeps one bot on one automation.
            let sealed = token
                .as_deref()
                .map(|t| vault.seal(ua.id, t))
                .transpose()
                .map_err(ApiError::internal)?;
            let ua = user_automations::set_bot_token(conn, ua.id, sealed.as_ref())
                .await
                .map_err(|e| match e {
                    DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _) => {
                        ApiError::conflict(
                            "bot_token_in_use",
                            "This bot token is already connected to an automation",
                        )
                    }
                    other => other.into(),
                })?;
            Ok((UserAutomationView::new(ua, automation, vault), true))
        })
        .await?;
    if changed {
        local_cache::forget_user(&state.mine, user.id);
        state.provisioner.wake();
    }
    Ok(HttpResponse::Ok().json(json!({ "user_automation": view })))
}
