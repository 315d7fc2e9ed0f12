//! Token adjustments: made through the marketplace's ledger (it owns balances), read back from
//! the ledger for the history.

use std::collections::HashMap;

use actix_web::{HttpRequest, HttpResponse, http::StatusCode, web};
use chrono::{DateTime, Utc};
use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::json;
use zimmer_events::contracts::internal::tokens::AdjustRequest;
use zimmer_http::{ApiError, HttpResult, Paged, time_bound, validate, validate::Validator};

use super::{Listing, PageOnly, WHOLE_LIST, found, listed, user_automations::names_of};
use crate::{
    AppState,
    clients::Service,
    ops::{Audit, OwnerCall, call_owner},
    queries::{
        ledger::{self, AdjustmentFilter, AdjustmentRow},
        user_automations::owner,
    },
    rbac::Staff,
};

/// The largest single adjustment admin accepts (the marketplace has its own bound too).
const MAX_DELTA: i64 = 1_000_000_000;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[schema(as = TokenAdjustBody)]
pub struct AdjustBody {
    pub user_automation_id: i64,
    /// `delta_tokens` is the admin dashboard's name (README.md).
    #[serde(alias = "delta_tokens")]
    pub delta: i64,
    pub reason: String,
    /// Or the `Idempotency-Key` header (the body wins when both are sent).
    #[serde(default)]
    pub idempotency_key: Option<String>,
}

/// A key the dashboard generates per adjustment (e.g. a UUID): visible ASCII, 1–200.
fn check_key(raw: &str) -> Result<String, &'static str> {
    let k = raw.trim();
    if (1..=200).contains(&k.len()) && k.bytes().all(|b| (0x21..=0x7e).contains(&b)) {
        Ok(k.to_owned())
    } else {
        Err("must be 1 to 200 visible ASCII characters")
    }
}

/// 403 `self_adjustment`: the staff member owns the user automation they tried to adjust.
fn own_balance_refused() -> ApiError {
    ApiError::forbidden(
        "You cannot adjust the token balance of your own automation; ask another staff member",
    )
    .with_code("self_adjustment")
}

/// `POST /api/admin/tokens/adjust` `{user_automation_id, delta, reason, idempotency_key}`:
/// the marketplace applies it once per key (`adjust:<key>` in the ledger); the audit entry is
/// written once per key too, so a retried request neither moves the balance nor logs twice.
/// 201 when applied, 200 when the key had been applied before.
pub async fn adjust(
    staff: Staff,
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Json<AdjustBody>,
) -> HttpResult {
    let body = body.into_inner();
    let header_key = req
        .headers()
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let mut v = Validator::new();
    if body.delta == 0 {
        v.error("delta", "must not be zero");
    } else if body.delta.unsigned_abs() > MAX_DELTA.unsigned_abs() {
        v.error("delta", "is too large");
    }
    let reason = v.check("reason", validate::text(&body.reason, 500));
    // Without a key (the admin dashboard never sends one) the server makes a fresh one: each
    // call is one adjustment, and the dashboard disables its button while a call runs.
    let key = match body.idempotency_key.as_deref().or(header_key.as_deref()) {
        Some(k) => v.check("idempotency_key", check_key(k)),
        None => Some(format!("srv-{}", uuid::Uuid::new_v4())),
    };
    v.finish()?;
    let (Some(reason), Some(key)) = (reason, key) else {
        return Err(ApiError::bad_request("Invalid request"));
    };
    let mut conn = state.platform.pool.get().await?;
    let owned = owner(&mut conn, body.user_automation_id).await?;
    let (user_id, automation_id) = found(owned, "User automation not found")?;
    drop(conn);
    // Separation of duties: nobody credits their own balance, whatever their role. The
    // marketplace refuses it too (actor = owner), so a direct internal call cannot either.
    if user_id == staff.id() {
        return Err(own_balance_refused());
    }
    let call = OwnerCall::new(
        Service::Marketplace,
        Method::POST,
        "/internal/tokens/adjust",
    )
    .json(
        serde_json::to_value(AdjustRequest {
            user_automation_id: body.user_automation_id,
            delta: body.delta,
            reason: reason.clone(),
            idempotency_key: key.clone(),
            actor_id: staff.id(),
        })
        .map_err(ApiError::internal)?,
    )
    .idempotent(&key)
    .changes_stats();
    let reply = call_owner(&state, &staff, call, |reply| {
        let details = json!({
            "user_id": user_id,
            "automation_id": automation_id,
            "delta": body.delta,
            "reason": reason,
            "ledger_id": reply.body.get("ledger_id"),
            "tokens_remaining": reply.body.get("tokens_remaining"),
        });
        Audit::new(
            "tokens.adjust",
            "user_automation",
            Some(body.user_automation_id),
            details,
        )
    })
    .await?;
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::OK);
    let mut res = HttpResponse::build(status);
    if reply.status == 200 {
        res.insert_header(("Idempotent-Replayed", "true"));
    }
    // The dashboard's names beside ours: `id` (the ledger entry), `delta_tokens`.
    let mut body = reply.body;
    if let Some(map) = body.as_object_mut() {
        let id = map.get("ledger_id").cloned().unwrap_or_default();
        let delta = map.get("delta").cloned().unwrap_or_default();
        map.insert("id".into(), id);
        map.insert("delta_tokens".into(), delta);
    }
    Ok(res.json(body))
}

/// A page of adjustments with the people (`id → (email, name)`: owners and actors) and the
/// automation names they name.
type AdjustmentsPage = (
    Vec<AdjustmentRow>,
    i64,
    HashMap<i64, (String, String)>,
    HashMap<i64, String>,
);

