//! Account changes that other services hear about: registration, `user.updated` and
//! deactivation.

use chrono::{DateTime, Utc};
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel_async::{AsyncConnection, AsyncPgConnection};
use zimmer_db::models::{NewUser, Session, User};
use zimmer_events::contracts::{UserDeactivated, UserRegistered, UserUpdated};
use zimmer_http::ApiError;

use super::{
    PRODUCER,
    sessions::{ClientMeta, enqueue_revoked, open_session, revoke_locally},
};
use crate::{AppState, queries};

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

/// A self-service signup: the customer, their first session, and `user.registered` in the
/// outbox, in one transaction. 409 `email_taken` when the email is already in use.
pub async fn register(
    state: &AppState,
    new: &NewUser<'_>,
    meta: &ClientMeta,
) -> Result<(User, Session, String), ApiError> {
    let mut conn = state.platform.pool.get().await?;
    conn.transaction(async |conn| {
        let user = queries::insert_user(conn, new).await.map_err(|e| match e {
            DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _) => {
                ApiError::conflict("email_taken", "An account with this email already exists")
            }
            other => other.into(),
        })?;
        let (session, refresh) = open_session(conn, state, user.id, meta).await?;
        zimmer_events::enqueue_event(
            conn,
            PRODUCER,
            &UserRegistered {
                user_id: user.id,
                email: user.email.clone(),
                name: user.name.clone(),
                role: None,
                created_by: None,
            },
        )
        .await?;
        Ok::<_, ApiError>((user, session, refresh))
    })
    .await
}

/// 422 `invalid_token`: the reset link is unknown, used, expired, or its account deactivated.
pub fn invalid_reset_token() -> ApiError {
    ApiError::invalid(
        "token",
        "This reset link is invalid, already used or expired; request a new one",
    )
    .with_code("invalid_token")
}

/// A password reset: the link used (once), the new password hash set, the email marked
/// verified (the mail reached its owner), and every session ended. Nothing changes when the
/// link is not valid.
pub async fn reset_password(
    state: &AppState,
    token_hash: &[u8],
    new_hash: &str,
) -> Result<Vec<Session>, ApiError> {
    let mut conn = state.platform.pool.get().await?;
    let revoked = conn
        .transaction(async |conn| {
            let Some(user_id) = queries::consume_reset_token(conn, token_hash).await? else {
                return Err(invalid_reset_token());
            };
            match queries::user_by_id(conn, user_id).await? {
                Some(u) if u.is_active => {}
                _ => return Err(invalid_reset_token()),
            }
            queries::set_password_hash(conn, user_id, new_hash).await?;
            queries::mark_email_verified(conn, user_id).await?;
            let revoked =
                queries::revoke_user_sessions(conn, user_id, None, "password_reset").await?;
            enqueue_revoked(conn, state, &revoked).await?;
            tracing::info!(
                user_id,
                sessions = revoked.len(),
                "password reset; sessions revoked"
            );
            Ok::<_, ApiError>(revoked)
        })
        .await?;
    drop(conn);
    revoke_locally(state, &revoked);
    Ok(revoked)
}

/// Account deletion: deactivated (sessions revoked, `session.revoked`, `user.deactivated`),
/// anonymised, and `user.updated` marking it deleted, in one transaction.
pub async fn delete(state: &AppState, user_id: i64) -> Result<(), ApiError> {
    let mut conn = state.platform.pool.get().await?;
    let done = conn
        .transaction(async |conn| {
            let done = deactivate_in_tx(conn, state, user_id, "account_deleted").await?;
            queries::anonymise(conn, user_id).await?;
            enqueue_user_updated(
                conn,
                UserUpdated {
                    user_id,
                    name: Some("Deleted user".to_owned()),
                    is_active: Some(false),
                    deleted: Some(true),
                    ..UserUpdated::default()
                },
            )
            .await?;
            Ok::<_, ApiError>(done)
        })
        .await?;
    drop(conn);
    if let Some(d) = &done {
        deactivate_locally(state, d);
    }
    Ok(())
}
