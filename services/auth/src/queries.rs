//! Auth's database access. Every function takes the connection, so handlers compose them in
//! one transaction together with the outbox insert of the event they cause.

use chrono::{DateTime, Utc};
use diesel::{
    dsl::now,
    prelude::*,
    sql_types::{BigInt, Binary, Bool, Double, Integer, Text},
};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;
use zimmer_db::{
    models::{NewRefreshToken, NewSession, NewUser, Session, User},
    schema::{
        email_verification_tokens, password_reset_tokens, refresh_tokens, sessions,
        twofa_recovery_codes, users,
    },
};
use zimmer_service::{RevocationList, RevokedSession, RevokedUser};

pub async fn insert_user(conn: &mut AsyncPgConnection, new: &NewUser<'_>) -> QueryResult<User> {
    diesel::insert_into(users::table)
        .values(new)
        .returning(User::as_returning())
        .get_result(conn)
        .await
}

pub async fn user_by_email(conn: &mut AsyncPgConnection, email: &str) -> QueryResult<Option<User>> {
    users::table
        .filter(users::email.eq(email))
        .select(User::as_select())
        .first(conn)
        .await
        .optional()
}

pub async fn user_by_id(conn: &mut AsyncPgConnection, id: i64) -> QueryResult<Option<User>> {
    users::table
        .find(id)
        .select(User::as_select())
        .first(conn)
        .await
        .optional()
}

#[derive(AsChangeset, Default)]
#[diesel(table_name = users)]
pub struct ProfileChanges<'a> {
    pub name: Option<&'a str>,
    /// `Some(None)` clears the number.
    pub phone_number: Option<Option<&'a str>>,
}

pub async fn update_profile(
    conn: &mut AsyncPgConnection,
    id: i64,
    changes: &ProfileChanges<'_>,
) -> QueryResult<User> {
    diesel::update(users::table.find(id))
        .set((changes, users::updated_at.eq(now)))
        .returning(User::as_returning())
        .get_result(conn)
        .await
}

pub async fn set_password_hash(
    conn: &mut AsyncPgConnection,
    id: i64,
    hash: &str,
) -> QueryResult<()> {
    diesel::update(users::table.find(id))
        .set((users::password_hash.eq(hash), users::updated_at.eq(now)))
        .execute(conn)
        .await
        .map(drop)
}

pub async fn touch_last_login(conn: &mut AsyncPgConnection, id: i64) -> QueryResult<()> {
    diesel::update(users::table.find(id))
        .set(users::last_login_at.eq(now))
        .execute(conn)
        .await
        .map(drop)
}

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
    let mut query = diesel::update(sessions::table)
        .filter(sessions::id.eq(session_id))
        .filter(sessions::revoked_at.is_null())
        .into_boxed();
    if let Some(user_id) = user_id {
        query = query.filter(sessions::user_id.eq(user_id));
    }
    query
        .set((
            sessions::revoked_at.eq(now),
            sessions::revoked_reason.eq(reason),
        ))
        .returning(Session::as_returning())
        .get_result(conn)
        .await
        .optional()
}

