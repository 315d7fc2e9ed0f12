//! HTTP handlers of auth, and the pieces several of them share: the user and token answers,
//! the refresh cookie, session creation and the revocation event.

pub mod account;
pub mod email;
pub mod internal;
pub mod keys;
pub mod password;
pub mod recheck;
pub mod session;
pub mod twofa;

use actix_web::{
    HttpRequest, HttpResponse,
    cookie::{Cookie, SameSite, time::Duration as CookieDuration},
    http::StatusCode,
};
use chrono::{DateTime, Utc};
use serde::Serialize;
use zimmer_db::models::{Session, User};
use zimmer_http::ApiError;
use zimmer_jwt::Role;

pub use crate::ops::{
    PRODUCER,
    account::{Deactivation, deactivate_in_tx, deactivate_locally, enqueue_user_updated},
    sessions::{ClientMeta, enqueue_revoked, open_session, revoke_locally},
};
use crate::{AppState, domain::tokens::access_claims, ops};

pub const REFRESH_COOKIE: &str = "zimmer_refresh";

/// The user as every client sees it: login/signup/2FA answers and `/api/me` (docs/panels.md reads
/// `is_admin`, `phone_number`, `email_verified_at`, `created_at` in both).
#[derive(Debug, Serialize, utoipa::ToSchema)]
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

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TokenAnswer {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: u64,
    pub user: UserView,
    /// Only for clients that are not browsers (no `Origin` header): a browser keeps the
    /// refresh token in the HttpOnly cookie, where scripts cannot read it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// Signup only: the admin dashboard's signup page reads the user flat beside `user`
    /// (docs/panels.md "The admin dashboard", sign-in).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

impl ClientMeta {
    pub fn of(req: &HttpRequest) -> Self {
        let user_agent = req
            .headers()
            .get("user-agent")
            .and_then(|v| v.to_str().ok())
            .map(|s| s.chars().take(512).collect());
        Self {
            user_agent,
            ip: zimmer_http::client_ip(req),
            is_browser: req.headers().contains_key("origin"),
        }
    }
}

/// What [`token_response`] answers for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokensFor {
    /// 200: a login (password, then 2FA when on) or a refresh.
    SignIn,
    /// 201, with `user_id`, `email`, `name` beside `user` (the admin dashboard's signup page,
    /// docs/panels.md).
    SignUp,
}

/// The answer of login, signup and refresh: a new access token, the user, and the refresh
/// token in its cookie (and, for non-browser clients, in the body).
pub fn token_response(
    state: &AppState,
    tokens_for: TokensFor,
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
    let (status, flat) = match tokens_for {
        TokensFor::SignIn => (StatusCode::OK, false),
        TokensFor::SignUp => (StatusCode::CREATED, true),
    };
    let (user_id, email, name) = if flat {
        (
            Some(user.id),
            Some(user.email.clone()),
            Some(user.name.clone()),
        )
    } else {
        (None, None, None)
    };
    Ok(HttpResponse::build(status)
        .cookie(cookie)
        .json(TokenAnswer {
            access_token,
            token_type: "bearer",
            expires_in: jwt.access_ttl.as_secs(),
            user: user.into(),
            refresh_token: (!meta.is_browser).then_some(refresh),
            user_id,
            email,
            name,
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

/// Cookie-authenticated requests are accepted only from the allowed origins (docs/api.md): a page
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

/// A JSON body that may be absent: the panel calls several of these routes with no body at
/// all, and a missing body must get the route's own clear 422, not a parse error.
pub use zimmer_http::optional_json;

pub fn account_not_found() -> ApiError {
    ApiError::unauthorized("Account not found")
}

/// The signed-in user's account (401 when it is gone), on a pooled connection that is given
/// back at once: the callers go on to hash a password or send mail without holding one.
pub async fn own_account(state: &AppState, user_id: i64) -> Result<User, ApiError> {
    let mut conn = state.platform.pool.get().await?;
    crate::queries::user_by_id(&mut conn, user_id)
        .await?
        .ok_or_else(account_not_found)
}

/// A non-empty, trimmed optional string field.
pub fn present(field: Option<&str>) -> Option<&str> {
    field.map(str::trim).filter(|s| !s.is_empty())
}

/// A link into the user panel (`frontend_url`) that carries a one-time token.
pub fn frontend_link(state: &AppState, page: &str, token: &str) -> String {
    format!(
        "{}/{page}?token={token}",
        state.platform.settings.frontend_url.trim_end_matches('/')
    )
}

/// The end of a successful login (password, then 2FA when on): a new session and the tokens.
pub async fn finish_login(
    state: &AppState,
    user: User,
    meta: &ClientMeta,
    recovery_code_hash: Option<&[u8]>,
) -> Result<HttpResponse, ApiError> {
    let Some((session, refresh)) =
        ops::sessions::login(state, user.id, meta, recovery_code_hash).await?
    else {
        return Err(invalid_recovery_code());
    };
    token_response(state, TokensFor::SignIn, user, &session, refresh, meta)
}

/// 401 `invalid_recovery_code`: malformed, unknown or already used.
pub fn invalid_recovery_code() -> ApiError {
    ApiError::unauthorized("Invalid or already used recovery code")
        .with_code("invalid_recovery_code")
}

/// 403 `account_disabled`: the credentials were right but the account is deactivated.
pub fn account_disabled() -> ApiError {
    ApiError::forbidden("This account has been deactivated").with_code("account_disabled")
}