async fn adjustments_page(
    state: &AppState,
    filter: &AdjustmentFilter,
    offset: i64,
    limit: i64,
) -> Result<AdjustmentsPage, ApiError> {
    let mut conn = state.platform.pool.get().await?;
    let (rows, total) = ledger::adjustments(&mut conn, filter, offset, limit).await?;
    let people = rows.iter().flat_map(|r| [Some(r.user_id), r.actor_id]);
    let automations = rows.iter().map(|r| r.automation_id);
    let (people, names) = names_of(&mut conn, people.flatten(), automations).await?;
    Ok((rows, total, people, names))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HistoryQuery {
    pub user_automation_id: Option<i64>,
    pub user_id: Option<i64>,
    pub actor_id: Option<i64>,
}

#[derive(Debug, Serialize)]
struct HistoryItem {
    id: i64,
    user_automation_id: i64,
    user_id: i64,
    user_email: Option<String>,
    automation_id: i64,
    automation_name: Option<String>,
    delta: i64,
    balance_after: i64,
    demo_balance_after: i64,
    reason: Option<String>,
    /// The key the adjustment was made with (`adjust:<key>` in the ledger).
    idempotency_key: Option<String>,
    actor_id: Option<i64>,
    actor_email: Option<String>,
    created_at: DateTime<Utc>,
}

/// `GET /api/admin/tokens/history?user_automation_id=&user_id=&actor_id=`: adjustments,
/// newest first.
pub async fn history(
    _staff: Staff,
    state: web::Data<AppState>,
    query: Listing<HistoryQuery, PageOnly>,
) -> HttpResult {
    let filter = AdjustmentFilter {
        user_automation_id: query.user_automation_id,
        user_id: query.user_id,
        actor_id: query.actor_id,
        ..AdjustmentFilter::default()
    };
    let page = query.paging.query();
    let (rows, total, people, names) =
        adjustments_page(&state, &filter, page.offset(), page.limit()).await?;
    let items: Vec<HistoryItem> = rows
        .into_iter()
        .map(|r| HistoryItem {
            id: r.id,
            user_automation_id: r.user_automation_id,
            user_id: r.user_id,
            user_email: people.get(&r.user_id).map(|u| u.0.clone()),
            automation_id: r.automation_id,
            automation_name: names.get(&r.automation_id).cloned(),
            delta: r.delta + r.demo_delta,
            balance_after: r.balance_after,
            demo_balance_after: r.demo_balance_after,
            reason: r.reason,
            idempotency_key: r.source_key.strip_prefix("adjust:").map(str::to_owned),
            actor_id: r.actor_id,
            actor_email: r.actor_id.and_then(|a| people.get(&a).map(|u| u.0.clone())),
            created_at: r.created_at,
        })
        .collect();
    Ok(HttpResponse::Ok().json(Paged::new(items, total, &page)))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AdjustmentsQuery {
    pub user_id: Option<i64>,
    pub automation_id: Option<i64>,
    pub admin_id: Option<i64>,
    pub start_date: Option<String>,
    pub end_date: Option<String>,
}

#[derive(Debug, Serialize)]
struct Adjustment {
    id: i64,
    user_id: i64,
    user_name: Option<String>,
    user_automation_id: i64,
    automation_id: i64,
    automation_name: Option<String>,
    admin_id: Option<i64>,
    admin_name: Option<String>,
    delta_tokens: i64,
    /// = `delta_tokens`, and `created_by_name` = `admin_name`: the two pages of the admin
    /// dashboard read different names for the same row.
    amount: i64,
    reason: Option<String>,
    note: Option<serde_json::Value>,
    related_payment_id: Option<serde_json::Value>,
    created_at: DateTime<Utc>,
    created_by_name: Option<String>,
}

/// `GET /api/admin/tokens/adjustments?user_id=&automation_id=&admin_id=&start_date=&end_date=`
/// (the admin dashboard's history; dates are inclusive UTC days): `{items, adjustments,
/// total, total_count, page, page_size}` with the same array under both keys, newest first.
pub async fn adjustments(
    _staff: Staff,
    state: web::Data<AppState>,
    query: Listing<AdjustmentsQuery>,
) -> HttpResult {
    let filter = AdjustmentFilter {
        user_automation_id: None,
        user_id: query.user_id,
        actor_id: query.admin_id,
        automation_id: query.automation_id,
        from: time_bound("start_date", query.start_date.as_deref(), false)?,
        to: time_bound("end_date", query.end_date.as_deref(), true)?,
    };
    let page = query.page(WHOLE_LIST);
    let (rows, total, people, automations) =
        adjustments_page(&state, &filter, page.offset, page.limit).await?;
    let meta = |m: &serde_json::Value, k: &str| m.get(k).filter(|v| !v.is_null()).cloned();
    let items: Vec<Adjustment> = rows
        .into_iter()
        .map(|r| {
            let admin_name = r.actor_id.and_then(|a| people.get(&a).map(|u| u.1.clone()));
            let delta = r.delta + r.demo_delta;
            Adjustment {
                id: r.id,
                user_id: r.user_id,
                user_name: people.get(&r.user_id).map(|u| u.1.clone()),
                user_automation_id: r.user_automation_id,
                automation_id: r.automation_id,
                automation_name: automations.get(&r.automation_id).cloned(),
                admin_id: r.actor_id,
                created_by_name: admin_name.clone(),
                admin_name,
                delta_tokens: delta,
                amount: delta,
                reason: r.reason,
                note: meta(&r.meta, "note"),
                related_payment_id: meta(&r.meta, "related_payment_id"),
                created_at: r.created_at,
            }
        })
        .collect();
    listed("adjustments", items, total, &page)
}
