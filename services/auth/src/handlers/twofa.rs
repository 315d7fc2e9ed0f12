//! TOTP two-factor: status, initiate (secret + otpauth URI), activate (first code → 10
//! recovery codes, shown once), disable and regenerate (each needs proof), and the second
//! step of a login (`/api/auth/2fa/verify`).
//!
//! The secret is stored AES-256-GCM encrypted, bound to the user id. A TOTP code is accepted
//! once: its time step is marked used in Redis. Recovery codes are stored as keyed hashes
//! and used in the database with a conditional UPDATE.
//!
//! Recent sign-in rule: a stolen access token alone must not be enough to bind the thief's
//! authenticator (and lock the owner out) or to read new recovery codes. Initiate and
//! activate go ahead only when this session's sign-in is at most `REAUTH_WINDOW_SECS` (10
//! minutes) old, kept across refreshes, or when the request carries the password; otherwise
//! 403 `reauth_required`. Disable and regenerate always demand proof in the request (a
//! current code, or for disable the password), which satisfies the rule whatever the age.
//! Turning 2FA on or off signs every other session out (`session.revoked`, as logout) and
//! mails the owner.

use actix_web::{HttpRequest, HttpResponse, web};
use chrono::Utc;
use diesel_async::{AsyncConnection, AsyncPgConnection};
use serde::Deserialize;
use zimmer_db::models::User;
use zimmer_http::{ApiError, HttpResult};
use zimmer_jwt::CurrentUser;

use super::{
    ClientMeta, account_disabled, account_not_found, finish_login, invalid_recovery_code,
    optional_json, own_account, present,
};
use crate::{
    AppState,
    clients::mail,
    domain::{
        throttle::{OnOutage, ip_key},
        twofa,
    },
    ops, queries,
};

fn secret_context(user_id: i64) -> Vec<u8> {
    format!("zimmer:users:{user_id}:twofa_secret").into_bytes()
}

fn open_secret(state: &AppState, user_id: i64, sealed: &[u8]) -> Result<Vec<u8>, ApiError> {
    state
        .secrets
        .decrypt(sealed, &secret_context(user_id))
        .map_err(ApiError::internal)
}

fn invalid_otp() -> ApiError {
    ApiError::unauthorized("The authentication code is incorrect").with_code("invalid_otp")
}

/// Checks a TOTP code of `user_id` against its secret: counted against the per-account
/// limit first, and its time step marked used so the same code never works twice.
pub async fn check_otp(
    state: &AppState,
    user_id: i64,
    secret: &[u8],
    code: &str,
) -> Result<(), ApiError> {
    state.throttle.otp_attempt(user_id).await?;
    let now = u64::try_from(Utc::now().timestamp()).unwrap_or(0);
    let Some(step) = twofa::matching_step(secret, code, now) else {
        return Err(invalid_otp());
    };
    if !state.throttle.consume_otp_step(user_id, step).await? {
        return Err(ApiError::unauthorized(
            "This code has already been used; wait for the next one in your authenticator app",
        )
        .with_code("otp_replayed"));
    }
    Ok(())
}

/// A signed-in action's code check against the stored (sealed) secret, answered as a 422 on
/// the field (the caller is authenticated: a wrong code is bad input, not missing
/// credentials).
async fn check_otp_field(
    state: &AppState,
    user_id: i64,
    sealed: &[u8],
    code: &str,
) -> Result<(), ApiError> {
    let secret = open_secret(state, user_id, sealed)?;
    check_otp(state, user_id, &secret, code).await.map_err(|e| {
        if e.status() == actix_web::http::StatusCode::UNAUTHORIZED {
            ApiError::invalid("otp_code", e.detail().to_owned()).with_code(e.code().to_owned())
        } else {
            e
        }
    })
}

/// Ten new recovery codes (to show) and their hashes (to store), once `code` proves the
/// authenticator holds the sealed secret: turning 2FA on and regenerating the codes.
async fn new_codes_after_otp(
    state: &AppState,
    user_id: i64,
    sealed: &[u8],
    code: &str,
) -> Result<(Vec<String>, Vec<Vec<u8>>), ApiError> {
    check_otp_field(state, user_id, sealed, code).await?;
    let codes = twofa::new_recovery_codes();
    let hashes = codes
        .iter()
        .map(|c| {
            let n = twofa::normalize_recovery_code(c).unwrap_or_default();
            twofa::recovery_code_hash(&state.secrets, user_id, &n)
        })
        .collect();
    Ok((codes, hashes))
}

