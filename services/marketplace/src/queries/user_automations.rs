//! A customer's automations.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde::Serialize;
use zimmer_db::{
    models::marketplace::UserAutomation,
    schema::{automations, user_automations},
};

use super::catalogue::CatalogueItem;
use crate::domain::bot_token::SealedToken;

/// One of a customer's automations as the panel lists it (docs/panels.md).
#[derive(Debug, Serialize, Queryable, utoipa::ToSchema)]
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
    pub provisioned_at: Option<DateTime<Utc>>,
    pub pricing_type: String,
    pub health_status: String,
}

pub async fn list(
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
        .order((
            user_automations::created_at.desc(),
            user_automations::id.desc(),
        ))
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
            user_automations::provisioned_at,
            automations::pricing_type,
            automations::health_status,
        ))
        .load(conn)
        .await
}

/// The caller's user automation of `automation_id`, with its automation.
pub async fn owned(
    conn: &mut AsyncPgConnection,
    user_id: i64,
    automation_id: i64,
) -> QueryResult<Option<(UserAutomation, CatalogueItem)>> {
    user_automations::table
        .inner_join(automations::table)
        .filter(user_automations::user_id.eq(user_id))
        .filter(user_automations::automation_id.eq(automation_id))
        .select((UserAutomation::as_select(), CatalogueItem::as_select()))
        .first(conn)
        .await
        .optional()
}

/// A new user automation with zero balances (the demo grant is a ledger entry); `None`
/// when the user already has this automation.
pub async fn insert(
    conn: &mut AsyncPgConnection,
    user_id: i64,
    automation_id: i64,
) -> QueryResult<Option<UserAutomation>> {
    diesel::insert_into(user_automations::table)
        .values((
            user_automations::user_id.eq(user_id),
            user_automations::automation_id.eq(automation_id),
        ))
        .on_conflict((user_automations::user_id, user_automations::automation_id))
        .do_nothing()
        .returning(UserAutomation::as_returning())
        .get_result(conn)
        .await
        .optional()
}

/// Locks the row for a balance change (`SELECT … FOR UPDATE`): every ledger entry of one
/// user automation is applied under this lock, so concurrent changes serialise exactly.
pub async fn lock(conn: &mut AsyncPgConnection, id: i64) -> QueryResult<Option<UserAutomation>> {
    user_automations::table
        .find(id)
        .select(UserAutomation::as_select())
        .for_update()
        .first(conn)
        .await
        .optional()
}

/// Sets (or clears) the bot token, sealed with its hash, and queues provisioning again.
/// Any legacy plaintext goes at the same time.
pub async fn set_bot_token(
    conn: &mut AsyncPgConnection,
    id: i64,
    token: Option<&SealedToken>,
) -> QueryResult<UserAutomation> {
    diesel::update(user_automations::table.find(id))
        .set((
            user_automations::telegram_bot_token.eq(None::<String>),
            user_automations::telegram_bot_token_sealed.eq(token.map(|t| t.sealed.clone())),
            user_automations::telegram_bot_token_hash.eq(token.map(|t| t.hash.clone())),
            user_automations::integration_status.eq("pending"),
            user_automations::updated_at.eq(diesel::dsl::now),
        ))
        .returning(UserAutomation::as_returning())
        .get_result(conn)
        .await
}

/// Rows still holding a plaintext bot token (from before sealing), by id after `after`.
pub async fn legacy_bot_tokens(
    conn: &mut AsyncPgConnection,
    after: i64,
    limit: i64,
) -> QueryResult<Vec<(i64, String)>> {
    user_automations::table
        .filter(user_automations::telegram_bot_token.is_not_null())
        .filter(user_automations::id.gt(after))
        .order(user_automations::id.asc())
        .limit(limit)
        .select((
            user_automations::id,
            user_automations::telegram_bot_token.assume_not_null(),
        ))
        .load(conn)
        .await
}

/// Replaces one legacy plaintext token by its sealed form, if the row still holds exactly
/// that plaintext (a concurrent change or another replica's sweep wins). Provisioning state
/// is left alone: the token is the same.
pub async fn reseal_legacy(
    conn: &mut AsyncPgConnection,
    id: i64,
    plaintext: &str,
    token: &SealedToken,
) -> QueryResult<usize> {
    diesel::update(
        user_automations::table
            .filter(user_automations::id.eq(id))
            .filter(user_automations::telegram_bot_token.eq(plaintext)),
    )
    .set((
        user_automations::telegram_bot_token.eq(None::<String>),
        user_automations::telegram_bot_token_sealed.eq(Some(&token.sealed)),
        user_automations::telegram_bot_token_hash.eq(Some(&token.hash)),
    ))
    .execute(conn)
    .await
}
