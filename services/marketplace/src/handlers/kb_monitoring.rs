//! The internal API of KB monitoring, for the admin service (docs/panels.md "KB monitoring:
//! status, reset, history"; types in `zimmer_contracts::internal::kb_monitoring`):
//! - `GET  /internal/kb/status?automation_id=`
//! - `POST /internal/kb/reset/{user_automation_id}`
//! - `GET  /internal/kb/history`, `/internal/kb/history/stats`, `/internal/kb/history/chart-data`
//!
//! Query numbers arrive as text so that a blank one means "not set" and a bad one gets a 400
//! naming the field.

use actix_web::{HttpResponse, web};
use serde::Deserialize;
use zimmer_http::{ApiError, HttpResult, InternalCaller};

use crate::{
    AppState, domain::kb_monitoring as rules, ops::kb_monitoring as ops,
    queries::kb_monitoring::HistoryFilter,
};

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct KbQuery {
    pub automation_id: Option<String>,
    pub user_id: Option<String>,
    pub from_date: Option<String>,
    pub to_date: Option<String>,
    pub page: Option<String>,
    pub limit: Option<String>,
    pub days: Option<String>,
}

/// A whole number, blank meaning absent.
fn number(field: &str, raw: Option<&str>) -> Result<Option<i64>, ApiError> {
    match raw.map(str::trim).filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(s) => s
            .parse::<i64>()
            .map(Some)
            .map_err(|_| ApiError::bad_request(format!("{field} must be a whole number"))),
    }
}

fn bad(message: String) -> ApiError {
    ApiError::bad_request(message)
}

impl KbQuery {
    /// The filter of the history calls: automation, user, inclusive UTC days.
    fn filter(&self) -> Result<HistoryFilter, ApiError> {
        let from = rules::parse_day("from_date", self.from_date.as_deref()).map_err(bad)?;
        let to = rules::parse_day("to_date", self.to_date.as_deref()).map_err(bad)?;
        let (from, to) = rules::day_bounds(from, to);
        Ok(HistoryFilter {
            automation_id: number("automation_id", self.automation_id.as_deref())?,
            user_id: number("user_id", self.user_id.as_deref())?,
            from,
            to,
        })
    }
}

pub async fn status(
    _: InternalCaller,
    state: web::Data<AppState>,
    query: web::Query<KbQuery>,
) -> HttpResult {
    let id = number("automation_id", query.automation_id.as_deref())?
        .ok_or_else(|| ApiError::bad_request("automation_id is required"))?;
    let report = ops::status(
        &state.platform.pool,
        &state.health.vendor,
        &state.config.kb,
        id,
    )
    .await?;
    Ok(HttpResponse::Ok().json(report))
}

pub async fn reset(
    _: InternalCaller,
    state: web::Data<AppState>,
    path: web::Path<i64>,
) -> HttpResult {
    let answer = ops::reset(
        &state.platform.pool,
        &state.health.vendor,
        &state.config.kb,
        path.into_inner(),
    )
    .await?;
    Ok(HttpResponse::Ok().json(answer))
}

pub async fn history(
    _: InternalCaller,
    state: web::Data<AppState>,
    query: web::Query<KbQuery>,
) -> HttpResult {
    let filter = query.filter()?;
    let (offset, limit) = rules::history_page(
        number("page", query.page.as_deref())?,
        number("limit", query.limit.as_deref())?,
    )
    .map_err(bad)?;
    let items = ops::history(&state.platform.pool, &filter, offset, limit).await?;
    Ok(HttpResponse::Ok().json(items))
}

pub async fn stats(
    _: InternalCaller,
    state: web::Data<AppState>,
    query: web::Query<KbQuery>,
) -> HttpResult {
    let filter = query.filter()?;
    Ok(HttpResponse::Ok().json(ops::stats(&state.platform.pool, &filter).await?))
}

pub async fn chart(
    _: InternalCaller,
    state: web::Data<AppState>,
    query: web::Query<KbQuery>,
) -> HttpResult {
    let days = rules::chart_days(number("days", query.days.as_deref())?).map_err(bad)?;
    let filter = HistoryFilter {
        automation_id: number("automation_id", query.automation_id.as_deref())?,
        user_id: number("user_id", query.user_id.as_deref())?,
        ..HistoryFilter::default()
    };
    Ok(HttpResponse::Ok().json(ops::chart(&state.platform.pool, filter, days).await?))
}