/// The account and its 2FA state, read on one connection.
async fn user_and_twofa_state(
    state: &AppState,
    user_id: i64,
) -> Result<(User, queries::TwofaState), ApiError> {
    let mut conn = state.platform.pool.get().await?;
    let found = queries::user_by_id(&mut conn, user_id)
        .await?
        .ok_or_else(account_not_found)?;
    let s = twofa_state_of(&mut conn, user_id).await?;
    Ok((found, s))
}

/// The user's 2FA state; 404 when the account is gone.
async fn twofa_state_of(
    conn: &mut AsyncPgConnection,
    user_id: i64,
) -> Result<queries::TwofaState, ApiError> {
    queries::twofa_state(conn, user_id)
        .await?
        .ok_or_else(account_not_found)
}

/// `GET /api/auth/2fa/status`
pub async fn status(user: CurrentUser, state: web::Data<AppState>) -> HttpResult {
    let mut conn = state.platform.pool.get().await?;
    let s = twofa_state_of(&mut conn, user.id).await?;
    let remaining = if s.enabled {
        queries::unused_recovery_codes(&mut conn, user.id).await?
    } else {
        0
    };
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "enabled": s.enabled,
        "pending": !s.enabled && s.sealed_secret.is_some(),
        "recovery_codes_remaining": remaining,
    })))
}

/// `POST /api/auth/2fa/initiate` (no body, or `{password}` when the sign-in is not recent):
/// a new secret, pending until a code activates it. Calling it again replaces a pending
/// secret (a lost QR code); with 2FA on it is refused.
pub async fn initiate(
    user: CurrentUser,
    state: web::Data<AppState>,
    raw: web::Bytes,
) -> HttpResult {
    let st = state.get_ref();
    let body: CodeBody = optional_json(&raw)?;
    let found = own_account(st, user.id).await?;
    recent_sign_in_or_password(st, &user, &found, &body).await?;
    let mut conn = st.platform.pool.get().await?;
    if found.twofa_enabled {
        return Err(ApiError::conflict(
            "twofa_already_enabled",
            "Two-factor authentication is already on; disable it first to set up a new device",
        ));
    }
    let secret = twofa::new_secret();
    let sealed = st
        .secrets
        .encrypt(&secret, &secret_context(user.id))
        .map_err(ApiError::internal)?;
    if !queries::set_pending_twofa_secret(&mut conn, user.id, &sealed).await? {
        return Err(already_on());
    }
    drop(conn);
    let (base32, uri) = twofa::provisioning(&secret, &st.flows.totp_issuer, &found.email)
        .map_err(ApiError::internal)?;
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "secret": base32,
        "otpauth_uri": uri,
        "otpauth_url": uri,
    })))
}

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
pub struct CodeBody {
    #[serde(default)]
    pub otp_code: Option<String>,
    #[serde(default)]
    pub password: Option<String>,
}

/// The request's body and its `otp_code`, or a 422 on it that says what the code is for.
fn with_otp(raw: &[u8], missing: &'static str) -> Result<(CodeBody, String), ApiError> {
    let body: CodeBody = optional_json(raw)?;
    let code = present(body.otp_code.as_deref())
        .ok_or_else(|| ApiError::invalid("otp_code", missing))?
        .to_owned();
    Ok((body, code))
}

/// 409 `twofa_already_enabled` (found when the secret is written or the code is checked).
fn already_on() -> ApiError {
    ApiError::conflict(
        "twofa_already_enabled",
        "Two-factor authentication is already on",
    )
}

fn reauth_required(state: &AppState) -> ApiError {
    let minutes = (state.flows.reauth_window.as_secs() / 60).max(1);
    ApiError::forbidden(format!(
        "For your security, please sign in again before changing two-factor authentication: \
         your last sign-in was more than {minutes} minutes ago (or send your current password)"
    ))
    .with_code("reauth_required")
}

