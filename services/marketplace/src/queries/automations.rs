//! Automations as staff manage them (internal API), vendor authentication and health.

use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use zimmer_db::{
    models::marketplace::{Automation, AutomationChanges, NewAutomation},
    schema::{automations, user_automations},
};

pub async fn all(conn: &mut AsyncPgConnection) -> QueryResult<Vec<Automation>> {
    automations::table
        .order(automations::id.asc())
        .select(Automation::as_select())
        .load(conn)
        .await
}

pub async fn get(conn: &mut AsyncPgConnection, id: i64) -> QueryResult<Option<Automation>> {
    automations::table
        .find(id)
        .select(Automation::as_select())
        .first(conn)
        .await
        .optional()
}

pub async fn insert(
    conn: &mut AsyncPgConnection,
    new: &NewAutomation<'_>,
) -> QueryResult<Automation> {
    diesel::insert_into(automations::table)
        .values(new)
        .returning(Automation::as_returning())
        .get_result(conn)
        .await
}

pub async fn update(
    conn: &mut AsyncPgConnection,
    id: i64,
    changes: &AutomationChanges,
) -> QueryResult<Option<Automation>> {
    diesel::update(automations::table.find(id))
        .set(changes)
        .returning(Automation::as_returning())
        .get_result(conn)
        .await
        .optional()
}

pub async fn has_users(conn: &mut AsyncPgConnection, id: i64) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(
        user_automations::table.filter(user_automations::automation_id.eq(id)),
    ))
    .get_result(conn)
    .await
}

pub async fn delete(conn: &mut AsyncPgConnection, id: i64) -> QueryResult<usize> {
    diesel::delete(automations::table.find(id))
        .execute(conn)
        .await
}

/// Replaces the service token (its hash, and its tail for the masked view); the previous one
/// stops working at once.
pub async fn set_token_hash(
    conn: &mut AsyncPgConnection,
    id: i64,
    hash: &[u8],
    tail: &str,
) -> QueryResult<bool> {
    let n = diesel::update(automations::table.find(id))
        .set((
            automations::service_token_hash.eq(hash),
            automations::service_token_tail.eq(tail),
            automations::updated_at.eq(diesel::dsl::now),
        ))
        .execute(conn)
        .await?;
    Ok(n == 1)
}

/// Removes the service token: `None` when there is no such automation, else whether it had
/// one. Consumption with the old token answers 401 from now on.
pub async fn clear_token(conn: &mut AsyncPgConnection, id: i64) -> QueryResult<Option<bool>> {
    let n = diesel::update(
        automations::table
            .find(id)
            .filter(automations::service_token_hash.is_not_null()),
    )
    .set((
        automations::service_token_hash.eq(None::<Vec<u8>>),
        automations::service_token_tail.eq(None::<String>),
        automations::updated_at.eq(diesel::dsl::now),
    ))
    .execute(conn)
    .await?;
    if n == 1 {
        return Ok(Some(true));
    }
    let exists: bool = diesel::select(diesel::dsl::exists(automations::table.find(id)))
        .get_result(conn)
        .await?;
    Ok(exists.then_some(false))
}

/// The automation a service token belongs to: `(id, status)`.
pub async fn by_token_hash(
    conn: &mut AsyncPgConnection,
    hash: &[u8],
) -> QueryResult<Option<(i64, String)>> {
    automations::table
        .filter(automations::service_token_hash.eq(hash))
        .select((automations::id, automations::status))
        .first(conn)
        .await
        .optional()
}

/// What the health checker needs of one automation.
#[derive(Debug, Clone, Queryable)]
pub struct HealthTarget {
    pub id: i64,
    pub health_check_url: String,
    pub token_hash: Option<Vec<u8>>,
}

pub async fn health_targets(conn: &mut AsyncPgConnection) -> QueryResult<Vec<HealthTarget>> {
    automations::table
        .filter(automations::status.eq("active"))
        .filter(automations::health_check_url.is_not_null())
        .order(automations::id.asc())
        .select((
            automations::id,
            automations::health_check_url.assume_not_null(),
            automations::service_token_hash,
        ))
        .load(conn)
        .await
}

pub async fn health_target(
    conn: &mut AsyncPgConnection,
    id: i64,
) -> QueryResult<Option<(Option<String>, Option<Vec<u8>>)>> {
    automations::table
        .find(id)
        .select((
            automations::health_check_url,
            automations::service_token_hash,
        ))
        .first(conn)
        .await
        .optional()
}

/// Records a check under a row lock; returns the previous status (None: no such automation).
pub async fn record_health(
    conn: &mut AsyncPgConnection,
    id: i64,
    status: &str,
) -> QueryResult<Option<String>> {
    let previous: Option<String> = automations::table
        .find(id)
        .select(automations::health_status)
        .for_update()
        .first(conn)
        .await
        .optional()?;
    if previous.is_some() {
        diesel::update(automations::table.find(id))
            .set((
                automations::health_status.eq(status),
                automations::last_health_at.eq(diesel::dsl::now),
            ))
            .execute(conn)
            .await?;
    }
    Ok(previous)
}
