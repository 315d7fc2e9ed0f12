//! KB monitoring (docs/panels.md "KB monitoring: status, reset, history"): ask a vendor about
//! every customer's knowledge base at once and keep each answer in `kb_status_history`; ask it
//! to rebuild one customer's; read the history back as a page, counts and a per-day chart.

use std::collections::HashMap;

use actix_web::http::StatusCode;
use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use zimmer_db::DbPool;
use zimmer_events::contracts::internal::kb_monitoring::{
    KbChart, KbHistoryItem, KbHistoryStats, KbResetAnswer, KbStatusReport, KbStatusRow,
};
use zimmer_http::ApiError;

use crate::{
    clients::{
        kb,
        vendor::{VendorCall, VendorClient},
    },
    config::KbConfig,
    domain::kb_monitoring::{self as rules, KbCheck, NOT_CHECKED},
    queries::kb_monitoring::{self as q, HistoryFilter, NewCheck},
};

/// The state of every customer's knowledge base of `automation_id`, from its vendor now:
/// at most `concurrency` calls at a time, each with `call_timeout`; customers not answered
/// within `status_deadline` are reported as not checked. One history row per customer.
pub async fn status(
    pool: &DbPool,
    vendor: &VendorClient,
    config: &KbConfig,
    automation_id: i64,
) -> Result<KbStatusReport, ApiError> {
    let deadline = tokio::time::Instant::now() + config.status_deadline;
    let (target, customers) = {
        let mut conn = pool.get().await?;
        let target = q::status_target(&mut conn, automation_id)
            .await?
            .ok_or_else(|| ApiError::not_found("Automation not found"))?;
        let customers = q::customers(&mut conn, automation_id).await?;
        (target, customers)
    };
    let call = VendorCall {
        url: kb_url(target.kb_status_url.as_deref(), "status")?,
        automation_id,
        token_hash: target.token_hash.as_deref(),
        timeout: config.call_timeout,
    };

    let mut answers: HashMap<i64, (KbCheck, DateTime<Utc>)> = HashMap::new();
    {
        let mut calls = futures_util::stream::iter(customers.iter())
            .map(|c| async move {
                let check = kb::status(vendor, call, c.user_id, c.user_automation_id).await;
                (c.user_automation_id, check, Utc::now())
            })
            .buffer_unordered(config.concurrency);
        // Calls still running at the deadline are dropped (cancelled) with the stream.
        while let Ok(Some((id, check, at))) = tokio::time::timeout_at(deadline, calls.next()).await
        {
            answers.insert(id, (check, at));
        }
    }

    let now = Utc::now();
    let mut rows = Vec::with_capacity(customers.len());
    let mut checks = Vec::with_capacity(customers.len());
    for c in &customers {
        let (check, at) = answers
            .remove(&c.user_automation_id)
            .unwrap_or_else(|| (KbCheck::failed(NOT_CHECKED), now));
        checks.push(NewCheck {
            user_id: c.user_id,
            user_automation_id: c.user_automation_id,
            automation_id,
            kb_health: check.kb_health,
            backup_status: check.backup_status,
            supports_reset: check.supports_reset,
            error_logs: serde_json::Value::from(check.error_logs.clone()),
            checked_at: at,
        });
        rows.push(KbStatusRow {
            user_id: c.user_id,
            user_automation_id: c.user_automation_id,
            name: c.name.clone(),
            kb_health: check.kb_health.to_owned(),
            last_updated: check.last_updated.unwrap_or(at),
            backup_status: check.backup_status,
            error_logs: check.error_logs,
            supports_reset: check.supports_reset,
        });
    }
    {
        let mut conn = pool.get().await?;
        q::insert_checks(&mut conn, &checks).await?;
    }
    Ok(KbStatusReport {
        automation_id,
        automation_name: target.name,
        total_users: i64::try_from(rows.len()).unwrap_or(i64::MAX),
        kb_statuses: rows,
    })
}

