//! Email verification: a mail with a link token and a 6-digit code (both single use, expiring,
//! stored only as hashes); the link works without signing in, the code with the Bearer.

use actix_web::{HttpRequest, HttpResponse, web};
use diesel_async::AsyncConnection;
use serde::Deserialize;
use zimmer_http::{ApiError, HttpResult};
use zimmer_jwt::{CurrentUser, bearer_token};

use super::{UserView, account_not_found, optional_json, own_account, present};
use crate::{
    AppState,
    clients::mail,
    domain::{
        address,
        tokens::{random_token, six_digit_code, token_hash},
    },
    queries::{self, CodeOutcome},
};

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[schema(as = EmailRequestBody)]
pub struct RequestBody {
    /// The panel's alias sends the address; it must be the caller's own.
    #[serde(default)]
    pub email: Option<String>,
}

fn must_be_own_email(given: Option<&str>, own: &str) -> Result<(), ApiError> {
    match present(given) {
        Some(e) if address::normalize(e).ok().as_deref() != Some(own) => Err(ApiError::invalid(
            "email",
            "must be the email address of your account",
        )),
        _ => Ok(()),
    }
}

pub fn code_hash(state: &AppState, user_id: i64, code: &str) -> Vec<u8> {
    state
        .secrets
        .mac("email-code", format!("{user_id}:{code}").as_bytes())
}

/// `POST /api/auth/request-email-verify` (alias `/api/auth/send-email-verification`).
pub async fn request(user: CurrentUser, state: web::Data<AppState>, raw: web::Bytes) -> HttpResult {
    let st = state.get_ref();
    let body: RequestBody = optional_json(&raw)?;
    let found = own_account(st, user.id).await?;
    must_be_own_email(body.email.as_deref(), &found.email)?;
    if found.email_verified_at.is_some() {
        return Ok(HttpResponse::Ok().json(serde_json::json!({
            "detail": "Your email address is already verified",
            "email_verified": true,
        })));
    }
    st.throttle.verification_mail(user.id).await?;

    let token = random_token(32);
    let code = six_digit_code();
    let ttl = st.flows.verify_ttl;
    let mut conn = st.platform.pool.get().await?;
    let code_hash = code_hash(st, user.id, &code);
    conn.transaction(async |conn| {
        queries::create_email_verification(
            conn,
            user.id,
            &token_hash(&token),
            &code_hash,
            ttl.as_secs_f64(),
        )
        .await
    })
    .await?;
    drop(conn);
    let link = super::frontend_link(st, "verify-email", &token);
    let hours = i64::try_from(ttl.as_secs() / 3600).unwrap_or(24).max(1);
    st.mailer.send_in_background(mail::verification(
        &found.email,
        &found.name,
        &link,
        &code,
        hours,
    ));
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "detail": "Verification email sent",
        "expires_in": ttl.as_secs(),
    })))
}

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[schema(as = EmailVerifyBody)]
pub struct VerifyBody {
    #[serde(default)]
    pub token: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub verification_code: Option<String>,
    /// Accepted as a synonym of `verification_code`.
    #[serde(default)]
    pub code: Option<String>,
}

fn verified(user: zimmer_db::models::User) -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({
        "detail": "Email verified",
        "user": UserView::from(user),
    }))
}

/// `POST /api/auth/verify-email`: `{token}` (the mailed link, no Bearer needed) or, with the
/// Bearer, `{verification_code}` (and optionally the account's `email`).
pub async fn verify(req: HttpRequest, state: web::Data<AppState>, raw: web::Bytes) -> HttpResult {
    let st = state.get_ref();
    let body: VerifyBody = optional_json(&raw)?;
    if let Some(token) = present(body.token.as_deref()) {
        let hash = token_hash(token);
        let mut conn = st.platform.pool.get().await?;
        let user = conn
            .transaction(async |conn| {
                let Some(user_id) = queries::consume_email_token(conn, &hash).await? else {
                    return Ok(None);
                };
                queries::mark_email_verified(conn, user_id).await.map(Some)
            })
            .await
            .map_err(ApiError::from)?;
        return match user {
            Some(user) => {
                st.users.forget(&user.id);
                Ok(verified(user))
            }
            None => Err(ApiError::invalid(
                "token",
                "This verification link is invalid or has expired; request a new email",
            )
            .with_code("invalid_token")),
        };
    }

    let Some(code) = present(body.verification_code.as_deref()).or(present(body.code.as_deref()))
    else {
        return Err(ApiError::invalid(
            "verification_code",
            "Send the token from the emailed link, or the 6-digit verification_code",
        ));
    };
    let token = bearer_token(&req)
        .ok_or_else(|| ApiError::unauthorized("Sign in to verify your email with a code"))?;
    let user: CurrentUser = st.platform.auth.authenticate(token).await?;
    let mut conn = st.platform.pool.get().await?;
    let found = queries::user_by_id(&mut conn, user.id)
        .await?
        .ok_or_else(account_not_found)?;
    must_be_own_email(body.email.as_deref(), &found.email)?;
    if found.email_verified_at.is_some() {
        return Ok(verified(found));
    }
    if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ApiError::invalid(
            "verification_code",
            "must be the 6-digit code from the email",
        ));
    }
    let hash = code_hash(st, user.id, code);
    // The attempt is counted even when the code is wrong: the transaction commits either way.
    let (outcome, user) = conn
        .transaction(async |conn| {
            let outcome = queries::try_email_code(conn, user.id, &hash).await?;
            let user = match outcome {
                CodeOutcome::Verified => Some(queries::mark_email_verified(conn, user.id).await?),
                _ => None,
            };
            Ok::<_, diesel::result::Error>((outcome, user))
        })
        .await?;
    match (outcome, user) {
        (CodeOutcome::Verified, Some(user)) => {
            st.users.forget(&user.id);
            Ok(verified(user))
        }
        (CodeOutcome::Wrong { attempts_left }, _) if attempts_left > 0 => Err(ApiError::invalid(
            "verification_code",
            format!(
                "The code is incorrect; {attempts_left} attempt{} left",
                if attempts_left == 1 { "" } else { "s" }
            ),
        )
        .with_code("invalid_code")),
        _ => Err(ApiError::invalid(
            "verification_code",
            "This code is no longer valid (expired, used, or too many attempts); request a new verification email",
        )
        .with_code("code_expired")),
    }
}
