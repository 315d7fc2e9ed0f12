//! Password-reset links.

use diesel::{
    dsl::now,
    prelude::*,
    sql_types::{BigInt, Binary, Double, Text},
};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use zimmer_db::schema::password_reset_tokens;

/// Live (unused, unexpired) reset tokens with this hash: 0 or 1.
pub async fn live_reset_tokens(
    conn: &mut AsyncPgConnection,
    token_hash: &[u8],
) -> QueryResult<i64> {
    password_reset_tokens::table
        .filter(password_reset_tokens::token_hash.eq(token_hash))
        .filter(password_reset_tokens::used_at.is_null())
        .filter(password_reset_tokens::expires_at.gt(now))
        .count()
        .get_result(conn)
        .await
}

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
