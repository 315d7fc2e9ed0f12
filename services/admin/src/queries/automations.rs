//! The automation catalogue as staff see it (marketplace's table, read only).

use chrono::{DateTime, Utc};
use diesel::{QueryResult, pg::Pg, prelude::*};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use zimmer_db::schema::{automations, user_automations};

use super::contains_pattern;

#[derive(Debug, Default, Clone)]
pub struct AutomationFilter {
    pub search: Option<String>,
    pub status: Option<String>,
    pub is_listed: Option<bool>,
    pub health_status: Option<String>,
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = automations)]
#[diesel(check_for_backend(Pg))]
pub struct AutomationRow {
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
    pub api_base_url: Option<String>,
    pub api_usage_url: Option<String>,
    pub api_kb_status_url: Option<String>,
    pub api_kb_reset_url: Option<String>,
    pub dashboard_url: Option<String>,
    /// The token's last four characters (never the token, never its hash).
    pub service_token_tail: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

fn filtered(f: &AutomationFilter) -> automations::BoxedQuery<'static, Pg> {
    let mut q = automations::table.into_boxed();
    if let Some(s) = &f.search {
        let p = contains_pattern(s);
        q = q.filter(
            automations::name
                .ilike(p.clone())
                .or(automations::description.ilike(p)),
        );
    }
    if let Some(s) = &f.status {
        q = q.filter(automations::status.eq(s.clone()));
    }
    if let Some(l) = f.is_listed {
        q = q.filter(automations::is_listed.eq(l));
    }
    if let Some(h) = &f.health_status {
        q = q.filter(automations::health_status.eq(h.clone()));
    }
    q
}

/// A page, newest first: each with whether it has a service token and how many customers.
pub async fn list(
    conn: &mut AsyncPgConnection,
    f: &AutomationFilter,
    offset: i64,
    limit: i64,
) -> QueryResult<(Vec<(AutomationRow, bool, i64)>, i64)> {
    let total = filtered(f).count().get_result(conn).await?;
    let rows: Vec<(AutomationRow, bool)> = filtered(f)
        .select((
            AutomationRow::as_select(),
            automations::service_token_hash.is_not_null(),
        ))
        .order(automations::id.desc())
        .offset(offset)
        .limit(limit)
        .load(conn)
        .await?;
    let ids: Vec<i64> = rows.iter().map(|(a, _)| a.id).collect();
    let counts = users_per_automation(conn, &ids).await?;
    let out = rows
        .into_iter()
        .map(|(a, has_token)| {
            let n = counts
                .iter()
                .find(|(id, _)| *id == a.id)
                .map_or(0, |(_, n)| *n);
            (a, has_token, n)
        })
        .collect();
    Ok((out, total))
}

pub async fn get(
    conn: &mut AsyncPgConnection,
    id: i64,
) -> QueryResult<Option<(AutomationRow, bool, i64)>> {
    let row: Option<(AutomationRow, bool)> = automations::table
        .find(id)
        .select((
            AutomationRow::as_select(),
            automations::service_token_hash.is_not_null(),
        ))
        .first(conn)
        .await
        .optional()?;
    let Some((a, has_token)) = row else {
        return Ok(None);
    };
    let n = users_per_automation(conn, &[id])
        .await?
        .into_iter()
        .next()
        .map_or(0, |(_, n)| n);
    Ok(Some((a, has_token, n)))
}

/// How many customers have automation `id`.
pub async fn users_count(conn: &mut AsyncPgConnection, id: i64) -> QueryResult<i64> {
    Ok(users_per_automation(conn, &[id])
        .await?
        .into_iter()
        .next()
        .map_or(0, |(_, n)| n))
}

async fn users_per_automation(
    conn: &mut AsyncPgConnection,
    ids: &[i64],
) -> QueryResult<Vec<(i64, i64)>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    user_automations::table
        .filter(user_automations::automation_id.eq_any(ids))
        .group_by(user_automations::automation_id)
        .select((user_automations::automation_id, diesel::dsl::count_star()))
        .load(conn)
        .await
}
