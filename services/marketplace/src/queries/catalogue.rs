//! The public catalogue: listed, active automations.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde::{Deserialize, Serialize};
use zimmer_db::{
    FilterSome,
    schema::{automations, user_automations},
};

/// An automation as customers see it (also the cached shape).
#[derive(Debug, Clone, Serialize, Deserialize, Queryable, Selectable, utoipa::ToSchema)]
#[diesel(table_name = automations)]
#[diesel(check_for_backend(diesel::pg::Pg))]
pub struct CatalogueItem {
    pub id: i64,
    pub name: String,
    pub description: String,
    pub pricing_type: String,
    /// Rials per token.
    pub price_per_token: i64,
    pub demo_tokens: i64,
    pub status: String,
    pub is_listed: bool,
    pub health_status: String,
    pub created_at: DateTime<Utc>,
}

type Listed<'a> = automations::BoxedQuery<'a, diesel::pg::Pg>;

fn listed(search: Option<&str>) -> Listed<'static> {
    automations::table
        .filter(automations::is_listed.eq(true))
        .filter(automations::status.eq("active"))
        .into_boxed()
        .filter_some(search, |text| {
            let pattern = super::contains_pattern(text);
            automations::name
                .ilike(pattern.clone())
                .or(automations::description.ilike(pattern))
        })
}

/// One page of the catalogue (oldest first, the order of the partial index) and the total.
pub async fn list(
    conn: &mut AsyncPgConnection,
    search: Option<&str>,
    limit: i64,
    offset: i64,
) -> QueryResult<(Vec<CatalogueItem>, i64)> {
    let rows = listed(search)
        .order((automations::created_at.asc(), automations::id.asc()))
        .select(CatalogueItem::as_select());
    zimmer_db::paged(conn, listed(search).count(), rows, offset, limit).await
}

/// A listed automation (of any status: its page says when it is inactive).
pub async fn listed_by_id(
    conn: &mut AsyncPgConnection,
    id: i64,
) -> QueryResult<Option<CatalogueItem>> {
    automations::table
        .filter(automations::id.eq(id))
        .filter(automations::is_listed.eq(true))
        .select(CatalogueItem::as_select())
        .first(conn)
        .await
        .optional()
}

pub async fn user_has(
    conn: &mut AsyncPgConnection,
    user_id: i64,
    automation_id: i64,
) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(
        user_automations::table
            .filter(user_automations::user_id.eq(user_id))
            .filter(user_automations::automation_id.eq(automation_id)),
    ))
    .get_result(conn)
    .await
}
