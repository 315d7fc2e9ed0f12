//! Reads that more than one service runs on the same table, written once.

use diesel::{QueryResult, prelude::*};
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::schema::user_automations;

/// `(user_id, automation_id)` of a user automation, if it exists: the ownership check of
/// admin's token adjustments and the marketplace's vendor routes.
pub async fn user_automation_owner(
    conn: &mut AsyncPgConnection,
    id: i64,
) -> QueryResult<Option<(i64, i64)>> {
    user_automations::table
        .find(id)
        .select((user_automations::user_id, user_automations::automation_id))
        .first(conn)
        .await
        .optional()
}