/// The recent sign-in rule (module doc): the password in the body, when sent, is checked
/// (with the re-check lock); without it this session's sign-in must be recent.
async fn recent_sign_in_or_password(
    state: &AppState,
    user: &CurrentUser,
    found: &User,
    body: &CodeBody,
) -> Result<(), ApiError> {
    if let Some(password) = body.password.as_deref().filter(|p| !p.is_empty()) {
        return recheck_password(state, found, password).await;
    }
    let mut conn = state.platform.pool.get().await?;
    let signed_in = queries::session_signed_in_at(&mut conn, user.session_id, user.id).await?;
    drop(conn);
    let window =
        chrono::Duration::from_std(state.flows.reauth_window).map_err(ApiError::internal)?;
    match signed_in {
        Some(at) if Utc::now() - at <= window => Ok(()),
        _ => Err(reauth_required(state)),
    }
}

/// `POST /api/auth/2fa/activate` `{otp_code}` → `{recovery_codes}` (shown this once).
pub async fn activate(
    user: CurrentUser,
    state: web::Data<AppState>,
    raw: web::Bytes,
) -> HttpResult {
    let st = state.get_ref();
    let (body, code) = with_otp(
        &raw,
        "Enter the 6-digit code from your authenticator app to turn on two-factor authentication",
    )?;
    let (found, s) = user_and_twofa_state(st, user.id).await?;
    // Before the code is looked at: a stale session learns nothing and burns no code.
    recent_sign_in_or_password(st, &user, &found, &body).await?;
    if s.enabled {
        return Err(already_on());
    }
    let Some(sealed) = s.sealed_secret else {
        return Err(ApiError::conflict(
            "twofa_not_initiated",
            "Start two-factor setup first (initiate), then send a code",
        ));
    };
    let (codes, hashes) = new_codes_after_otp(st, user.id, &sealed, &code).await?;
    let revoked = ops::twofa::enable(st, user.id, user.session_id, &sealed, &hashes).await?;
    st.users.forget(&user.id);
    st.mailer
        .send_in_background(mail::twofa_changed(&found.email, &found.name, true));
    tracing::info!(
        user_id = user.id,
        revoked_sessions = revoked.len(),
        "two-factor authentication enabled"
    );
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "enabled": true,
        "recovery_codes": codes,
    })))
}

/// `POST /api/auth/2fa/disable` `{otp_code}` or `{password}`.
pub async fn disable(user: CurrentUser, state: web::Data<AppState>, raw: web::Bytes) -> HttpResult {
    let st = state.get_ref();
    let body: CodeBody = optional_json(&raw)?;
    let code = present(body.otp_code.as_deref());
    let password = body.password.as_deref().filter(|p| !p.is_empty());
    if code.is_none() && password.is_none() {
        return Err(ApiError::invalid(
            "otp_code",
            "To turn off two-factor authentication, send a current code from your authenticator app (otp_code) or your password",
        ));
    }
    let (found, s) = user_and_twofa_state(st, user.id).await?;
    if s.enabled {
        if let Some(code) = code {
            let sealed = s.sealed_secret.clone().unwrap_or_default();
            check_otp_field(st, user.id, &sealed, code).await?;
        } else if let Some(password) = password {
            recheck_password(st, &found, password).await?;
        }
    }
    // Not on (or only pending): nothing to protect; a pending secret is dropped.
    let revoked = ops::twofa::disable(st, user.id, user.session_id, s.enabled).await?;
    st.users.forget(&user.id);
    if s.enabled {
        st.mailer
            .send_in_background(mail::twofa_changed(&found.email, &found.name, false));
        tracing::info!(
            user_id = user.id,
            revoked_sessions = revoked.len(),
            "two-factor authentication disabled"
        );
    }
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "enabled": false,
        "detail": "Two-factor authentication is off",
    })))
}

/// The signed-in user's password once more (sensitive actions), with its own failure lock.
pub async fn recheck_password(
    state: &AppState,
    user: &User,
    password: &str,
) -> Result<(), ApiError> {
    if password_matches(state, user, password).await? {
        Ok(())
    } else {
        Err(ApiError::invalid("password", "The password is incorrect").with_code("wrong_password"))
    }
}

/// Whether `password` is the user's, under the re-check lock: a wrong one counts against it.
pub async fn password_matches(
    state: &AppState,
    user: &User,
    password: &str,
) -> Result<bool, ApiError> {
    state.throttle.password_recheck_allowed(user.id).await?;
    let matches = state.hasher.verify(password, &user.password_hash).await?;
    if !matches {
        state.throttle.password_recheck_failed(user.id).await;
    }
    Ok(matches)
}

