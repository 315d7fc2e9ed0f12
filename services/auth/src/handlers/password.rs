//! Forgotten passwords: a mailed single-use link (30 minutes), and the reset that uses it and
//! ends every session of the account.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use zimmer_http::{ApiError, HttpResult, validate::Validator};

use super::ClientMeta;
use crate::{
    AppState,
    clients::mail,
    domain::{
        address,
        password::check_new_password,
        throttle::{account_key, ip_key},
        tokens::{random_token, token_hash},
    },
    ops, queries,
};

const FORGOT_ANSWER: &str =
    "If an account exists for this email, we have sent it a link to reset the password";

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct ForgotRequest {
    pub email: String,
}

/// `POST /api/forgot-password`: always 200 with the same words, and the same work (one SQL
/// statement that inserts a token only when the account exists; the mail goes out in the
/// background), so neither the answer nor its timing tells whether the email is registered.
pub async fn forgot(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Json<ForgotRequest>,
) -> HttpResult {
    let st = state.get_ref();
    let email = address::normalize(&body.email).map_err(|m| ApiError::invalid("email", m))?;
    let meta = ClientMeta::of(&req);
    st.throttle
        .forgot_password(&account_key(&email), &ip_key(meta.ip.as_deref()))
        .await?;
    let token = random_token(32);
    let ttl = st.flows.reset_ttl;
    let mut conn = st.platform.pool.get().await?;
    let target = queries::create_reset_token_for_email(
        &mut conn,
        &email,
        &token_hash(&token),
        ttl.as_secs_f64(),
    )
    .await?;
    drop(conn);
    if let Some(target) = target {
        let link = super::frontend_link(st, "reset-password", &token);
        let minutes = i64::try_from(ttl.as_secs() / 60).unwrap_or(30).max(1);
        st.mailer.send_in_background(mail::password_reset(
            &target.email,
            &target.name,
            &link,
            minutes,
        ));
        tracing::info!(user_id = target.user_id, "password reset requested");
    }
    Ok(HttpResponse::Ok().json(serde_json::json!({ "detail": FORGOT_ANSWER })))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct ResetRequest {
    #[serde(default)]
    pub token: String,
    #[serde(alias = "password")]
    pub new_password: String,
    #[serde(default)]
    pub confirm_password: Option<String>,
}

/// `POST /api/reset-password`: sets the new password, proves the email (the link reached
/// its inbox), and revokes every session of the account.
pub async fn reset(state: web::Data<AppState>, body: web::Json<ResetRequest>) -> HttpResult {
    let st = state.get_ref();
    let mut v = Validator::new();
    if body.token.trim().is_empty() {
        v.error("token", "must not be empty");
    }
    v.check("new_password", check_new_password(&body.new_password));
    if body
        .confirm_password
        .as_ref()
        .is_some_and(|c| c != &body.new_password)
    {
        v.error("confirm_password", "does not match the new password");
    }
    v.finish()?;
    let hash = token_hash(body.token.trim());

    // A cheap look first, so a made-up token costs no argon2 hash; the token is consumed
    // atomically below.
    let mut conn = st.platform.pool.get().await?;
    let live = queries::live_reset_tokens(&mut conn, &hash).await?;
    drop(conn);
    if live == 0 {
        return Err(ops::account::invalid_reset_token());
    }
    let new_hash = st.hasher.hash(&body.new_password).await?;

    let revoked = ops::account::reset_password(st, &hash, &new_hash).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "detail": "Your password has been reset; sign in with the new one",
        "revoked_sessions": revoked.len(),
    })))
}
