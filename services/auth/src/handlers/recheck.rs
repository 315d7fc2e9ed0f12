//! `POST /internal/password-recheck` (types in `zimmer_contracts::internal::automations`): admin
//! asks whether the staff member it acts for typed their own password, before a sensitive
//! action (the automation wizard's generate-token, docs/panels.md "Automations and service
//! tokens"). Only admin's credential, with the member's own access token in
//! `X-Acting-User-Token` (the user comes from it, never from the body).
//!
//! A wrong password answers 403 `wrong_password`, never 401 (admin maps a 401 from auth to
//! "our service credential was refused", and the dashboard to "session expired"). Attempts
//! are throttled like login: counted before argon2 runs, 5 wrong ones per 15 minutes lock the
//! re-checks of that user (429 with `Retry-After`), shared with the other password re-checks.

use actix_web::{HttpRequest, HttpResponse, web};
use zimmer_events::contracts::internal::automations::{PasswordRecheck, PasswordRechecked};
use zimmer_http::{ApiError, HttpResult, InternalCaller};

use super::{
    internal::{acting_user, active_actor},
    optional_json,
};
use crate::AppState;

/// `{password}` → [`PasswordRechecked`].
pub async fn password_recheck(
    caller: InternalCaller,
    req: HttpRequest,
    state: web::Data<AppState>,
    raw: web::Bytes,
) -> HttpResult {
    let st = state.get_ref();
    let user_id = acting_user(&caller, &req, st).await?;
    // `{password}` is the contract; parsed leniently so that a missing or empty password is
    // a field error rather than a shape error.
    let body: serde_json::Value = optional_json(&raw)?;
    let recheck: Option<PasswordRecheck> = serde_json::from_value(body).ok();
    let Some(password) = recheck
        .as_ref()
        .map(|r| r.password.expose())
        .filter(|p| !p.is_empty())
    else {
        return Err(ApiError::invalid("password", "Your password is required")
            .with_code("password_required"));
    };
    let mut conn = st.platform.pool.get().await?;
    let user = active_actor(&mut conn, user_id).await?;
    // Never hold a pooled connection across the slow hash.
    drop(conn);
    let counted = st.throttle.recheck_begin(user.id).await?;
    if !st.hasher.verify(password, &user.password_hash).await? {
        st.throttle.recheck_failed(user.id, counted).await;
        return Err(ApiError::forbidden("The password is incorrect").with_code("wrong_password"));
    }
    st.throttle.recheck_succeeded(user.id, counted).await;
    Ok(HttpResponse::Ok().json(PasswordRechecked { user_id: user.id }))
}