/// `POST /api/auth/2fa/recovery-codes/regenerate` `{otp_code}` → `{codes, recovery_codes}`;
/// the old codes stop working.
pub async fn regenerate(
    user: CurrentUser,
    state: web::Data<AppState>,
    raw: web::Bytes,
) -> HttpResult {
    let st = state.get_ref();
    let (_, code) = with_otp(
        &raw,
        "Enter a current code from your authenticator app (otp_code) to get new recovery codes",
    )?;
    let mut conn = st.platform.pool.get().await?;
    let s = twofa_state_of(&mut conn, user.id).await?;
    drop(conn);
    let (true, Some(sealed)) = (s.enabled, s.sealed_secret) else {
        return Err(ApiError::conflict(
            "twofa_not_enabled",
            "Two-factor authentication is not on",
        ));
    };
    let (codes, hashes) = new_codes_after_otp(st, user.id, &sealed, &code).await?;
    let mut conn = st.platform.pool.get().await?;
    conn.transaction(async |conn| queries::replace_recovery_codes(conn, user.id, &hashes).await)
        .await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "codes": codes,
        "recovery_codes": codes,
    })))
}

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[schema(as = TwoFaVerifyBody)]
pub struct VerifyBody {
    #[serde(default)]
    pub challenge_token: Option<String>,
    #[serde(default)]
    pub otp_code: Option<String>,
    #[serde(default)]
    pub recovery_code: Option<String>,
}

fn invalid_challenge() -> ApiError {
    ApiError::unauthorized("This sign-in attempt has expired; please log in again")
        .with_code("invalid_challenge")
}

/// `POST /api/auth/2fa/verify`: the login's second step; answers like login (tokens, user).
pub async fn verify(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Json<VerifyBody>,
) -> HttpResult {
    let st = state.get_ref();
    let body = body.into_inner();
    let Some(token) = present(body.challenge_token.as_deref()) else {
        return Err(ApiError::invalid(
            "challenge_token",
            "must be the challenge_token from the login answer",
        ));
    };
    let otp = present(body.otp_code.as_deref());
    let recovery = present(body.recovery_code.as_deref());
    if otp.is_none() && recovery.is_none() {
        return Err(ApiError::invalid(
            "otp_code",
            "Send the code from your authenticator app (otp_code) or a recovery_code",
        ));
    }
    let meta = ClientMeta::of(&req);
    let ip = ip_key(meta.ip.as_deref());
    // TOTP guesses fail closed without Redis; recovery codes (50 bits) stay usable.
    let on_outage = if otp.is_some() {
        OnOutage::Closed
    } else {
        OnOutage::Open
    };
    st.throttle.twofa_ip(&ip, on_outage).await?;
    let now = Utc::now().timestamp();
    let challenge = twofa::open_challenge(&st.secrets, token, now).ok_or_else(invalid_challenge)?;
    let mut conn = st.platform.pool.get().await?;
    let user = queries::user_by_id(&mut conn, challenge.uid).await?;
    let sealed = queries::twofa_state(&mut conn, challenge.uid)
        .await?
        .and_then(|s| s.sealed_secret);
    drop(conn);
    let user = match user {
        // The password it proved is still the account's, and 2FA is still on.
        Some(u)
            if u.twofa_enabled
                && twofa::password_fingerprint(&st.secrets, &u.password_hash) == challenge.pwf =>
        {
            u
        }
        _ => return Err(invalid_challenge()),
    };
    if !user.is_active {
        return Err(account_disabled());
    }

    let mut recovery_hash = None;
    if let Some(code) = otp {
        let secret = open_secret(st, user.id, &sealed.unwrap_or_default())?;
        check_otp(st, user.id, &secret, code).await?;
    } else if let Some(code) = recovery {
        let normalized = twofa::normalize_recovery_code(code).ok_or_else(invalid_recovery_code)?;
        let hash = twofa::recovery_code_hash(&st.secrets, user.id, &normalized);
        // Looked at first so a typo does not burn the challenge; used for real (once,
        // atomically) in the transaction that opens the session.
        let mut conn = st.platform.pool.get().await?;
        if !queries::recovery_code_unused(&mut conn, user.id, &hash).await? {
            return Err(invalid_recovery_code());
        }
        recovery_hash = Some(hash);
    }
    let left = u64::try_from(challenge.exp - now).unwrap_or(1);
    if !st
        .throttle
        .consume_challenge(&challenge.nonce, left)
        .await?
    {
        return Err(invalid_challenge());
    }
    finish_login(st, user, &meta, recovery_hash.as_deref()).await
}
