//! Registration, login, the current user, profile and password.

use actix_web::{HttpRequest, HttpResponse, web};
use diesel_async::AsyncConnection;
use serde::Deserialize;
use zimmer_db::models::NewUser;
use zimmer_events::contracts::UserUpdated;
use zimmer_http::{ApiError, HttpResult, validate, validate::Validator};
use zimmer_jwt::{CurrentUser, Role};

use super::{
    ClientMeta, TokensFor, UserView, account_disabled, clear_refresh_cookie, enqueue_revoked,
    enqueue_user_updated, finish_login, optional_json, own_account, revoke_locally, token_response,
    twofa::{password_matches, recheck_password},
};
use crate::{
    AppState,
    domain::{
        address,
        password::check_new_password,
        throttle::{account_key, ip_key},
        twofa,
    },
    ops, queries,
};

const NAME_MAX_CHARS: usize = 100;
/// One message for unknown email and wrong password: no account enumeration.
const BAD_CREDENTIALS: &str = "Invalid email or password";

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct RegisterRequest {
    pub name: String,
    pub email: String,
    pub password: String,
    #[serde(default)]
    pub phone_number: Option<String>,
    /// Sent by the user panel; must match when present.
    #[serde(default)]
    pub confirm_password: Option<String>,
}

pub async fn register(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Json<RegisterRequest>,
) -> HttpResult {
    let body = body.into_inner();
    let mut v = Validator::new();
    let name = v.check("name", validate::line(&body.name, NAME_MAX_CHARS));
    let email = v.check("email", address::normalize(&body.email));
    let phone = v.check(
        "phone_number",
        validate::phone(body.phone_number.as_deref().unwrap_or("")),
    );
    v.check("password", check_new_password(&body.password));
    if body
        .confirm_password
        .as_ref()
        .is_some_and(|c| c != &body.password)
    {
        v.error("confirm_password", "does not match the password");
    }
    v.finish()?;
    let (Some(name), Some(email), Some(phone)) = (name, email, phone) else {
        return Err(ApiError::bad_request("Invalid request"));
    };

    let password_hash = state.hasher.hash(&body.password).await?;
    let meta = ClientMeta::of(&req);
    let st = state.get_ref();
    let (user, session, refresh) = ops::account::register(
        st,
        &NewUser {
            name: &name,
            email: &email,
            phone_number: phone.as_deref(),
            password_hash: &password_hash,
            role: Role::Customer.as_str(),
        },
        &meta,
    )
    .await?;
    tracing::info!(user_id = user.id, "user registered");
    // The flat fields are for the admin dashboard's signup page (docs/panels.md).
    token_response(st, TokensFor::SignUp, user, &session, refresh, &meta)
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct LoginRequest {
    pub email: String,
    pub password: String,
}

/// `POST /api/auth/login`. Throttled (see `domain::throttle`): the locks are checked before
/// the password, the same way for unknown emails; an unknown email costs a dummy argon2
/// verify, so it takes as long as a wrong password. With 2FA on, the answer is a short-lived
/// challenge instead of tokens.
pub async fn login(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Json<LoginRequest>,
) -> HttpResult {
    let st = state.get_ref();
    let meta = ClientMeta::of(&req);
    let account = account_key(&body.email);
    let ip = ip_key(meta.ip.as_deref());
    // Counted before the password is checked (and given back below when it is right), so
    // parallel guesses cannot outrun the lock.
    let attempt = st.throttle.login_begin(&account, &ip).await?;
    // An unparseable (or non-ASCII) email cannot exist: treat it as unknown, same answer and
    // same cost. NFKC first, as at registration: a full-width spelling finds the account.
    let email = address::normalize(&body.email).unwrap_or_default();
    let mut conn = st.platform.pool.get().await?;
    let user = if email.is_empty() {
        None
    } else {
        queries::user_by_email(&mut conn, &email).await?
    };
    // Never hold a pooled connection across the slow hash.
    drop(conn);
    let password_ok = match &user {
        Some(user) => {
            st.hasher
                .verify(&body.password, &user.password_hash)
                .await?
        }
        None => {
            st.hasher.verify_dummy(&body.password).await?;
            false
        }
    };
    // An unknown email and a wrong password: one answer, one throttle count.
    let (Some(user), true) = (user, password_ok) else {
        st.throttle.login_failed(&attempt).await;
        return Err(ApiError::unauthorized(BAD_CREDENTIALS).with_code("invalid_credentials"));
    };
    st.throttle.login_succeeded(&attempt).await;
    if !user.is_active {
        return Err(account_disabled());
    }
    if user.twofa_enabled {
        let now = chrono::Utc::now().timestamp();
        let challenge = twofa::new_challenge(&st.secrets, user.id, &user.password_hash, now);
        let token = twofa::sign_challenge(&st.secrets, &challenge).map_err(ApiError::internal)?;
        return Ok(HttpResponse::Ok().json(serde_json::json!({
            "otp_required": true,
            "challenge_token": token,
            "expires_in": twofa::CHALLENGE_TTL_SECS,
        })));
    }
    finish_login(st, user, &meta, None).await
}

/// `GET /api/me`, served from `state.users` (`cache.rs`) when it holds a fresh answer: the
/// row read from PostgreSQL on every call was this route's main cost (README, "Performance").
pub async fn me(user: CurrentUser, state: web::Data<AppState>) -> HttpResult {
    let json = |body: web::Bytes| {
        HttpResponse::Ok()
            .content_type(actix_web::http::header::ContentType::json())
            .body(body)
    };
    if let Some(body) = state.users.get(&user.id) {
        return Ok(json(body));
    }
    let ticket = state.users.ticket();
    let found = own_account(&state, user.id).await?;
    let body =
        web::Bytes::from(serde_json::to_vec(&UserView::from(found)).map_err(ApiError::internal)?);
    state.users.store(user.id, body.clone(), ticket);
    Ok(json(body))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct ProfileRequest {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub phone_number: Option<String>,
}

pub async fn update_profile(
    user: CurrentUser,
    state: web::Data<AppState>,
    body: web::Json<ProfileRequest>,
) -> HttpResult {
    let mut v = Validator::new();
    let name = match &body.name {
        Some(n) => v.check("name", validate::line(n, NAME_MAX_CHARS)),
        None => None,
    };
    let phone = match &body.phone_number {
        Some(p) => v.check("phone_number", validate::phone(p)),
        None => None,
    };
    v.finish()?;
    let changes = queries::ProfileChanges {
        name: name.as_deref(),
        phone_number: phone.as_ref().map(|p| p.as_deref()),
    };
    let mut conn = state.platform.pool.get().await?;
    let updated = if changes.name.is_none() && changes.phone_number.is_none() {
        queries::user_by_id(&mut conn, user.id)
            .await?
            .ok_or_else(|| ApiError::not_found("Account not found"))?
    } else {
        conn.transaction(async |conn| {
            let updated = queries::update_profile(conn, user.id, &changes).await?;
            if changes.name.is_some() {
                enqueue_user_updated(
                    conn,
                    UserUpdated {
                        user_id: updated.id,
                        name: Some(updated.name.clone()),
                        ..UserUpdated::default()
                    },
                )
                .await?;
            }
            Ok::<_, ApiError>(updated)
        })
        .await?
    };
    state.users.forget(&user.id);
    Ok(HttpResponse::Ok().json(UserView::from(updated)))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct ChangePasswordRequest {
    #[serde(default)]
    pub current_password: Option<String>,
    pub new_password: String,
    #[serde(default)]
    pub confirm_password: Option<String>,
}

/// Changes the password and revokes every other session of the user (this one stays).
pub async fn change_password(
    user: CurrentUser,
    state: web::Data<AppState>,
    body: web::Json<ChangePasswordRequest>,
) -> HttpResult {
    let st = state.get_ref();
    let Some(current) = body.current_password.as_deref().filter(|p| !p.is_empty()) else {
        // The panel's code-based variant: refused, with words the panel can show.
        return Err(ApiError::invalid(
            "current_password",
            "Your current password is required to set a new one",
        ));
    };
    let mut v = Validator::new();
    v.check("new_password", check_new_password(&body.new_password));
    if body
        .confirm_password
        .as_ref()
        .is_some_and(|c| c != &body.new_password)
    {
        v.error("confirm_password", "does not match the new password");
    }
    v.finish()?;
    let found = own_account(st, user.id).await?;
    if !password_matches(st, &found, current).await? {
        return Err(ApiError::invalid(
            "current_password",
            "Current password is incorrect",
        ));
    }
    let new_hash = st.hasher.hash(&body.new_password).await?;
    let mut conn = st.platform.pool.get().await?;
    let revoked = conn
        .transaction(async |conn| {
            queries::set_password_hash(conn, user.id, &new_hash).await?;
            let revoked = queries::revoke_user_sessions(
                conn,
                user.id,
                Some(user.session_id),
                "password_changed",
            )
            .await?;
            enqueue_revoked(conn, st, &revoked).await?;
            Ok::<_, ApiError>(revoked)
        })
        .await?;
    revoke_locally(st, &revoked);
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "detail": "Password changed",
        "revoked_sessions": revoked.len(),
    })))
}

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
pub struct DeleteAccountRequest {
    #[serde(default)]
    pub password: Option<String>,
}

/// `DELETE /api/auth/delete-account` `{password}`: deactivates the account, removes what
/// identifies the person (name, email, phone, password, 2FA), and revokes every session.
/// The row stays, anonymised, because payments and tickets refer to it.
pub async fn delete_account(
    user: CurrentUser,
    state: web::Data<AppState>,
    raw: web::Bytes,
) -> HttpResult {
    let st = state.get_ref();
    let body: DeleteAccountRequest = optional_json(&raw)?;
    let Some(password) = body.password.as_deref().filter(|p| !p.is_empty()) else {
        return Err(ApiError::invalid(
            "password",
            "Your password is required to delete your account",
        )
        .with_code("password_required"));
    };
    let found = own_account(st, user.id).await?;
    recheck_password(st, &found, password).await?;
    ops::account::delete(st, user.id).await?;
    tracing::info!(user_id = user.id, "account deleted (anonymised)");
    Ok(HttpResponse::Ok()
        .cookie(clear_refresh_cookie(st))
        .json(serde_json::json!({ "detail": "Your account has been deleted" })))
}