/// Revokes every active session of a user (but `keep`), returning those it revoked.
pub async fn revoke_user_sessions(
    conn: &mut AsyncPgConnection,
    user_id: i64,
    keep: Option<Uuid>,
    reason: &str,
) -> QueryResult<Vec<Session>> {
    let mut query = diesel::update(sessions::table)
        .filter(sessions::user_id.eq(user_id))
        .filter(sessions::revoked_at.is_null())
        .into_boxed();
    if let Some(keep) = keep {
        query = query.filter(sessions::id.ne(keep));
    }
    query
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

// ---- email verification ----

/// A new verification link + code for the user; earlier unused ones expire now (only the
/// latest mail works).
pub async fn create_email_verification(
    conn: &mut AsyncPgConnection,
    user_id: i64,
    token_hash: &[u8],
    code_hash: &[u8],
    ttl_secs: f64,
) -> QueryResult<()> {
    diesel::sql_query(
        "UPDATE email_verification_tokens SET expires_at = now() \
         WHERE user_id = $1 AND used_at IS NULL AND expires_at > now()",
    )
    .bind::<BigInt, _>(user_id)
    .execute(conn)
    .await?;
    diesel::sql_query(
        "INSERT INTO email_verification_tokens (user_id, token_hash, code_hash, expires_at) \
         VALUES ($1, $2, $3, now() + make_interval(secs => $4))",
    )
    .bind::<BigInt, _>(user_id)
    .bind::<Binary, _>(token_hash)
    .bind::<Binary, _>(code_hash)
    .bind::<Double, _>(ttl_secs)
    .execute(conn)
    .await
    .map(drop)
}

/// Uses a verification link token, once: the user it belongs to, or None when it is
/// unknown, used or expired.
pub async fn consume_email_token(
    conn: &mut AsyncPgConnection,
    token_hash: &[u8],
) -> QueryResult<Option<i64>> {
    diesel::update(
        email_verification_tokens::table
            .filter(email_verification_tokens::token_hash.eq(token_hash))
            .filter(email_verification_tokens::used_at.is_null())
            .filter(email_verification_tokens::expires_at.gt(now)),
    )
    .set(email_verification_tokens::used_at.eq(now))
    .returning(email_verification_tokens::user_id)
    .get_result(conn)
    .await
    .optional()
}

/// Most wrong codes one verification mail accepts.
pub const EMAIL_CODE_MAX_ATTEMPTS: i32 = 5;

pub enum CodeOutcome {
    Verified,
    Wrong {
        attempts_left: i32,
    },
    /// No live code: none sent, expired, used, or out of attempts.
    NoCode,
}

/// Tries a 6-digit code against the user's latest live verification, in one statement:
/// every try counts an attempt (concurrent guesses cannot exceed the limit), and a match
/// marks it used.
pub async fn try_email_code(
    conn: &mut AsyncPgConnection,
    user_id: i64,
    code_hash: &[u8],
) -> QueryResult<CodeOutcome> {
    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = Bool)]
        verified: bool,
        #[diesel(sql_type = Integer)]
        attempts: i32,
    }
    let row: Option<Row> = diesel::sql_query(
        "UPDATE email_verification_tokens t \
         SET attempts = t.attempts + 1, \
             used_at = CASE WHEN t.code_hash = $2 THEN now() ELSE NULL END \
         WHERE t.id = (SELECT id FROM email_verification_tokens \
                       WHERE user_id = $1 AND used_at IS NULL AND expires_at > now() \
                         AND attempts < $3 \
                       ORDER BY created_at DESC, id DESC LIMIT 1 FOR UPDATE) \
           AND t.used_at IS NULL AND t.attempts < $3 \
         RETURNING (t.used_at IS NOT NULL) AS verified, t.attempts",
    )
    .bind::<BigInt, _>(user_id)
    .bind::<Binary, _>(code_hash)
    .bind::<Integer, _>(EMAIL_CODE_MAX_ATTEMPTS)
    .get_result(conn)
    .await
    .optional()?;
    Ok(match row {
        None => CodeOutcome::NoCode,
        Some(r) if r.verified => CodeOutcome::Verified,
        Some(r) => CodeOutcome::Wrong {
            attempts_left: EMAIL_CODE_MAX_ATTEMPTS - r.attempts,
        },
    })
}

pub async fn mark_email_verified(conn: &mut AsyncPgConnection, user_id: i64) -> QueryResult<User> {
    diesel::sql_query(
        "UPDATE users SET email_verified_at = coalesce(email_verified_at, now()), \
         updated_at = now() WHERE id = $1",
    )
    .bind::<BigInt, _>(user_id)
    .execute(conn)
    .await?;
    users::table
        .find(user_id)
        .select(User::as_select())
        .first(conn)
        .await
}

// ---- password reset ----

pub struct ResetTarget {
    pub user_id: i64,
    pub name: String,
    pub email: String,
}

/// One statement whether or not the email has an account (so both take the same time):
/// for an active account, expires its earlier reset links and stores the new one.
pub async fn create_reset_token_for_email(
    conn: &mut AsyncPgConnection,
    email: &str,
    token_hash: &[u8],
    ttl_secs: f64,
) -> QueryResult<Option<ResetTarget>> {
    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = BigInt)]
        id: i64,
        #[diesel(sql_type = Text)]
        name: String,
        #[diesel(sql_type = Text)]
        email: String,
    }
    let row: Option<Row> = diesel::sql_query(
        "WITH u AS (SELECT id, name, email FROM users WHERE email = $1 AND is_active), \
         old AS (UPDATE password_reset_tokens SET expires_at = now() \
                 WHERE user_id IN (SELECT id FROM u) AND used_at IS NULL AND expires_at > now()), \
         ins AS (INSERT INTO password_reset_tokens (user_id, token_hash, expires_at) \
                 SELECT id, $2, now() + make_interval(secs => $3) FROM u RETURNING user_id) \
         SELECT u.id, u.name, u.email FROM u JOIN ins ON ins.user_id = u.id",
    )
    .bind::<Text, _>(email)
    .bind::<Binary, _>(token_hash)
    .bind::<Double, _>(ttl_secs)
    .get_result(conn)
    .await
    .optional()?;
    Ok(row.map(|r| ResetTarget {
        user_id: r.id,
        name: r.name,
        email: r.email,
    }))
}

