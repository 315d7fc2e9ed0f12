//! Account state: role, deactivation, activation, anonymisation (admin's internal API, account deletion).

use chrono::{DateTime, Utc};
use diesel::{dsl::now, prelude::*, sql_types::BigInt};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use zimmer_db::{
    models::User,
    schema::{
        email_verification_tokens, password_reset_tokens, sessions, twofa_recovery_codes, users,
    },
};

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

/// The name a deleted account keeps.
pub const DELETED_NAME: &str = "Deleted user";

/// What a deleted account keeps: the row (payments, ledger and tickets refer to it), with
/// nothing that identifies the person and no way to sign in; its email address is free again
/// (docs/panels.md "Users: the managers list and permanent delete"). Answers `deleted_at`.
pub async fn anonymise(conn: &mut AsyncPgConnection, user_id: i64) -> QueryResult<DateTime<Utc>> {
    #[derive(QueryableByName)]
    struct Deleted {
        #[diesel(sql_type = diesel::sql_types::Timestamptz)]
        deleted_at: DateTime<Utc>,
    }
    let deleted: Deleted = diesel::sql_query(
        "UPDATE users SET name = $2, \
             email = 'deleted-' || id || '@deleted.invalid', \
             phone_number = NULL, password_hash = '!deleted', \
             email_verified_at = NULL, twofa_enabled = FALSE, twofa_secret = NULL, \
             is_active = FALSE, deactivated_at = coalesce(deactivated_at, now()), \
             deleted_at = coalesce(deleted_at, now()), updated_at = now() \
         WHERE id = $1 RETURNING deleted_at",
    )
    .bind::<BigInt, _>(user_id)
    .bind::<diesel::sql_types::Text, _>(DELETED_NAME)
    .get_result(conn)
    .await?;
    // Sessions hold the devices and addresses the person signed in from. Their tokens are
    // already refused: the account is deactivated (`/internal/revocations` lists it).
    diesel::delete(sessions::table.filter(sessions::user_id.eq(user_id)))
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
        .await?;
    Ok(deleted.deleted_at)
}

/// The account's row, locked until the transaction ends (a permanent delete checks it first).
pub async fn lock_user(conn: &mut AsyncPgConnection, id: i64) -> QueryResult<Option<User>> {
    users::table
        .find(id)
        .select(User::as_select())
        .for_update()
        .first(conn)
        .await
        .optional()
}

/// When the account was deactivated and deleted (None: never / not deleted).
pub async fn lifecycle(
    conn: &mut AsyncPgConnection,
    user_id: i64,
) -> QueryResult<(Option<DateTime<Utc>>, Option<DateTime<Utc>>)> {
    users::table
        .find(user_id)
        .select((users::deactivated_at, users::deleted_at))
        .first(conn)
        .await
}

pub async fn set_name(conn: &mut AsyncPgConnection, user_id: i64, name: &str) -> QueryResult<bool> {
    diesel::update(users::table.find(user_id).filter(users::name.ne(name)))
        .set((users::name.eq(name), users::updated_at.eq(now)))
        .execute(conn)
        .await
        .map(|n| n == 1)
}
