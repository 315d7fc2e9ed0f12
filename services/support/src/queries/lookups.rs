//! Reads of other services' tables that notification texts need (names only; support never
//! writes them).

use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use zimmer_db::schema::{automations, user_automations};

/// The automation (id, name) behind a customer's user automation.
pub async fn automation_of(
    conn: &mut AsyncPgConnection,
    user_automation_id: i64,
) -> QueryResult<Option<(i64, String)>> {
    user_automations::table
        .inner_join(automations::table)
        .filter(user_automations::id.eq(user_automation_id))
        .select((automations::id, automations::name))
        .first(conn)
        .await
        .optional()
}

pub async fn automation_name(conn: &mut AsyncPgConnection, id: i64) -> QueryResult<Option<String>> {
    automations::table
        .find(id)
        .select(automations::name)
        .first(conn)
        .await
        .optional()
}
