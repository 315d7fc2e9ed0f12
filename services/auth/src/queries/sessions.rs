//! Sessions and their refresh tokens, and the revocation list every service loads.

use chrono::{DateTime, Utc};
use diesel::{dsl::now, pg::Pg, prelude::*, query_builder::BoxedUpdateStatement};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;
use zimmer_db::{
    FilterSome,
    models::{NewRefreshToken, NewSession, Session},
    schema::{refresh_tokens, sessions, users},
};
use zimmer_service::{RevocationList, RevokedSession, RevokedUser};

/// A new session with its first refresh token.
pub async fn create_session(
    conn: &mut AsyncPgConnection,
    new: &NewSession<'_>,
    refresh_hash: &[u8],
) -> QueryResult<Session> {
    let session = diesel::insert_into(sessions::table)
        .values(new)
        .returning(Session::as_returning())
        .get_result(conn)
        .await?;
    diesel::insert_into(refresh_tokens::table)
        .values(&NewRefreshToken {
            token_hash: refresh_hash,
            session_id: session.id,
        })
        .execute(conn)
        .await?;
    Ok(session)
}

pub enum Rotation {
    /// The token was current: it is now replaced by the new one.
    Rotated(Session),
    /// The token had been rotated before: someone is replaying it.
    Reused(Uuid),
    /// The session is revoked or expired.
    Dead,
    /// No such token was ever issued.
    Unknown,
}

/// Replaces a current refresh token by a new one, atomically: of two concurrent uses of the
/// same token exactly one wins the UPDATE, the other sees a replaced token (reuse).
pub async fn rotate_refresh_token(
    conn: &mut AsyncPgConnection,
    old_hash: &[u8],
    new_hash: &[u8],
) -> QueryResult<Rotation> {
    let claimed: Option<Uuid> = diesel::update(
        refresh_tokens::table
            .filter(refresh_tokens::token_hash.eq(old_hash))
            .filter(refresh_tokens::replaced_at.is_null()),
    )
    .set(refresh_tokens::replaced_at.eq(now))
    .returning(refresh_tokens::session_id)
    .get_result(conn)
    .await
    .optional()?;
    let Some(session_id) = claimed else {
        let known: Option<Uuid> = refresh_tokens::table
            .filter(refresh_tokens::token_hash.eq(old_hash))
            .select(refresh_tokens::session_id)
            .first(conn)
            .await
            .optional()?;
        return Ok(known.map_or(Rotation::Unknown, Rotation::Reused));
    };
    let session: Option<Session> = diesel::update(
        sessions::table
            .find(session_id)
            .filter(sessions::revoked_at.is_null())
            .filter(sessions::expires_at.gt(now)),
    )
    .set((
        sessions::last_used_at.eq(now),
        sessions::rotation_counter.eq(sessions::rotation_counter + 1),
    ))
    .returning(Session::as_returning())
    .get_result(conn)
    .await
    .optional()?;
    let Some(session) = session else {
        return Ok(Rotation::Dead);
    };
    diesel::insert_into(refresh_tokens::table)
        .values(&NewRefreshToken {
            token_hash: new_hash,
            session_id,
        })
        .execute(conn)
        .await?;
    Ok(Rotation::Rotated(session))
}

/// The session a refresh token (current or rotated) belongs to.
pub async fn session_of_refresh_token(
    conn: &mut AsyncPgConnection,
    hash: &[u8],
) -> QueryResult<Option<Session>> {
    refresh_tokens::table
        .inner_join(sessions::table)
        .filter(refresh_tokens::token_hash.eq(hash))
        .select(Session::as_select())
        .first(conn)
        .await
        .optional()
}

/// Revokes one session if it is still active; returns it when this call revoked it.
pub async fn revoke_session(
    conn: &mut AsyncPgConnection,
    session_id: Uuid,
    user_id: Option<i64>,
    reason: &str,
) -> QueryResult<Option<Session>> {
    let which = diesel::update(sessions::table)
        .filter(sessions::id.eq(session_id))
        .into_boxed()
        .filter_some(user_id, |u| sessions::user_id.eq(u));
    // The id is the key: one row at most.
    Ok(revoke_active(conn, which, reason).await?.pop())
}

/// Revokes every active session of a user (but `keep`), returning those it revoked.
pub async fn revoke_user_sessions(
    conn: &mut AsyncPgConnection,
    user_id: i64,
    keep: Option<Uuid>,
    reason: &str,
) -> QueryResult<Vec<Session>> {
    let which = diesel::update(sessions::table)
        .filter(sessions::user_id.eq(user_id))
        .into_boxed()
        .filter_some(keep, |k| sessions::id.ne(k));
    revoke_active(conn, which, reason).await
}

/// Revokes those of the sessions `which` selects that are still active, returning them.
async fn revoke_active(
    conn: &mut AsyncPgConnection,
    which: BoxedUpdateStatement<'_, Pg, sessions::table>,
    reason: &str,
) -> QueryResult<Vec<Session>> {
    which
        .filter(sessions::revoked_at.is_null())
        .set((
            sessions::revoked_at.eq(now),
            sessions::revoked_reason.eq(reason),
        ))
        .returning(Session::as_returning())
        .get_results(conn)
        .await
}

/// When the person signed in to this session (its creation: refreshes keep the session), if
/// it is one of theirs.
pub async fn session_signed_in_at(
    conn: &mut AsyncPgConnection,
    session_id: Uuid,
    user_id: i64,
) -> QueryResult<Option<DateTime<Utc>>> {
    sessions::table
        .find(session_id)
        .filter(sessions::user_id.eq(user_id))
        .select(sessions::created_at)
        .first(conn)
        .await
        .optional()
}

pub async fn active_sessions(
    conn: &mut AsyncPgConnection,
    user_id: i64,
) -> QueryResult<Vec<Session>> {
    sessions::table
        .filter(sessions::user_id.eq(user_id))
        .filter(sessions::revoked_at.is_null())
        .filter(sessions::expires_at.gt(now))
        .order(sessions::last_used_at.desc())
        .select(Session::as_select())
        .load(conn)
        .await
}

/// Revocations that can still matter: sessions revoked, and users deactivated, within the
/// lifetime of an access token.
pub async fn live_revocations(
    conn: &mut AsyncPgConnection,
    since: DateTime<Utc>,
    access_ttl_secs: i64,
) -> QueryResult<RevocationList> {
    let revoked: Vec<(Uuid, i64, DateTime<Utc>)> = sessions::table
        .filter(sessions::revoked_at.gt(since))
        .select((
            sessions::id,
            sessions::user_id,
            sessions::revoked_at.assume_not_null(),
        ))
        .load(conn)
        .await?;
    let deactivated: Vec<(i64, DateTime<Utc>)> = users::table
        .filter(users::is_active.eq(false))
        .filter(users::deactivated_at.gt(since))
        .select((users::id, users::deactivated_at.assume_not_null()))
        .load(conn)
        .await?;
    Ok(RevocationList {
        sessions: revoked
            .into_iter()
            .map(|(session_id, user_id, at)| RevokedSession {
                session_id,
                user_id: Some(user_id),
                expires_at: at + chrono::Duration::seconds(access_ttl_secs),
            })
            .collect(),
        users: deactivated
            .into_iter()
            .map(|(user_id, deactivated_at)| RevokedUser {
                user_id,
                deactivated_at,
            })
            .collect(),
    })
}
