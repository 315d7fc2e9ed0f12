//! A customer's token usage: history per automation, per day / month, per automation.

use actix_web::{HttpResponse, web};
use chrono::Utc;
use serde::Deserialize;
use zimmer_http::{ApiError, HttpResult, PageQuery, Paged, time_bound};
use zimmer_jwt::CurrentUser;

use crate::{
    AppState,
    queries::{usage, user_automations},
};

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HistoryQuery {
    #[serde(default)]
    pub page: Option<i64>,
    #[serde(default)]
    pub page_size: Option<i64>,
    #[serde(default)]
    pub from: Option<String>,
    #[serde(default)]
    pub to: Option<String>,
}

/// `GET /api/user/automations/{automation_id}/usage`: consumption records, newest first.
pub async fn history(
    user: CurrentUser,
    state: web::Data<AppState>,
    path: web::Path<i64>,
    query: web::Query<HistoryQuery>,
) -> HttpResult {
    let from = time_bound("from", query.from.as_deref(), false)?;
    let to = time_bound("to", query.to.as_deref(), true)?;
    if let (Some(f), Some(t)) = (from, to)
        && f >= t
    {
        return Err(ApiError::invalid("to", "must be after from"));
    }
    let page = PageQuery {
        page: query.page,
        page_size: query.page_size,
    };
    let mut conn = state.platform.pool.get().await?;
    let (ua, _) = user_automations::owned(&mut conn, user.id, path.into_inner())
        .await?
        .ok_or_else(|| ApiError::not_found("You have not added this automation"))?;
    let (items, total) =
        usage::history(&mut conn, ua.id, from, to, page.limit(), page.offset()).await?;
    Ok(HttpResponse::Ok().json(Paged::new(items, total, &page)))
}

#[derive(Debug, Clone, Copy)]
enum Range {
    Days(i32),
    Months(i32),
}

fn parse_range(raw: Option<&str>, default: Option<Range>) -> Result<Option<Range>, ApiError> {
    match raw.map(str::trim) {
        None | Some("") => Ok(default),
        Some("7d") => Ok(Some(Range::Days(7))),
        Some("30d") => Ok(Some(Range::Days(30))),
        Some("6m") => Ok(Some(Range::Months(6))),
        Some("12m") => Ok(Some(Range::Months(12))),
        Some(_) => Err(ApiError::invalid(
            "range",
            "must be one of 7d, 30d, 6m, 12m",
        )),
    }
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RangeQuery {
    #[serde(default)]
    pub range: Option<String>,
}

/// `GET /api/user/usage?range=7d|30d|6m|12m` (default 7d): per day `[{day, tokens,
/// sessions}]` or per month `[{month, value}]`, bare arrays, oldest first, zero-filled.
pub async fn summary(
    user: CurrentUser,
    state: web::Data<AppState>,
    query: web::Query<RangeQuery>,
) -> HttpResult {
    let range = parse_range(query.range.as_deref(), None)?.unwrap_or(Range::Days(7));
    let mut conn = state.platform.pool.get().await?;
    match range {
        Range::Months(n) => {
            let rows = usage::per_month(&mut conn, user.id, n).await?;
            Ok(HttpResponse::Ok().json(rows))
        }
        Range::Days(n) => {
            let rows = usage::per_day(&mut conn, user.id, n).await?;
            Ok(HttpResponse::Ok().json(rows))
        }
    }
}

/// `GET /api/user/usage/distribution[?range=…]`: tokens per automation `[{name, value}]`
/// (all time unless a range is given).
pub async fn distribution(
    user: CurrentUser,
    state: web::Data<AppState>,
    query: web::Query<RangeQuery>,
) -> HttpResult {
    let since = match parse_range(query.range.as_deref(), None)? {
        None => None,
        Some(Range::Days(n)) => Some(Utc::now() - chrono::Duration::days(i64::from(n))),
        Some(Range::Months(n)) => Some(Utc::now() - chrono::Duration::days(30 * i64::from(n))),
    };
    let mut conn = state.platform.pool.get().await?;
    let rows = usage::distribution(&mut conn, user.id, since).await?;
    Ok(HttpResponse::Ok().json(rows))
}
