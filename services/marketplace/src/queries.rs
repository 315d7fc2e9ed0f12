use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde::Serialize;
use zimmer_db::schema::{automations, user_automations};

/// One of a customer's automations as the panel lists it (clients.md).
#[derive(Debug, Serialize, Queryable)]
pub struct UserAutomationItem {
    pub id: i64,
    pub automation_id: i64,
    pub name: String,
    pub description: String,
    pub tokens_remaining: i64,
    pub demo_tokens: i64,
    pub is_demo_active: bool,
    pub demo_expired: bool,
    pub integration_status: String,
    pub status: String,
    pub created_at: DateTime<Utc>,
}

pub async fn user_automations(
    conn: &mut AsyncPgConnection,
    user_id: i64,
    active_only: bool,
) -> QueryResult<Vec<UserAutomationItem>> {
    let mut query = user_automations::table
        .inner_join(automations::table)
        .filter(user_automations::user_id.eq(user_id))
        .into_boxed();
    if active_only {
        query = query.filter(user_automations::status.eq("active"));
    }
    query
        .order(user_automations::created_at.desc())
        .select((
            user_automations::id,
            user_automations::automation_id,
            automations::name,
            automations::description,
            user_automations::tokens_remaining,
            user_automations::demo_tokens,
            user_automations::is_demo_active,
            user_automations::demo_expired,
            user_automations::integration_status,
            user_automations::status,
            user_automations::created_at,
        ))
        .load(conn)
        .await
}
