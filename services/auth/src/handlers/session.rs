//! Refresh-token rotation, logout and the session list.

use actix_web::{
    HttpRequest, HttpResponse,
    cookie::{Cookie, SameSite},
    web,
};
use chrono::{DateTime, Utc};
use diesel_async::AsyncConnection;
use serde::{Deserialize, Serialize};
use uuid::Uuid;
use zimmer_http::{ApiError, HttpResult, optional_json};
use zimmer_jwt::{CurrentUser, bearer_token};

use super::{
    ClientMeta, REFRESH_COOKIE, TokensFor, check_cookie_origin, clear_refresh_cookie,
    enqueue_revoked, revoke_locally, token_response,
};
use crate::{
    AppState,
    domain::tokens::{new_refresh_token, random_token, token_hash},
    ops,
    queries::{self, Rotation},
};

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
pub struct RefreshBody {
    #[serde(default)]
    pub refresh_token: Option<String>,
}

/// The refresh token from the body (native clients) or the cookie (browsers, origin-checked).
fn presented_refresh_token(
    req: &HttpRequest,
    state: &AppState,
    from_body: Option<&str>,
) -> Result<Option<String>, ApiError> {
    if let Some(token) = from_body.filter(|t| !t.is_empty()) {
        return Ok(Some(token.to_owned()));
    }
    match req.cookie(REFRESH_COOKIE) {
        Some(c) if !c.value().is_empty() => {
            check_cookie_origin(req, state)?;
            Ok(Some(c.value().to_owned()))
        }
        _ => Ok(None),
    }
}

pub async fn refresh(req: HttpRequest, state: web::Data<AppState>, raw: web::Bytes) -> HttpResult {
    let st = state.get_ref();
    // The panel sends no body (cookies only); a native client sends `{refresh_token}`.
    let body: RefreshBody = optional_json(&raw)?;
    let token = presented_refresh_token(&req, st, body.refresh_token.as_deref())?
        .ok_or_else(|| ApiError::unauthorized("Refresh token required"))?;
    let new_refresh = new_refresh_token();
    let old_hash = token_hash(&token);
    let new_hash = token_hash(&new_refresh);
    let mut conn = st.platform.pool.get().await?;
    enum Outcome {
        Rotated(Box<(zimmer_db::models::User, zimmer_db::models::Session)>),
        ReuseDetected(Vec<zimmer_db::models::Session>),
        Refused,
    }
    let outcome = conn
        .transaction(async |conn| {
            match queries::rotate_refresh_token(conn, &old_hash, &new_hash).await? {
                Rotation::Rotated(session) => {
                    match queries::user_by_id(conn, session.user_id).await? {
                        Some(user) if user.is_active => {
                            Ok(Outcome::Rotated(Box::new((user, session))))
                        }
                        _ => Ok(Outcome::Refused),
                    }
                }
                Rotation::Reused(session_id) => {
                    // A rotated token came back: whoever holds the family now may be an
                    // attacker, so the whole session ends.
                    let revoked: Vec<_> =
                        queries::revoke_session(conn, session_id, None, "refresh_token_reuse")
                            .await?
                            .into_iter()
                            .collect();
                    enqueue_revoked(conn, st, &revoked).await?;
                    Ok::<_, ApiError>(Outcome::ReuseDetected(revoked))
                }
                Rotation::Dead | Rotation::Unknown => Ok(Outcome::Refused),
            }
        })
        .await?;
    match outcome {
        Outcome::Rotated(rotated) => {
            let (user, session) = *rotated;
            let meta = ClientMeta::of(&req);
            token_response(st, TokensFor::SignIn, user, &session, new_refresh, &meta)
        }
        Outcome::ReuseDetected(revoked) => {
            revoke_locally(st, &revoked);
            tracing::warn!(
                sessions = revoked.len(),
                "refresh token reuse: session revoked"
            );
            Err(
                ApiError::unauthorized("Refresh token reuse detected; please log in again")
                    .with_code("refresh_reuse"),
            )
        }
        Outcome::Refused => Err(ApiError::unauthorized("Invalid or expired refresh token")),
    }
}

pub async fn csrf(state: web::Data<AppState>) -> HttpResponse {
    let token = random_token(32);
    // Readable by the page (not HttpOnly): it is echoed in X-CSRF-Token by clients that use it.
    let cookie = Cookie::build("csrf_token", token.clone())
        .path("/")
        .same_site(SameSite::Strict)
        .secure(state.platform.settings.cookie_secure)
        .finish();
    HttpResponse::Ok()
        .cookie(cookie)
        .json(serde_json::json!({ "csrf_token": token }))
}

/// Ends this session: named by the Bearer token, or by the refresh cookie alone (the panel
/// logs out with cookies only). Answers 204 also when the session had already ended.
pub async fn logout(req: HttpRequest, state: web::Data<AppState>) -> HttpResult {
    let st = state.get_ref();
    let mut session_id = None;
    if let Some(token) = bearer_token(&req) {
        // An expired access token should not stop a logout that has a valid cookie.
        if let Ok(user) = st.platform.auth.authenticate(token).await {
            session_id = Some((user.session_id, Some(user.id)));
        }
    }
    let mut conn = st.platform.pool.get().await?;
    if session_id.is_none() {
        if let Some(token) = presented_refresh_token(&req, st, None)? {
            session_id = queries::session_of_refresh_token(&mut conn, &token_hash(&token))
                .await?
                .map(|s| (s.id, Some(s.user_id)));
        } else if bearer_token(&req).is_none() {
            return Err(ApiError::unauthorized("Authentication required"));
        }
    }
    drop(conn);
    if let Some((sid, user_id)) = session_id {
        ops::sessions::revoke(st, sid, user_id, "logout").await?;
    }
    Ok(HttpResponse::NoContent()
        .cookie(clear_refresh_cookie(st))
        .finish())
}

pub async fn logout_all(user: CurrentUser, state: web::Data<AppState>) -> HttpResult {
    let st = state.get_ref();
    let revoked = ops::sessions::revoke_all(st, user.id, "logout_all").await?;
    Ok(HttpResponse::Ok()
        .cookie(clear_refresh_cookie(st))
        .json(serde_json::json!({ "revoked_sessions": revoked.len() })))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SessionView {
    pub id: Uuid,
    pub user_agent: Option<String>,
    pub ip: Option<String>,
    pub created_at: DateTime<Utc>,
    pub last_used_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub current: bool,
}

pub async fn list(user: CurrentUser, state: web::Data<AppState>) -> HttpResult {
    let mut conn = state.platform.pool.get().await?;
    let sessions = queries::active_sessions(&mut conn, user.id).await?;
    let items: Vec<SessionView> = sessions
        .into_iter()
        .map(|s| SessionView {
            current: s.id == user.session_id,
            id: s.id,
            user_agent: s.user_agent,
            ip: s.ip,
            created_at: s.created_at,
            last_used_at: s.last_used_at,
            expires_at: s.expires_at,
        })
        .collect();
    Ok(HttpResponse::Ok().json(items))
}

/// Revokes one of the caller's own sessions; another user's session id answers 404.
pub async fn revoke(
    user: CurrentUser,
    state: web::Data<AppState>,
    path: web::Path<Uuid>,
) -> HttpResult {
    let st = state.get_ref();
    let sid = path.into_inner();
    let revoked = ops::sessions::revoke(st, sid, Some(user.id), "revoked_by_user").await?;
    if revoked.is_empty() {
        return Err(ApiError::not_found("Session not found"));
    }
    Ok(HttpResponse::NoContent().finish())
}
