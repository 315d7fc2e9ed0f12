//! The audit log (managers): who did what to whom.

use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use zimmer_http::{HttpResult, Paged, time_bound};

use super::{Listing, PageOnly, user_automations::people_of};
use crate::{
    AppState,
    queries::audit::{self as q, AuditFilter},
    rbac::Staff,
};

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    pub actor_id: Option<i64>,
    pub action: Option<String>,
    pub target_type: Option<String>,
    pub target_id: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
}

#[derive(Debug, Serialize)]
struct Item {
    id: i64,
    actor_id: i64,
    actor_email: Option<String>,
    actor_name: Option<String>,
    action: String,
    target_type: String,
    target_id: Option<String>,
    details: serde_json::Value,
    created_at: DateTime<Utc>,
}

fn text(raw: Option<&str>) -> Option<String> {
    raw.map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.chars().take(200).collect())
}

/// `GET /api/admin/audit-log?actor_id=&action=&target_type=&target_id=&from=&to=`
pub async fn list(
    _staff: Staff,
    state: web::Data<AppState>,
    query: Listing<ListQuery, PageOnly>,
) -> HttpResult {
    let filter = AuditFilter {
        actor_id: query.actor_id,
        action: text(query.action.as_deref()),
        target_type: text(query.target_type.as_deref()),
        target_id: text(query.target_id.as_deref()),
        from: time_bound("from", query.from.as_deref(), false)?,
        to: time_bound("to", query.to.as_deref(), true)?,
    };
    let page = query.paging.query();
    let mut conn = state.platform.pool.get().await?;
    let (rows, total) = q::list(&mut conn, &filter, page.offset(), page.limit()).await?;
    let actors = people_of(&mut conn, rows.iter().map(|r| r.actor_id)).await?;
    drop(conn);
    let items: Vec<Item> = rows
        .into_iter()
        .map(|r| {
            let actor = actors.get(&r.actor_id);
            Item {
                id: r.id,
                actor_id: r.actor_id,
                actor_email: actor.map(|a| a.0.clone()),
                actor_name: actor.map(|a| a.1.clone()),
                action: r.action,
                target_type: r.target_type,
                target_id: r.target_id,
                details: r.details,
                created_at: r.created_at,
            }
        })
        .collect();
    Ok(HttpResponse::Ok().json(Paged::new(items, total, &page)))
}
