//! Turning two-factor authentication on and off. Either change ends every other session of
//! the user, with `session.revoked` in the outbox (as logout), in the same transaction.

use diesel_async::{AsyncConnection, AsyncPgConnection};
use uuid::Uuid;
use zimmer_db::models::Session;
use zimmer_http::ApiError;

use super::sessions::{enqueue_revoked, revoke_locally};
use crate::{AppState, queries};

/// Inside the transaction: every session of the user but `keep` ends.
async fn revoke_other_sessions(
    conn: &mut AsyncPgConnection,
    state: &AppState,
    user_id: i64,
    keep: Uuid,
    reason: &str,
) -> Result<Vec<Session>, ApiError> {
    let revoked = queries::revoke_user_sessions(conn, user_id, Some(keep), reason).await?;
    enqueue_revoked(conn, state, &revoked).await?;
    Ok(revoked)
}

/// Turns 2FA on with the pending `sealed` secret and new recovery codes; 409
/// `twofa_changed` when the pending secret changed meanwhile. Returns the sessions ended.
pub async fn enable(
    state: &AppState,
    user_id: i64,
    keep: Uuid,
    sealed: &[u8],
    recovery_hashes: &[Vec<u8>],
) -> Result<Vec<Session>, ApiError> {
    let mut conn = state.platform.pool.get().await?;
    let revoked = conn
        .transaction(async |conn| {
            if !queries::enable_twofa(conn, user_id, sealed).await? {
                return Err(ApiError::conflict(
                    "twofa_changed",
                    "Two-factor setup changed meanwhile; start again",
                ));
            }
            queries::replace_recovery_codes(conn, user_id, recovery_hashes).await?;
            revoke_other_sessions(conn, state, user_id, keep, "twofa_enabled").await
        })
        .await?;
    drop(conn);
    revoke_locally(state, &revoked);
    Ok(revoked)
}

/// Turns 2FA off (a pending secret is dropped too). Other sessions end only when it `was_on`.
pub async fn disable(
    state: &AppState,
    user_id: i64,
    keep: Uuid,
    was_on: bool,
) -> Result<Vec<Session>, ApiError> {
    let mut conn = state.platform.pool.get().await?;
    let revoked = conn
        .transaction(async |conn| {
            queries::disable_twofa(conn, user_id).await?;
            if was_on {
                revoke_other_sessions(conn, state, user_id, keep, "twofa_disabled").await
            } else {
                Ok(Vec::new())
            }
        })
        .await?;
    drop(conn);
    if was_on {
        revoke_locally(state, &revoked);
    }
    Ok(revoked)
}
