//! Dashboard stats and analytics series. Aggregates come from the database (queries/stats.rs:
//! the daily rollup for closed days plus the raw rows for the rest, exact) and are cached
//! briefly in Redis (best effort: Redis down means computing every time), so a figure is at
//! most `ADMIN_STATS_CACHE_SECS` old.

use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use zimmer_http::{ApiError, HttpResult};

use crate::ops::STATS_CACHE_KEY;
use crate::{
    AppState,
    queries::stats::{self, DashboardRow, DayPoint, Series},
    rbac::Staff,
};

#[derive(Debug, Clone, Serialize, Deserialize)]
struct CachedStats {
    row: DashboardRow,
    generated_at: DateTime<Utc>,
}

#[derive(Debug, Serialize)]
struct UsersPanel {
    total: i64,
    active: i64,
    inactive: i64,
    new_this_month: i64,
    by_role: serde_json::Value,
}

#[derive(Debug, Serialize)]
struct RevenuePanel {
    /// Rials received (succeeded payments), all time.
    total: i64,
    this_month: i64,
    today: i64,
    currency: &'static str,
}

#[derive(Debug, Serialize)]
struct CountPanel {
    total: i64,
    by_status: serde_json::Value,
}

#[derive(Debug, Serialize)]
struct AutomationsPanel {
    total: i64,
    active: i64,
    listed: i64,
}

#[derive(Debug, Serialize)]
struct UserAutomationsPanel {
    total: i64,
    active: i64,
}

#[derive(Debug, Serialize)]
struct TokensPanel {
    consumed_today: i64,
    consumed_30d: i64,
}

#[derive(Debug, Serialize)]
struct TicketsPanel {
    open: i64,
    by_status: serde_json::Value,
}

#[derive(Debug, Serialize)]
struct DashboardView {
    users: UsersPanel,
    /// Managers only (docs/rbac.md: "with revenue"); absent for other staff.
    #[serde(skip_serializing_if = "Option::is_none")]
    revenue: Option<RevenuePanel>,
    payments: CountPanel,
    automations: AutomationsPanel,
    user_automations: UserAutomationsPanel,
    tokens: TokensPanel,
    tickets: TicketsPanel,
    /// When these numbers were computed (they may be up to the cache lifetime old).
    generated_at: DateTime<Utc>,
}

impl DashboardView {
    fn new(c: CachedStats, with_revenue: bool) -> Self {
        let r = c.row;
        Self {
            users: UsersPanel {
                total: r.users_total,
                active: r.users_active,
                inactive: r.users_total - r.users_active,
                new_this_month: r.users_new_this_month,
                by_role: r.users_by_role,
            },
            revenue: with_revenue.then_some(RevenuePanel {
                total: r.revenue_total,
                this_month: r.revenue_this_month,
                today: r.revenue_today,
                currency: "IRR",
            }),
            payments: CountPanel {
                total: r.payments_total,
                by_status: r.payments_by_status,
            },
            automations: AutomationsPanel {
                total: r.automations_total,
                active: r.automations_active,
                listed: r.automations_listed,
            },
            user_automations: UserAutomationsPanel {
                total: r.user_automations_total,
                active: r.user_automations_active,
            },
            tokens: TokensPanel {
                consumed_today: r.tokens_consumed_today,
                consumed_30d: r.tokens_consumed_30d,
            },
            tickets: TicketsPanel {
                open: r.tickets_open,
                by_status: r.tickets_by_status,
            },
            generated_at: c.generated_at,
        }
    }
}

/// `GET /api/admin/dashboard/stats`. One cached computation serves every role; revenue is
/// removed from the answer, not from the cache, for non-managers.
pub async fn stats(staff: Staff, state: web::Data<AppState>) -> HttpResult {
    let cached = cached(&state).await?;
    Ok(HttpResponse::Ok().json(DashboardView::new(cached, staff.is_manager())))
}

/// The dashboard numbers, from the cache when fresh.
async fn cached(state: &AppState) -> Result<CachedStats, ApiError> {
    let redis = &state.platform.redis;
    if let Some(c) = redis.get_json::<CachedStats>(STATS_CACHE_KEY).await {
        return Ok(c);
    }
    let mut conn = state.platform.pool.get().await?;
    let row = stats::dashboard(&mut conn).await?;
    drop(conn);
    let c = CachedStats {
        row,
        generated_at: Utc::now(),
    };
    redis
        .set_json(STATS_CACHE_KEY, &c, state.config.stats_ttl)
        .await;
    Ok(c)
}

