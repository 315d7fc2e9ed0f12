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
    state.users.forget(&d.user_id);
    revoke_locally(state, &d.sessions);
    state
        .platform
        .auth
        .revocations
        .deactivate_user(d.user_id, d.at.timestamp());
}

/// Inserts an account and puts `user.registered` in the outbox, inside the caller's
/// transaction; 409 `email_taken` when the email is already in use. `created_by` is the
/// manager who made the account (the event then names its role too); None for a signup.
pub async fn insert_registered_in_tx(
    conn: &mut AsyncPgConnection,
    new: &NewUser<'_>,
    created_by: Option<i64>,
) -> Result<User, ApiError> {
    let user = queries::insert_user(conn, new).await.map_err(|e| match e {
        DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _) => {
            ApiError::conflict("email_taken", "An account with this email already exists")
        }
        other => other.into(),
    })?;
    zimmer_events::enqueue_event(
        conn,
        PRODUCER,
        &UserRegistered {
            user_id: user.id,
            email: user.email.clone(),
            name: user.name.clone(),
            role: created_by.map(|_| user.role.clone()),
            created_by,
        },
    )
    .await?;
    Ok(user)
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
        let user = insert_registered_in_tx(conn, new, None).await?;
        let (session, refresh) = open_session(conn, state, user.id, meta).await?;
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
    let (user_id, revoked) = conn
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
            Ok::<_, ApiError>((user_id, revoked))
        })
        .await?;
    drop(conn);
    state.users.forget(&user_id); // the email is now verified
    revoke_locally(state, &revoked);
    Ok(revoked)
}

/// What an erasure did, for the after-commit local revocation and the answer.
pub struct Erasure {
    pub user_id: i64,
    pub deleted_at: DateTime<Utc>,
    pub deactivation: Option<Deactivation>,
}

/// Deletes (anonymises) an account inside the caller's transaction, the one operation behind
/// both `DELETE /api/auth/delete-account` (the owner) and a manager's permanent delete
/// (docs/panels.md "Users: the managers list and permanent delete"): deactivated if it was
/// not (sessions revoked, `session.revoked`, `user.deactivated`), name, email, phone,
/// password, 2FA, recovery codes, verification and reset tokens and sessions erased,
/// `deleted_at` set, and `user.updated {deleted: true}` in the outbox. The id stays:
/// payments, ledger and tickets keep it.
pub async fn erase_in_tx(
    conn: &mut AsyncPgConnection,
    state: &AppState,
    user_id: i64,
    actor_id: Option<i64>,
) -> Result<Erasure, ApiError> {
    let deactivation = deactivate_in_tx(conn, state, user_id, "account_deleted").await?;
    let deleted_at = queries::anonymise(conn, user_id).await?;
    enqueue_user_updated(
        conn,
        UserUpdated {
            user_id,
            name: Some(queries::DELETED_NAME.to_owned()),
            is_active: Some(false),
            deleted: Some(true),
            actor_id,
            ..UserUpdated::default()
        },
    )
    .await?;
    Ok(Erasure {
        user_id,
        deleted_at,
        deactivation,
    })
}

/// After commit: this instance rejects the user's tokens at once and forgets the cached user.
pub fn erase_locally(state: &AppState, e: &Erasure) {
    state.users.forget(&e.user_id);
    if let Some(d) = &e.deactivation {
        deactivate_locally(state, d);
    }
}

/// Account deletion by its owner, in one transaction ([`erase_in_tx`]).
pub async fn delete(state: &AppState, user_id: i64) -> Result<(), ApiError> {
    let mut conn = state.platform.pool.get().await?;
    let done = conn
        .transaction(async |conn| erase_in_tx(conn, state, user_id, None).await)
        .await?;
    drop(conn);
    erase_locally(state, &done);
    Ok(())
}
