//! Customers' automations across the platform (view only; balances change through token
//! adjustments).

use std::collections::HashMap;

use actix_web::web;
use chrono::{DateTime, Utc};
use diesel_async::AsyncPgConnection;
use serde::{Deserialize, Serialize};
use zimmer_http::{ApiError, HttpResult};

use super::{Listing, WHOLE_LIST, listed, one_of};
use crate::{
    AppState,
    queries::user_automations::{self as q, UaFilter},
    rbac::Staff,
};

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    pub user_id: Option<i64>,
    pub automation_id: Option<i64>,
    pub status: Option<String>,
    pub integration_status: Option<String>,
}

/// The customer and automation a row names, with their email, name and automation name as
/// the lists show them next to the ids (looked up in what [`names_of`] loaded).
#[derive(Debug, Serialize)]
pub(crate) struct Named {
    user_id: i64,
    user_email: Option<String>,
    user_name: Option<String>,
    automation_id: i64,
    automation_name: Option<String>,
}

impl Named {
    pub(crate) fn of(
        user_id: i64,
        automation_id: i64,
        people: &HashMap<i64, (String, String)>,
        automations: &HashMap<i64, String>,
    ) -> Self {
        let (user_email, user_name) = people.get(&user_id).cloned().unzip();
        Self {
            user_id,
            user_email,
            user_name,
            automation_id,
            automation_name: automations.get(&automation_id).cloned(),
        }
    }
}

#[derive(Debug, Serialize)]
struct Item {
    id: i64,
    #[serde(flatten)]
    named: Named,
    tokens_remaining: i64,
    demo_tokens: i64,
    is_demo_active: bool,
    demo_expired: bool,
    status: String,
    integration_status: String,
    /// Whether a Telegram bot token is connected; the token itself is never shown.
    bot_connected: bool,
    provisioned_at: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

/// `GET /api/admin/user-automations?user_id=&automation_id=&status=&integration_status=`
pub async fn list(
    _staff: Staff,
    state: web::Data<AppState>,
    query: Listing<ListQuery>,
) -> HttpResult {
    let filter = UaFilter {
        user_id: query.user_id,
        automation_id: query.automation_id,
        status: one_of(
            "status",
            query.status.as_deref(),
            &["active", "paused", "canceled"],
        )?,
        integration_status: one_of(
            "integration_status",
            query.integration_status.as_deref(),
            &["pending", "provisioned", "failed"],
        )?,
    };
    let page = query.page(WHOLE_LIST);
    let mut conn = state.platform.pool.get().await?;
    let (rows, total) = q::list(&mut conn, &filter, page.offset, page.limit).await?;
    let (users, automations) = names_of(
        &mut conn,
        rows.iter().map(|(r, _)| r.user_id),
        rows.iter().map(|(r, _)| r.automation_id),
    )
    .await?;
    drop(conn);
    let items: Vec<Item> = rows
        .into_iter()
        .map(|(r, bot_connected)| Item {
            id: r.id,
            named: Named::of(r.user_id, r.automation_id, &users, &automations),
            tokens_remaining: r.tokens_remaining,
            demo_tokens: r.demo_tokens,
            is_demo_active: r.is_demo_active,
            demo_expired: r.demo_expired,
            status: r.status,
            integration_status: r.integration_status,
            bot_connected,
            provisioned_at: r.provisioned_at,
            created_at: r.created_at,
            updated_at: r.updated_at,
        })
        .collect();
    listed("user_automations", items, total, &page)
}

/// `user id → (email, name)` for the people a page of rows names, each looked up once.
pub(crate) async fn people_of(
    conn: &mut AsyncPgConnection,
    users: impl IntoIterator<Item = i64>,
) -> Result<HashMap<i64, (String, String)>, ApiError> {
    let users = q::user_names(conn, &distinct(users))
        .await?
        .into_iter()
        .map(|(id, email, name)| (id, (email, name)))
        .collect();
    Ok(users)
}

/// `automation id → name` for the automations a page of rows names, each looked up once.
pub(crate) async fn automation_names_of(
    conn: &mut AsyncPgConnection,
    automations: impl IntoIterator<Item = i64>,
) -> Result<HashMap<i64, String>, ApiError> {
    let names = q::automation_names(conn, &distinct(automations)).await?;
    Ok(names.into_iter().collect())
}

/// Who and what a page of rows names: [`people_of`] and [`automation_names_of`] (the lists of
/// several handlers show both next to the ids).
pub(crate) async fn names_of(
    conn: &mut AsyncPgConnection,
    users: impl IntoIterator<Item = i64>,
    automations: impl IntoIterator<Item = i64>,
) -> Result<(HashMap<i64, (String, String)>, HashMap<i64, String>), ApiError> {
    let users = people_of(conn, users).await?;
    let automations = automation_names_of(conn, automations).await?;
    Ok((users, automations))
}

fn distinct(ids: impl IntoIterator<Item = i64>) -> Vec<i64> {
    let mut ids: Vec<i64> = ids.into_iter().collect();
    ids.sort_unstable();
    ids.dedup();
    ids
}
