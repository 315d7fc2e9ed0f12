//! Reads of marketplace's tables that billing needs to price a purchase.

use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use zimmer_db::schema::{automations, user_automations};

/// What a purchase needs of an automation (marketplace's table; billing only reads it).
#[derive(Debug, Clone, Queryable)]
pub struct AutomationPrice {
    pub id: i64,
    pub name: String,
    pub price_per_token: i64,
    pub status: String,
}

pub async fn automation_price(
    conn: &mut AsyncPgConnection,
    automation_id: i64,
) -> QueryResult<Option<AutomationPrice>> {
    automations::table
        .find(automation_id)
        .select((
            automations::id,
            automations::name,
            automations::price_per_token,
            automations::status,
        ))
        .first(conn)
        .await
        .optional()
}

/// The caller's user_automation of this automation: `(id, status)`.
pub async fn user_automation_of(
    conn: &mut AsyncPgConnection,
    user_id: i64,
    automation_id: i64,
) -> QueryResult<Option<(i64, String)>> {
    user_automations::table
        .filter(user_automations::user_id.eq(user_id))
        .filter(user_automations::automation_id.eq(automation_id))
        .select((user_automations::id, user_automations::status))
        .first(conn)
        .await
        .optional()
}