/// Asks the vendor to rebuild the knowledge base of one user automation: 404 unknown, 400
/// without a reset URL, 502 `vendor_error` when the vendor does not answer 2xx in time.
pub async fn reset(
    pool: &DbPool,
    vendor: &VendorClient,
    config: &KbConfig,
    user_automation_id: i64,
) -> Result<KbResetAnswer, ApiError> {
    let target = {
        let mut conn = pool.get().await?;
        q::reset_target(&mut conn, user_automation_id)
            .await?
            .ok_or_else(|| ApiError::not_found("User automation not found"))?
    };
    let call = VendorCall {
        url: kb_url(target.kb_reset_url.as_deref(), "reset")?,
        automation_id: target.automation_id,
        token_hash: target.token_hash.as_deref(),
        timeout: config.call_timeout,
    };
    let reset_status = kb::reset(vendor, call, target.user_automation_id)
        .await
        .map_err(|reason| {
            ApiError::new(
                StatusCode::BAD_GATEWAY,
                "vendor_error",
                format!("The vendor did not reset the knowledge base: {reason}"),
            )
        })?;
    tracing::info!(
        user_automation_id = target.user_automation_id,
        user_id = target.user_id,
        automation_id = target.automation_id,
        "knowledge base reset requested from the vendor"
    );
    Ok(KbResetAnswer {
        message: format!(
            "Knowledge base reset requested for user automation {}",
            target.user_automation_id
        ),
        user_automation_id: target.user_automation_id,
        automation_id: target.automation_id,
        automation_name: target.automation_name,
        reset_status,
    })
}

/// The automation's KB `kind` URL (`api_kb_{kind}_url`, "status" or "reset"); 400
/// `no_kb_{kind}_url` when it has none.
fn kb_url<'a>(url: Option<&'a str>, kind: &str) -> Result<&'a str, ApiError> {
    url.map(str::trim).filter(|u| !u.is_empty()).ok_or_else(|| {
        ApiError::bad_request(format!(
            "This automation has no KB {kind} URL (api_kb_{kind}_url)"
        ))
        .with_code(format!("no_kb_{kind}_url"))
    })
}

pub async fn history(
    pool: &DbPool,
    filter: &HistoryFilter,
    offset: i64,
    limit: i64,
) -> Result<Vec<KbHistoryItem>, ApiError> {
    let mut conn = pool.get().await?;
    let rows = q::history(&mut conn, filter, offset, limit).await?;
    Ok(rows
        .into_iter()
        .map(|r| KbHistoryItem {
            id: r.id,
            user_id: r.user_id,
            user_name: r.user_name,
            user_automation_id: r.user_automation_id,
            automation_id: r.automation_id,
            automation_name: r.automation_name,
            kb_health: r.kb_health,
            backup_status: r.backup_status,
            error_logs: serde_json::from_value(r.error_logs).ok(),
            timestamp: r.checked_at,
        })
        .collect())
}

pub async fn stats(pool: &DbPool, filter: &HistoryFilter) -> Result<KbHistoryStats, ApiError> {
    let mut conn = pool.get().await?;
    let counts = q::health_counts(&mut conn, filter).await?;
    let backed_up = counts.iter().map(|c| c.backed_up).sum();
    let per_health: HashMap<String, i64> = counts.into_iter().map(|c| (c.kb_health, c.n)).collect();
    Ok(rules::stats(&per_health, backed_up))
}

/// The last `days` UTC days ending today (`filter.from`/`to` are set here).
pub async fn chart(
    pool: &DbPool,
    mut filter: HistoryFilter,
    days: i64,
) -> Result<KbChart, ApiError> {
    let today = Utc::now().date_naive();
    let start = rules::chart_start(today, days);
    let (from, to) = rules::day_bounds(Some(start), Some(today));
    filter.from = from;
    filter.to = to;
    let mut conn = pool.get().await?;
    let rows: Vec<_> = q::day_counts(&mut conn, &filter)
        .await?
        .into_iter()
        .map(|r| (r.day, r.kb_health, r.n))
        .collect();
    Ok(rules::chart(today, days, &rows))
}
