//! Two-factor secrets and recovery codes.

use diesel::{dsl::now, prelude::*};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use zimmer_db::schema::{twofa_recovery_codes, users};

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

/// The user `user_id` while their 2FA is off.
#[diesel::dsl::auto_type(no_type_alias)]
fn twofa_off(user_id: i64) -> _ {
    users::table
        .find(user_id)
        .filter(users::twofa_enabled.eq(false))
}

/// Stores a pending (not yet activated) secret; false when 2FA is already on.
pub async fn set_pending_twofa_secret(
    conn: &mut AsyncPgConnection,
    user_id: i64,
    sealed: &[u8],
) -> QueryResult<bool> {
    diesel::update(twofa_off(user_id))
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
    diesel::update(twofa_off(user_id).filter(users::twofa_secret.eq(sealed)))
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

/// The user's recovery code with this hash, while it is unused.
#[diesel::dsl::auto_type(no_type_alias)]
fn unused_code<'a>(user_id: i64, hash: &'a [u8]) -> _ {
    twofa_recovery_codes::table
        .filter(twofa_recovery_codes::user_id.eq(user_id))
        .filter(twofa_recovery_codes::code_hash.eq(hash))
        .filter(twofa_recovery_codes::used_at.is_null())
}

/// Uses a recovery code, once: true when it was unused until this call.
pub async fn use_recovery_code(
    conn: &mut AsyncPgConnection,
    user_id: i64,
    hash: &[u8],
) -> QueryResult<bool> {
    let used: Vec<i64> = diesel::update(unused_code(user_id, hash))
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
    diesel::select(diesel::dsl::exists(unused_code(user_id, hash)))
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
