//! Email verification links and codes.

use diesel::{
    dsl::now,
    prelude::*,
    sql_types::{BigInt, Binary, Bool, Double, Integer},
};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use zimmer_db::{
    models::User,
    schema::{email_verification_tokens, users},
};

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
