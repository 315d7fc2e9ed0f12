//! The automation catalogue as staff see it (marketplace's table, read only).

use diesel::{QueryResult, pg::Pg, prelude::*};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use zimmer_db::{
    FilterSome,
    models::marketplace::Automation,
    schema::{automations, user_automations},
};

use super::{paged, with_counts};

#[derive(Debug, Default, Clone)]
pub struct AutomationFilter {
    pub search: Option<String>,
    pub status: Option<String>,
    pub is_listed: Option<bool>,
    pub health_status: Option<String>,
}

fn filtered(f: &AutomationFilter) -> automations::BoxedQuery<'static, Pg> {
    let search = f.search.as_deref().map(zimmer_db::contains_pattern);
    automations::table
        .into_boxed()
        .filter_some(search, |p| {
            automations::name
                .ilike(p.clone())
                .or(automations::description.ilike(p))
        })
        .filter_some(f.status.clone(), |s| automations::status.eq(s))
        .filter_some(f.is_listed, |l| automations::is_listed.eq(l))
        .filter_some(f.health_status.clone(), |h| {
            automations::health_status.eq(h)
        })
}

/// A page, newest first, each with how many customers have it.
pub async fn list(
    conn: &mut AsyncPgConnection,
    f: &AutomationFilter,
    offset: i64,
    limit: i64,
) -> QueryResult<(Vec<(Automation, i64)>, i64)> {
    let rows = filtered(f)
        .select(Automation::as_select())
        .order(automations::id.desc());
    let (rows, total): (Vec<Automation>, i64) =
        paged(conn, filtered(f).count(), rows, offset, limit).await?;
    let ids: Vec<i64> = rows.iter().map(|a| a.id).collect();
    let counts = users_per_automation(conn, &ids).await?;
    Ok((with_counts(rows, &counts, |a| a.id), total))
}

pub async fn get(conn: &mut AsyncPgConnection, id: i64) -> QueryResult<Option<(Automation, i64)>> {
    let row: Option<Automation> = automations::table
        .find(id)
        .select(Automation::as_select())
        .first(conn)
        .await
        .optional()?;
    let Some(a) = row else {
        return Ok(None);
    };
    Ok(Some((a, users_count(conn, id).await?)))
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
