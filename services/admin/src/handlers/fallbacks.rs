//! The fallback log on the admin dashboard (docs/panels.md "Fallback log and notifications",
//! "Fallback log"): messages vendors could not answer, listed newest first (by customer),
//! resolved or reopened through the marketplace's internal API and audited. Types are the
//! shared `zimmer_contracts::internal::knowledge`.

use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use zimmer_events::contracts::internal::knowledge::{Fallback, FallbackList, FallbackStatusChange};
use zimmer_http::{ApiError, HttpResult};

use super::{
    Listing, WHOLE_LIST, knowledge::owner_list, listed, only_view, path_id, to_json,
    user_automations::names_of,
};
use crate::{
    AppState,
    clients::Service,
    ops::{Audit, OwnerCall, call_owner, typed},
    rbac::Staff,
};

/// A fallback as the dashboard reads it: the contract's fields, `client_id`/`client_name` (the
/// customer), `automation_name` and `timestamp` = `created_at`.
#[derive(Debug, Serialize)]
struct FallbackView {
    #[serde(flatten)]
    fallback: Fallback,
    client_id: i64,
    client_name: Option<String>,
    automation_name: Option<String>,
    timestamp: DateTime<Utc>,
}

async fn views(state: &AppState, items: Vec<Fallback>) -> Result<Vec<FallbackView>, ApiError> {
    let (users, automations) = {
        let mut conn = state.platform.pool.get().await?;
        names_of(
            &mut conn,
            items.iter().map(|f| f.user_id),
            items.iter().map(|f| f.automation_id),
        )
        .await?
    };
    Ok(items
        .into_iter()
        .map(|f| FallbackView {
            client_id: f.user_id,
            client_name: users.get(&f.user_id).map(|u| u.1.clone()),
            automation_name: automations.get(&f.automation_id).cloned(),
            timestamp: f.created_at,
            fallback: f,
        })
        .collect())
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    pub client_id: Option<String>,
}

/// `GET /api/admin/fallbacks?client_id=`: `{fallbacks, items, total, total_count, page,
/// page_size}`, newest first.
pub async fn list(
    _staff: Staff,
    state: web::Data<AppState>,
    query: Listing<ListQuery>,
) -> HttpResult {
    let page = query.page(WHOLE_LIST);
    let id = ("client_id", query.client_id.as_deref());
    let list: FallbackList = owner_list(&state, "/internal/fallbacks", &page, id, None).await?;
    let items = views(&state, list.items).await?;
    listed("fallbacks", items, list.total, &page)
}

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[schema(as = FallbackStatusBody)]
pub struct StatusBody {
    #[serde(default)]
    pub status: Option<String>,
}

/// `PUT /api/admin/fallbacks/{id}` `{status}` (`resolved` or `open`) → the fallback.
pub async fn update(
    staff: Staff,
    state: web::Data<AppState>,
    path: web::Path<String>,
    raw: web::Bytes,
) -> HttpResult {
    let id = path_id(&path)?;
    let body: StatusBody = serde_json::from_slice(&raw)
        .map_err(|_| ApiError::invalid("status", "must be open or resolved"))?;
    let status = body
        .status
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .ok_or_else(|| ApiError::invalid("status", "is required"))?;
    let change = FallbackStatusChange {
        status,
        actor_id: staff.id(),
    };
    let owner_path = format!("/internal/fallbacks/{id}");
    let reply = call_owner(
        &state,
        &staff,
        OwnerCall::new(Service::Marketplace, Method::PUT, &owner_path).json(to_json(&change)?),
        |reply| {
            let action = if reply.body.get("status").and_then(Value::as_str) == Some("resolved") {
                "fallback.resolve"
            } else {
                "fallback.reopen"
            };
            Audit::new(
                action,
                "fallback",
                Some(id),
                json!({ "status": change.status }),
            )
        },
    )
    .await?;
    let f: Fallback = typed(Service::Marketplace, reply)?;
    let view = only_view(views(&state, vec![f]).await?, "fallback")?;
    Ok(HttpResponse::Ok().json(view))
}
