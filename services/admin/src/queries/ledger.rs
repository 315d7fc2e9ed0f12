//! Token adjustments: the `adjustment` entries of marketplace's ledger (read only).

use chrono::{DateTime, Utc};
use diesel::{QueryResult, pg::Pg, prelude::*};
use diesel_async::AsyncPgConnection;
use zimmer_db::{
    FilterSome,
    schema::{token_ledger, user_automations},
};

use super::paged;

#[derive(Debug, Default, Clone)]
pub struct AdjustmentFilter {
    pub user_automation_id: Option<i64>,
    pub user_id: Option<i64>,
    pub actor_id: Option<i64>,
    /// The user automation's automation.
    pub automation_id: Option<i64>,
    pub from: Option<DateTime<Utc>>,
    /// Exclusive.
    pub to: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Queryable)]
pub struct AdjustmentRow {
    pub id: i64,
    pub user_automation_id: i64,
    pub user_id: i64,
    pub automation_id: i64,
    pub delta: i64,
    pub demo_delta: i64,
    pub balance_after: i64,
    pub demo_balance_after: i64,
    pub source_key: String,
    pub actor_id: Option<i64>,
    pub reason: Option<String>,
    pub meta: serde_json::Value,
    pub created_at: DateTime<Utc>,
}

type Source = diesel::dsl::InnerJoin<token_ledger::table, user_automations::table>;

fn filtered(f: &AdjustmentFilter) -> diesel::dsl::IntoBoxed<'static, Source, Pg> {
    token_ledger::table
        .inner_join(user_automations::table)
        .filter(token_ledger::kind.eq("adjustment"))
        .into_boxed()
        .filter_some(f.user_automation_id, |id| {
            token_ledger::user_automation_id.eq(id)
        })
        .filter_some(f.user_id, |id| user_automations::user_id.eq(id))
        .filter_some(f.actor_id, |id| token_ledger::actor_id.eq(id))
        .filter_some(f.automation_id, |id| user_automations::automation_id.eq(id))
        .filter_some(f.from, |t| token_ledger::created_at.ge(t))
        .filter_some(f.to, |t| token_ledger::created_at.lt(t))
}

/// Newest first; `(kind, created_at)` serves the unfiltered history.
pub async fn adjustments(
    conn: &mut AsyncPgConnection,
    f: &AdjustmentFilter,
    offset: i64,
    limit: i64,
) -> QueryResult<(Vec<AdjustmentRow>, i64)> {
    let rows = filtered(f)
        .select((
            token_ledger::id,
            token_ledger::user_automation_id,
            user_automations::user_id,
            user_automations::automation_id,
            token_ledger::delta,
            token_ledger::demo_delta,
            token_ledger::balance_after,
            token_ledger::demo_balance_after,
            token_ledger::source_key,
            token_ledger::actor_id,
            token_ledger::reason,
            token_ledger::meta,
            token_ledger::created_at,
        ))
        .order((token_ledger::created_at.desc(), token_ledger::id.desc()));
    paged(conn, filtered(f).count(), rows, offset, limit).await
}
