//! Automations as staff manage them (internal API), vendor authentication and health.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde::Serialize;
use zimmer_db::{
    models::marketplace::{Automation, AutomationChanges, NewAutomation},
    schema::{automations, user_automations},
};

/// The full automation for staff: everything but the token hash.
#[derive(Debug, Clone, Serialize)]
pub struct AdminAutomation {
    pub id: i64,
    pub name: String,
    pub description: String,
    pub pricing_type: String,
    pub price_per_token: i64,
    pub demo_tokens: i64,
    pub status: String,
    pub is_listed: bool,
    pub health_status: String,
    pub last_health_at: Option<DateTime<Utc>>,
    pub provision_url: Option<String>,
    pub health_check_url: Option<String>,
    pub has_service_token: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<Automation> for AdminAutomation {
    fn from(a: Automation) -> Self {
        Self {
            id: a.id,
            name: a.name,
            description: a.description,
            pricing_type: a.pricing_type,
            price_per_token: a.price_per_token,
            demo_tokens: a.demo_tokens,
            status: a.status,
            is_listed: a.is_listed,
            health_status: a.health_status,
            last_health_at: a.last_health_at,
            provision_url: a.provision_url,
            health_check_url: a.health_check_url,
            has_service_token: a.service_token_hash.is_some(),
            created_at: a.created_at,
            updated_at: a.updated_at,
        }
    }
}

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

/// Replaces the service token (its hash); the previous one stops working at once.
pub async fn set_token_hash(
    conn: &mut AsyncPgConnection,
    id: i64,
    hash: &[u8],
) -> QueryResult<bool> {
    let n = diesel::update(automations::table.find(id))
        .set((
            automations::service_token_hash.eq(hash),
            automations::updated_at.eq(diesel::dsl::now),
        ))
        .execute(conn)
        .await?;
    Ok(n == 1)
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