/// A reset (or first-password) link for a known user, e.g. a staff invitation.
pub async fn create_reset_token(
    conn: &mut AsyncPgConnection,
    user_id: i64,
    token_hash: &[u8],
    ttl_secs: f64,
) -> QueryResult<()> {
    diesel::sql_query(
        "INSERT INTO password_reset_tokens (user_id, token_hash, expires_at) \
         VALUES ($1, $2, now() + make_interval(secs => $3))",
    )
    .bind::<BigInt, _>(user_id)
    .bind::<Binary, _>(token_hash)
    .bind::<Double, _>(ttl_secs)
    .execute(conn)
    .await
    .map(drop)
}

/// Uses a reset token, once; the user it belongs to. Every other live reset link of that
/// user expires with it.
pub async fn consume_reset_token(
    conn: &mut AsyncPgConnection,
    token_hash: &[u8],
) -> QueryResult<Option<i64>> {
    let user_id: Option<i64> = diesel::update(
        password_reset_tokens::table
            .filter(password_reset_tokens::token_hash.eq(token_hash))
            .filter(password_reset_tokens::used_at.is_null())
            .filter(password_reset_tokens::expires_at.gt(now)),
    )
    .set(password_reset_tokens::used_at.eq(now))
    .returning(password_reset_tokens::user_id)
    .get_result(conn)
    .await
    .optional()?;
    if let Some(user_id) = user_id {
        diesel::update(
            password_reset_tokens::table
                .filter(password_reset_tokens::user_id.eq(user_id))
                .filter(password_reset_tokens::used_at.is_null())
                .filter(password_reset_tokens::expires_at.gt(now)),
        )
        .set(password_reset_tokens::expires_at.eq(now))
        .execute(conn)
        .await?;
    }
    Ok(user_id)
}

// ---- two-factor ----

pub struct TwofaState {
    pub enabled: bool,
    pub sealed_secret: Option<Vec<u8>>,
}

pub async fn twofa_state(
    conn: &mut AsyncPgConnection,
    user_id: i64,
) -> QueryResult<Option<TwofaState>> {
    let row: Option<(bool, Option<Vec<u8>>)> = users::table
        .find(user_id)
        .select((users::twofa_enabled, users::twofa_secret))
        .first(conn)
        .await
        .optional()?;
    Ok(row.map(|(enabled, sealed_secret)| TwofaState {
        enabled,
        sealed_secret,
    }))
}

/// Stores a pending (not yet activated) secret; false when 2FA is already on.
pub async fn set_pending_twofa_secret(
    conn: &mut AsyncPgConnection,
    user_id: i64,
    sealed: &[u8],
) -> QueryResult<bool> {
    diesel::update(
        users::table
            .find(user_id)
            .filter(users::twofa_enabled.eq(false)),
    )
    .set((users::twofa_secret.eq(sealed), users::updated_at.eq(now)))
    .execute(conn)
    .await
    .map(|n| n == 1)
}

/// Turns 2FA on, only if the stored secret is still the one the code was checked against
/// (a concurrent re-initiate makes this false).
pub async fn enable_twofa(
    conn: &mut AsyncPgConnection,
    user_id: i64,
    sealed: &[u8],
) -> QueryResult<bool> {
    diesel::update(
        users::table
            .find(user_id)
            .filter(users::twofa_enabled.eq(false))
            .filter(users::twofa_secret.eq(sealed)),
    )
    .set((users::twofa_enabled.eq(true), users::updated_at.eq(now)))
    .execute(conn)
    .await
    .map(|n| n == 1)
}

pub async fn disable_twofa(conn: &mut AsyncPgConnection, user_id: i64) -> QueryResult<()> {
    diesel::update(users::table.find(user_id))
        .set((
            users::twofa_enabled.eq(false),
            users::twofa_secret.eq(None::<Vec<u8>>),
            users::updated_at.eq(now),
        ))
        .execute(conn)
        .await?;
    diesel::delete(twofa_recovery_codes::table.filter(twofa_recovery_codes::user_id.eq(user_id)))
        .execute(conn)
        .await
        .map(drop)
}

/// Replaces all recovery codes of a user by new ones (hashes).
pub async fn replace_recovery_codes(
    conn: &mut AsyncPgConnection,
    user_id: i64,
    hashes: &[Vec<u8>],
) -> QueryResult<()> {
    diesel::delete(twofa_recovery_codes::table.filter(twofa_recovery_codes::user_id.eq(user_id)))
        .execute(conn)
        .await?;
    let rows: Vec<_> = hashes
        .iter()
        .map(|h| {
            (
                twofa_recovery_codes::user_id.eq(user_id),
                twofa_recovery_codes::code_hash.eq(h.as_slice()),
            )
        })
        .collect();
    diesel::insert_into(twofa_recovery_codes::table)
        .values(rows)
        .execute(conn)
        .await
        .map(drop)
}

