//! Customers' automations, platform-wide (marketplace's tables, read only).

use chrono::{DateTime, Utc};
use diesel::{QueryResult, pg::Pg, prelude::*};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use zimmer_db::{
    FilterSome,
    schema::{automations, user_automations, users},
};

use super::paged;

#[derive(Debug, Default, Clone)]
pub struct UaFilter {
    pub user_id: Option<i64>,
    pub automation_id: Option<i64>,
    pub status: Option<String>,
    pub integration_status: Option<String>,
}

fn filtered(f: &UaFilter) -> user_automations::BoxedQuery<'static, Pg> {
    user_automations::table
        .into_boxed()
        .filter_some(f.user_id, |u| user_automations::user_id.eq(u))
        .filter_some(f.automation_id, |a| user_automations::automation_id.eq(a))
        .filter_some(f.status.clone(), |s| user_automations::status.eq(s))
        .filter_some(f.integration_status.clone(), |s| {
            user_automations::integration_status.eq(s)
        })
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = user_automations)]
#[diesel(check_for_backend(Pg))]
pub struct UaRow {
    pub id: i64,
    pub user_id: i64,
    pub automation_id: i64,
    pub tokens_remaining: i64,
    pub demo_tokens: i64,
    pub is_demo_active: bool,
    pub demo_expired: bool,
    pub status: String,
    pub integration_status: String,
    pub provisioned_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A page, newest first, with whether a bot token is connected (never the token itself).
pub async fn list(
    conn: &mut AsyncPgConnection,
    f: &UaFilter,
    offset: i64,
    limit: i64,
) -> QueryResult<(Vec<(UaRow, bool)>, i64)> {
    let rows = filtered(f)
        .select((
            UaRow::as_select(),
            // Sealed tokens have a hash; rows not yet re-sealed still hold the plaintext.
            user_automations::telegram_bot_token_hash
                .is_not_null()
                .or(user_automations::telegram_bot_token.is_not_null()),
        ))
        .order(user_automations::id.desc());
    paged(conn, filtered(f).count(), rows, offset, limit).await
}

/// `(id, email, name)` of the given users, for lists that show who.
pub async fn user_names(
    conn: &mut AsyncPgConnection,
    ids: &[i64],
) -> QueryResult<Vec<(i64, String, String)>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    users::table
        .filter(users::id.eq_any(ids))
        .select((users::id, users::email, users::name))
        .load(conn)
        .await
}

/// `(id, name)` of the given automations.
pub async fn automation_names(
    conn: &mut AsyncPgConnection,
    ids: &[i64],
) -> QueryResult<Vec<(i64, String)>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    automations::table
        .filter(automations::id.eq_any(ids))
        .select((automations::id, automations::name))
        .load(conn)
        .await
}

/// The owner and automation of a user automation, if it exists (the marketplace's vendor
/// routes run the same check).
pub use zimmer_db::queries::user_automation_owner as owner;
