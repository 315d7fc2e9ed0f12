//! HTTP handlers of auth, and the pieces several of them share: the user and token answers,
//! the refresh cookie, session creation and the revocation event.

pub mod account;
pub mod internal;
pub mod keys;
pub mod session;

use actix_web::{
    HttpRequest, HttpResponse,
    cookie::{Cookie, SameSite, time::Duration as CookieDuration},
    http::StatusCode,
};
use chrono::{DateTime, Utc};
use diesel_async::AsyncPgConnection;
use serde::Serialize;
use uuid::Uuid;
use zimmer_db::models::{NewSession, Session, User};
use zimmer_http::ApiError;
use zimmer_jwt::Role;

use crate::{
    AppState,
    domain::tokens::{access_claims, new_refresh_token, token_hash},
    queries,
};

pub const REFRESH_COOKIE: &str = "zimmer_refresh";
pub const PRODUCER: &str = "auth";

/// The user as every client sees it: login/signup/2FA answers and `/api/me` (clients.md reads
/// `is_admin`, `phone_number`, `email_verified_at`, `created_at` in both).
#[derive(Debug, Serialize)]
pub struct UserView {
    pub id: i64,
    pub name: String,
    pub email: String,
    pub phone_number: Option<String>,
    pub role: String,
    pub is_admin: bool,
    pub is_active: bool,
    pub email_verified: bool,
    pub email_verified_at: Option<DateTime<Utc>>,
    pub twofa_enabled: bool,
    pub created_at: DateTime<Utc>,
}

impl From<User> for UserView {
    fn from(u: User) -> Self {
        let is_admin = u.role.parse::<Role>().is_ok_and(Role::is_staff);
        Self {
            id: u.id,
            name: u.name,
            email: u.email,
            phone_number: u.phone_number,
            role: u.role,
            is_admin,
            is_active: u.is_active,
            email_verified: u.email_verified_at.is_some(),
            email_verified_at: u.email_verified_at,
            twofa_enabled: u.twofa_enabled,
            created_at: u.created_at,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct TokenAnswer {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: u64,
    pub user: UserView,
    /// Only for clients that are not browsers (no `Origin` header): a browser keeps the
    /// refresh token in the HttpOnly cookie, where scripts cannot read it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
}

/// Who is asking, for the session list.
pub struct ClientMeta {
    pub user_agent: Option<String>,
    pub ip: Option<String>,
    pub is_browser: bool,
}

impl ClientMeta {
    pub fn of(req: &HttpRequest) -> Self {
        let user_agent = req
            .headers()
            .get("user-agent")
            .and_then(|v| v.to_str().ok())
            .map(|s| s.chars().take(512).collect());
        // The gateway sets X-Real-IP to the client's address; services are not exposed.
        let ip = req
            .headers()
            .get("x-real-ip")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
            .or_else(|| req.peer_addr().map(|a| a.ip().to_string()));
        Self {
            user_agent,
            ip,
            is_browser: req.headers().contains_key("origin"),
        }
    }
}

/// A new session for `user` inside the caller's transaction; returns it with its refresh token.
pub async fn open_session(
    conn: &mut AsyncPgConnection,
    state: &AppState,
    user_id: i64,
    meta: &ClientMeta,
) -> Result<(Session, String), ApiError> {
    let refresh = new_refresh_token();
    let ttl = chrono::Duration::from_std(state.platform.settings.jwt.refresh_ttl)
        .map_err(ApiError::internal)?;
    let session = queries::create_session(
        conn,
        &NewSession {
            id: Uuid::now_v7(),
            user_id,
            user_agent: meta.user_agent.as_deref(),
            ip: meta.ip.as_deref(),
            expires_at: Utc::now() + ttl,
        },
        &token_hash(&refresh),
    )
    .await?;
    Ok((session, refresh))
}

/// The answer of login, signup and refresh: a new access token, the user, and the refresh
/// token in its cookie (and, for non-browser clients, in the body).
pub fn token_response(
    state: &AppState,
    status: StatusCode,
    user: User,
    session_id: Uuid,
    refresh: String,
    meta: &ClientMeta,
) -> Result<HttpResponse, ApiError> {
    let role = user
        .role
        .parse::<Role>()
        .map_err(|()| ApiError::internal(anyhow::anyhow!("unknown role {}", user.role)))?;
    let jwt = &state.platform.settings.jwt;
    let access_token = state
        .signer
        .sign(&access_claims(user.id, role, session_id, jwt))?;
    let cookie = refresh_cookie(state, &refresh);
    Ok(HttpResponse::build(status)
        .cookie(cookie)
        .json(TokenAnswer {
            access_token,
            token_type: "bearer",
            expires_in: jwt.access_ttl.as_secs(),
            user: user.into(),
            refresh_token: (!meta.is_browser).then_some(refresh),
        }))
}

pub fn refresh_cookie<'a>(state: &AppState, value: &'a str) -> Cookie<'a> {
    let max_age = i64::try_from(state.platform.settings.jwt.refresh_ttl.as_secs()).unwrap_or(0);
    Cookie::build(REFRESH_COOKIE, value)
        .path("/api/auth")
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(state.platform.settings.cookie_secure)
        .max_age(CookieDuration::seconds(max_age))
        .finish()
}

pub fn clear_refresh_cookie(state: &AppState) -> Cookie<'static> {
    let mut c = refresh_cookie(state, "").into_owned();
    c.make_removal();
    c
}

/// Cookie-authenticated requests are accepted only from the allowed origins (api.md): a page
/// elsewhere cannot make the browser refresh or log out on its behalf.
pub fn check_cookie_origin(req: &HttpRequest, state: &AppState) -> Result<(), ApiError> {
    match req.headers().get("origin").map(|v| v.to_str()) {
        None => Ok(()),
        Some(Ok(origin))
            if state
                .platform
                .settings
                .origin_allowed(origin.trim_end_matches('/')) =>
        {
            Ok(())
        }
        Some(_) => Err(ApiError::forbidden("Origin not allowed")),
    }
}

/// Records `session.revoked` for each session in the outbox (same transaction as the revoke).
pub async fn enqueue_revoked(
    conn: &mut AsyncPgConnection,
    state: &AppState,
    sessions: &[Session],
) -> Result<(), ApiError> {
    let ttl = chrono::Duration::from_std(state.platform.settings.jwt.access_ttl)
        .map_err(ApiError::internal)?;
    for s in sessions {
        zimmer_events::enqueue(
            conn,
            PRODUCER,
            "session.revoked",
            &serde_json::json!({
                "session_id": s.id,
                "user_id": s.user_id,
                // No access token of this session outlives this instant.
                "expires_at": Utc::now() + ttl,
            }),
        )
        .await?;
    }
    Ok(())
}

/// After commit: this instance rejects the sessions' tokens at once, before the event
/// comes back around through the broker.
pub fn revoke_locally(state: &AppState, sessions: &[Session]) {
    let until = Utc::now().timestamp()
        + i64::try_from(state.platform.settings.jwt.access_ttl.as_secs()).unwrap_or(3600);
    for s in sessions {
        state.platform.auth.revocations.revoke_session(s.id, until);
    }
}