/// Uses a recovery code, once: true when it was unused until this call.
pub async fn use_recovery_code(
    conn: &mut AsyncPgConnection,
    user_id: i64,
    hash: &[u8],
) -> QueryResult<bool> {
    let used: Vec<i64> = diesel::update(
        twofa_recovery_codes::table
            .filter(twofa_recovery_codes::user_id.eq(user_id))
            .filter(twofa_recovery_codes::code_hash.eq(hash))
            .filter(twofa_recovery_codes::used_at.is_null()),
    )
    .set(twofa_recovery_codes::used_at.eq(now))
    .returning(twofa_recovery_codes::id)
    .get_results(conn)
    .await?;
    Ok(!used.is_empty())
}

pub async fn recovery_code_unused(
    conn: &mut AsyncPgConnection,
    user_id: i64,
    hash: &[u8],
) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(
        twofa_recovery_codes::table
            .filter(twofa_recovery_codes::user_id.eq(user_id))
            .filter(twofa_recovery_codes::code_hash.eq(hash))
            .filter(twofa_recovery_codes::used_at.is_null()),
    ))
    .get_result(conn)
    .await
}

pub async fn unused_recovery_codes(conn: &mut AsyncPgConnection, user_id: i64) -> QueryResult<i64> {
    twofa_recovery_codes::table
        .filter(twofa_recovery_codes::user_id.eq(user_id))
        .filter(twofa_recovery_codes::used_at.is_null())
        .count()
        .get_result(conn)
        .await
}

// ---- account state (admin's internal API, account deletion) ----

pub async fn set_role(
    conn: &mut AsyncPgConnection,
    user_id: i64,
    role: &str,
) -> QueryResult<Option<User>> {
    diesel::update(users::table.find(user_id).filter(users::role.ne(role)))
        .set((users::role.eq(role), users::updated_at.eq(now)))
        .returning(User::as_returning())
        .get_result(conn)
        .await
        .optional()
}

/// Deactivates an active user: the deactivation time, or None when it already was inactive.
pub async fn deactivate(
    conn: &mut AsyncPgConnection,
    user_id: i64,
) -> QueryResult<Option<DateTime<Utc>>> {
    diesel::update(users::table.find(user_id).filter(users::is_active.eq(true)))
        .set((
            users::is_active.eq(false),
            users::deactivated_at.eq(now),
            users::updated_at.eq(now),
        ))
        .returning(users::deactivated_at.assume_not_null())
        .get_result(conn)
        .await
        .optional()
}

/// Reactivates an inactive user; false when it already was active.
pub async fn activate(conn: &mut AsyncPgConnection, user_id: i64) -> QueryResult<bool> {
    diesel::update(
        users::table
            .find(user_id)
            .filter(users::is_active.eq(false)),
    )
    .set((
        users::is_active.eq(true),
        users::deactivated_at.eq(None::<DateTime<Utc>>),
        users::updated_at.eq(now),
    ))
    .execute(conn)
    .await
    .map(|n| n == 1)
}

/// What a deleted account keeps: the row (payments and tickets refer to it), with nothing
/// that identifies the person and no way to sign in.
pub async fn anonymise(conn: &mut AsyncPgConnection, user_id: i64) -> QueryResult<()> {
    diesel::sql_query(
        "UPDATE users SET name = 'Deleted user', \
             email = 'deleted-' || id || '@deleted.invalid', \
             phone_number = NULL, password_hash = '!deleted', \
             email_verified_at = NULL, twofa_enabled = FALSE, twofa_secret = NULL, \
             updated_at = now() \
         WHERE id = $1",
    )
    .bind::<BigInt, _>(user_id)
    .execute(conn)
    .await?;
    diesel::delete(twofa_recovery_codes::table.filter(twofa_recovery_codes::user_id.eq(user_id)))
        .execute(conn)
        .await?;
    diesel::delete(
        email_verification_tokens::table.filter(email_verification_tokens::user_id.eq(user_id)),
    )
    .execute(conn)
    .await?;
    diesel::delete(password_reset_tokens::table.filter(password_reset_tokens::user_id.eq(user_id)))
        .execute(conn)
        .await
        .map(drop)
}

pub async fn deactivated_at(
    conn: &mut AsyncPgConnection,
    user_id: i64,
) -> QueryResult<Option<DateTime<Utc>>> {
    users::table
        .find(user_id)
        .select(users::deactivated_at)
        .first(conn)
        .await
}
