//! HTTP handlers of auth, and the pieces several of them share: the user and token answers,
//! the refresh cookie, session creation and the revocation event.

pub mod account;
pub mod email;
pub mod internal;
pub mod keys;
pub mod password;
pub mod session;
pub mod twofa;

use actix_web::{
    HttpRequest, HttpResponse,
    cookie::{Cookie, SameSite, time::Duration as CookieDuration},
    http::StatusCode,
};
use chrono::{DateTime, Utc};
use diesel_async::{AsyncConnection, AsyncPgConnection};
use serde::{Serialize, de::DeserializeOwned};
use uuid::Uuid;
use zimmer_db::models::{NewSession, Session, User};
use zimmer_events::contracts::{SessionRevoked, UserDeactivated, UserUpdated};
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
    session: &Session,
    refresh: String,
    meta: &ClientMeta,
) -> Result<HttpResponse, ApiError> {
    let role = user
        .role
        .parse::<Role>()
        .map_err(|()| ApiError::internal(anyhow::anyhow!("unknown role {}", user.role)))?;
    let jwt = &state.platform.settings.jwt;
    // The session row's creation is its sign-in: a refresh keeps the session, so it keeps
    // the sign-in time too (the recent sign-in rule of the 2FA routes reads it).
    let access_token = state.signer.sign(&access_claims(
        user.id,
        role,
        session.id,
        session.created_at.timestamp(),
        jwt,
    ))?;
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
        zimmer_events::enqueue_event(
            conn,
            PRODUCER,
            &SessionRevoked {
                session_id: s.id,
                user_id: Some(s.user_id),
                // No access token of this session outlives this instant.
                expires_at: Utc::now() + ttl,
            },
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

/// A JSON body that may be absent: the panel calls several of these routes with no body at
/// all, and a missing body must get the route's own clear 422, not a parse error.
pub fn optional_json<T: DeserializeOwned + Default>(raw: &[u8]) -> Result<T, ApiError> {
    if raw.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(raw).map_err(|e| {
        if e.is_data() {
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "validation_error",
                format!("Invalid request body: {e}"),
            )
        } else {
            ApiError::bad_request("Malformed JSON body")
        }
    })
}

/// A non-empty, trimmed optional string field.
pub fn present(field: Option<&str>) -> Option<&str> {
    field.map(str::trim).filter(|s| !s.is_empty())
}

/// `user.updated` with the fields that changed (unchanged ones left `None`).
pub async fn enqueue_user_updated(
    conn: &mut AsyncPgConnection,
    changes: UserUpdated,
) -> Result<(), ApiError> {
    zimmer_events::enqueue_event(conn, PRODUCER, &changes).await?;
    Ok(())
}

/// What a deactivation did, for the after-commit local revocation.
pub struct Deactivation {
    pub user_id: i64,
    pub at: DateTime<Utc>,
    pub sessions: Vec<Session>,
}

/// Deactivates an active user inside the caller's transaction: every session revoked, and
/// `session.revoked` per session plus `user.deactivated` in the outbox. None when the user
/// was already inactive (nothing is emitted twice).
pub async fn deactivate_in_tx(
    conn: &mut AsyncPgConnection,
    state: &AppState,
    user_id: i64,
    reason: &str,
) -> Result<Option<Deactivation>, ApiError> {
    let Some(at) = queries::deactivate(conn, user_id).await? else {
        return Ok(None);
    };
    let sessions = queries::revoke_user_sessions(conn, user_id, None, reason).await?;
    enqueue_revoked(conn, state, &sessions).await?;
    zimmer_events::enqueue_event(
        conn,
        PRODUCER,
        &UserDeactivated {
            user_id,
            deactivated_at: Some(at),
        },
    )
    .await?;
    Ok(Some(Deactivation {
        user_id,
        at,
        sessions,
    }))
}

/// After commit: this instance rejects the user's tokens at once.
pub fn deactivate_locally(state: &AppState, d: &Deactivation) {
    revoke_locally(state, &d.sessions);
    state
        .platform
        .auth
        .revocations
        .deactivate_user(d.user_id, d.at.timestamp());
}

/// The end of a successful login (password, then 2FA when on): a new session and the tokens.
pub async fn finish_login(
    state: &AppState,
    user: User,
    meta: &ClientMeta,
    recovery_code_hash: Option<&[u8]>,
) -> Result<HttpResponse, ApiError> {
    let mut conn = state.platform.pool.get().await?;
    let user_id = user.id;
    let opened = conn
        .transaction(async |conn| {
            // A recovery code is used in the same transaction that opens the session: it
            // either buys exactly one session or stays unused.
            if let Some(hash) = recovery_code_hash
                && !queries::use_recovery_code(conn, user_id, hash).await?
            {
                return Ok(None);
            }
            queries::touch_last_login(conn, user_id).await?;
            open_session(conn, state, user_id, meta).await.map(Some)
        })
        .await?;
    drop(conn);
    let Some((session, refresh)) = opened else {
        return Err(
            ApiError::unauthorized("Invalid or already used recovery code")
                .with_code("invalid_recovery_code"),
        );
    };
    token_response(state, StatusCode::OK, user, &session, refresh, meta)
}