/// `GET /api/admin/dashboard`: the admin dashboard's cards, `{status: "success", data:
/// {total_users, total_automations, total_tickets, all_tickets, system_status}}`.
/// `total_tickets` counts the active ones (open, pending, in progress: the card says
/// "active tickets"); `system_status` is `healthy` when every service is ready.
pub async fn summary(_staff: Staff, state: web::Data<AppState>) -> HttpResult {
    let c = cached(&state).await?;
    let r = &c.row;
    let all_tickets: i64 = r.tickets_by_status.as_object().map_or(0, |m| {
        m.values().filter_map(serde_json::Value::as_i64).sum()
    });
    let probes = crate::clients::Service::ALL
        .map(|s| state.upstreams.readyz(s, std::time::Duration::from_secs(2)));
    let ready = futures_util::future::join_all(probes)
        .await
        .iter()
        .all(|(status, _)| *status == Some(200));
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "status": "success",
        "data": {
            "total_users": r.users_total,
            "total_automations": r.automations_total,
            "total_tickets": r.tickets_open,
            "all_tickets": all_tickets,
            "system_status": if ready { "healthy" } else { "degraded" },
            "generated_at": c.generated_at,
        },
    })))
}

/// `GET /api/admin/usage/stats`: `{type: "general_overview", total_tokens_used,
/// tokens_used_today, tokens_used_30d, total_users, active_automations}`; tokens are the
/// ledger's consumption entries, demo and paid.
pub async fn usage_stats(_staff: Staff, state: web::Data<AppState>) -> HttpResult {
    const KEY: &str = "admin:stats:tokens-ever:v1";
    let c = cached(&state).await?;
    let redis = &state.platform.redis;
    let ever = match redis.get_json::<i64>(KEY).await {
        Some(n) => n,
        None => {
            let mut conn = state.platform.pool.get().await?;
            let n = stats::tokens_consumed_ever(&mut conn).await?;
            redis.set_json(KEY, &n, state.config.stats_ttl).await;
            n
        }
    };
    let r = &c.row;
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "type": "general_overview",
        "total_tokens_used": ever,
        "tokens_used_today": r.tokens_consumed_today,
        "tokens_used_30d": r.tokens_consumed_30d,
        "total_users": r.users_total,
        "active_automations": r.automations_active,
    })))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SeriesQuery {
    pub days: Option<i32>,
}

pub const MAX_DAYS: i32 = 366;

#[derive(Debug, Clone, Serialize, Deserialize)]
struct SeriesView {
    metric: String,
    days: i32,
    from: chrono::NaiveDate,
    to: chrono::NaiveDate,
    /// Sum of `value` over the series.
    total: i64,
    /// Sum of `count` over the series.
    count: i64,
    points: Vec<DayPoint>,
    generated_at: DateTime<Utc>,
}

async fn series(state: &AppState, which: Series, query: &SeriesQuery) -> HttpResult {
    let days = query.days.unwrap_or(30);
    if !(1..=MAX_DAYS).contains(&days) {
        return Err(ApiError::invalid(
            "days",
            format!("must be between 1 and {MAX_DAYS}"),
        ));
    }
    let key = format!("admin:analytics:{}:{days}:v1", which.name());
    let redis = &state.platform.redis;
    if let Some(hit) = redis.get_json::<SeriesView>(&key).await {
        return Ok(HttpResponse::Ok().json(hit));
    }
    let mut conn = state.platform.pool.get().await?;
    let points = stats::series(&mut conn, which, days).await?;
    drop(conn);
    let today = Utc::now().date_naive();
    let view = SeriesView {
        metric: which.name().to_owned(),
        days,
        from: points.first().map_or(today, |p| p.date),
        to: points.last().map_or(today, |p| p.date),
        total: points.iter().map(|p| p.value).sum(),
        count: points.iter().map(|p| p.count).sum(),
        points,
        generated_at: Utc::now(),
    };
    redis
        .set_json(&key, &view, state.config.analytics_ttl)
        .await;
    Ok(HttpResponse::Ok().json(view))
}

/// `GET /api/admin/analytics/revenue?days=N`: Rials received per UTC day (managers).
pub async fn revenue(
    _staff: Staff,
    state: web::Data<AppState>,
    query: web::Query<SeriesQuery>,
) -> HttpResult {
    series(&state, Series::Revenue, &query).await
}

/// `GET /api/admin/analytics/usage?days=N`: tokens consumed per UTC day.
pub async fn usage(
    _staff: Staff,
    state: web::Data<AppState>,
    query: web::Query<SeriesQuery>,
) -> HttpResult {
    series(&state, Series::Usage, &query).await
}

/// `GET /api/admin/analytics/signups?days=N`: accounts created per UTC day.
pub async fn signups(
    _staff: Staff,
    state: web::Data<AppState>,
    query: web::Query<SeriesQuery>,
) -> HttpResult {
    series(&state, Series::Signups, &query).await
}
