//! Sessions: opening one at login or signup, and revoking them. Every revocation writes
//! `session.revoked` to the outbox in the transaction that revokes, and after commit this
//! instance rejects the sessions' tokens at once, before the event comes back through the broker.

use chrono::Utc;
use diesel_async::{AsyncConnection, AsyncPgConnection};
use uuid::Uuid;
use zimmer_db::models::{NewSession, Session};
use zimmer_events::contracts::SessionRevoked;
use zimmer_http::ApiError;

use super::PRODUCER;
use crate::{
    AppState,
    domain::tokens::{new_refresh_token, token_hash},
    queries,
};

/// Who is asking, for the session list.
pub struct ClientMeta {
    pub user_agent: Option<String>,
    pub ip: Option<String>,
    pub is_browser: bool,
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

/// A successful login (password, then 2FA when on): a new session with its refresh token.
/// None when the recovery code offered was unknown or already used.
pub async fn login(
    state: &AppState,
    user_id: i64,
    meta: &ClientMeta,
    recovery_code_hash: Option<&[u8]>,
) -> Result<Option<(Session, String)>, ApiError> {
    let mut conn = state.platform.pool.get().await?;
    conn.transaction(async |conn| {
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
    .await
}

/// Ends one session (of `user_id` when given); returns it, or nothing when it was not live
/// (or not that user's).
pub async fn revoke(
    state: &AppState,
    session_id: Uuid,
    user_id: Option<i64>,
    reason: &str,
) -> Result<Vec<Session>, ApiError> {
    let mut conn = state.platform.pool.get().await?;
    let revoked = conn
        .transaction(async |conn| {
            let revoked: Vec<_> = queries::revoke_session(conn, session_id, user_id, reason)
                .await?
                .into_iter()
                .collect();
            enqueue_revoked(conn, state, &revoked).await?;
            Ok::<_, ApiError>(revoked)
        })
        .await?;
    revoke_locally(state, &revoked);
    Ok(revoked)
}

/// Ends every live session of the user.
pub async fn revoke_all(
    state: &AppState,
    user_id: i64,
    reason: &str,
) -> Result<Vec<Session>, ApiError> {
    let mut conn = state.platform.pool.get().await?;
    let revoked = conn
        .transaction(async |conn| {
            let revoked = queries::revoke_user_sessions(conn, user_id, None, reason).await?;
            enqueue_revoked(conn, state, &revoked).await?;
            Ok::<_, ApiError>(revoked)
        })
        .await?;
    revoke_locally(state, &revoked);
    Ok(revoked)
}
