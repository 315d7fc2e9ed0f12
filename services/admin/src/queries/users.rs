//! Users as staff see them (read straight from auth's table; auth alone writes it).

use chrono::{DateTime, Utc};
use diesel::{QueryResult, pg::Pg, prelude::*};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde::Serialize;
use zimmer_db::{
    FilterSome,
    schema::{automations, user_automations, users},
};

use super::paged;

#[derive(Debug, Clone, Queryable, Selectable, Serialize)]
#[diesel(table_name = users)]
#[diesel(check_for_backend(Pg))]
pub struct UserRow {
    pub id: i64,
    pub name: String,
    pub email: String,
    pub phone_number: Option<String>,
    pub role: String,
    pub is_active: bool,
    pub email_verified_at: Option<DateTime<Utc>>,
    pub twofa_enabled: bool,
    pub last_login_at: Option<DateTime<Utc>>,
    pub deactivated_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Default, Clone)]
pub struct UserFilter {
    /// Matches email, name or phone number anywhere (case-insensitive).
    pub search: Option<String>,
    pub role: Option<String>,
    pub is_active: Option<bool>,
}

/// Deleted (anonymised) accounts leave every list and count (docs/panels.md "Users").
fn filtered(f: &UserFilter) -> users::BoxedQuery<'static, Pg> {
    let search = f.search.as_deref().map(zimmer_db::contains_pattern);
    users::table
        .filter(users::deleted_at.is_null())
        .into_boxed()
        .filter_some(search, |p| {
            users::email
                .ilike(p.clone())
                .or(users::name.ilike(p.clone()))
                .or(users::phone_number.ilike(p))
        })
        .filter_some(f.role.clone(), |r| users::role.eq(r))
        .filter_some(f.is_active, |a| users::is_active.eq(a))
}

/// A page of users, newest first, and how many match.
pub async fn list(
    conn: &mut AsyncPgConnection,
    f: &UserFilter,
    offset: i64,
    limit: i64,
) -> QueryResult<(Vec<UserRow>, i64)> {
    let rows = filtered(f)
        .select(UserRow::as_select())
        .order(users::id.desc());
    paged(conn, filtered(f).count(), rows, offset, limit).await
}

/// A user not deleted.
pub async fn get(conn: &mut AsyncPgConnection, id: i64) -> QueryResult<Option<UserRow>> {
    users::table
        .find(id)
        .filter(users::deleted_at.is_null())
        .select(UserRow::as_select())
        .first(conn)
        .await
        .optional()
}

/// Role of a user, for the handler's "staff targets need a manager" check.
pub async fn role_of(conn: &mut AsyncPgConnection, id: i64) -> QueryResult<Option<String>> {
    users::table
        .find(id)
        .select(users::role)
        .first(conn)
        .await
        .optional()
}

/// One of the user's automations, for the user view.
#[derive(Debug, Clone, Queryable)]
pub struct OwnedAutomation {
    pub id: i64,
    pub automation_id: i64,
    pub automation_name: String,
    pub tokens_remaining: i64,
    pub demo_tokens: i64,
    pub status: String,
    pub integration_status: String,
    pub created_at: DateTime<Utc>,
}

pub async fn automations_of(
    conn: &mut AsyncPgConnection,
    user_id: i64,
) -> QueryResult<Vec<OwnedAutomation>> {
    user_automations::table
        .inner_join(automations::table)
        .filter(user_automations::user_id.eq(user_id))
        .select((
            user_automations::id,
            user_automations::automation_id,
            automations::name,
            user_automations::tokens_remaining,
            user_automations::demo_tokens,
            user_automations::status,
            user_automations::integration_status,
            user_automations::created_at,
        ))
        .order(user_automations::id)
        .load(conn)
        .await
}

/// Counters of the user view.
#[derive(Debug, Clone, Copy, Default, QueryableByName)]
pub struct UserCounters {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub payments: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub payments_succeeded: i64,
    /// Rials of succeeded payments (managers only: it is revenue).
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub spent: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub tickets: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub tickets_open: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub active_sessions: i64,
}

/// One statement; each part is an index range on `user_id`.
pub async fn counters(conn: &mut AsyncPgConnection, user_id: i64) -> QueryResult<UserCounters> {
    diesel::sql_query(
        "SELECT p.n AS payments, p.ok AS payments_succeeded, p.spent, \
                t.n AS tickets, t.open AS tickets_open, s.n AS active_sessions \
         FROM (SELECT count(*) AS n, count(*) FILTER (WHERE status = 'succeeded') AS ok, \
                      coalesce(sum(amount) FILTER (WHERE status = 'succeeded'), 0)::bigint AS spent \
               FROM payments WHERE user_id = $1) p, \
              (SELECT count(*) AS n, \
                      count(*) FILTER (WHERE status IN ('open', 'pending', 'in_progress')) AS open \
               FROM tickets WHERE user_id = $1 AND deleted_at IS NULL) t, \
              (SELECT count(*) AS n FROM sessions \
               WHERE user_id = $1 AND revoked_at IS NULL AND expires_at > now()) s",
    )
    .bind::<diesel::sql_types::BigInt, _>(user_id)
    .get_result(conn)
    .await
}

/// Active accounts, all or of one role: how many a broadcast reaches.
pub async fn count_active(conn: &mut AsyncPgConnection, role: Option<&str>) -> QueryResult<i64> {
    users::table
        .filter(users::is_active.eq(true))
        .filter(users::deleted_at.is_null())
        .into_boxed()
        .filter_some(role, |r| users::role.eq(r.to_owned()))
        .count()
        .get_result(conn)
        .await
}
