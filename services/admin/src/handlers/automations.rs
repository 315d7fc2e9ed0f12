//! Automations: read from the catalogue table; created, edited, unlisted or deleted, given a
//! new service token (or none) and health-checked through the marketplace's internal API
//! (types in `zimmer_contracts::internal::automations`). The admin dashboard's vocabulary is
//! translated in `domain::automations` (docs/panels.md "Automations and service tokens").

use actix_web::{HttpRequest, HttpResponse, HttpResponseBuilder, web};
use chrono::{DateTime, Utc};
use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use zimmer_db::models::marketplace::Automation as AutomationRow;
use zimmer_events::contracts::internal::automations::{
    Automation, AutomationDeleted, AutomationInput, IssuedServiceToken, PasswordRecheck,
    PasswordRechecked, Secret, ServiceTokenRemoved,
};
use zimmer_http::{ApiError, HttpResult, optional_json};

use super::{Listing, WHOLE_LIST, acting_token, found, listed, one_of, search_text, to_json};
use crate::{
    AppState,
    clients::Service,
    domain::automations::{dashboard_pricing_type, input_from_dashboard, new_service_token},
    ops::{Audit, OwnerCall, call_owner, typed},
    queries::automations::{self as q, AutomationFilter},
    rbac::Staff,
};

/// An automation as the admin dashboard reads it (docs/panels.md "Automations and service
/// tokens": every field of its automation object, plus ours).
#[derive(Debug, Serialize)]
struct AutomationView {
    id: i64,
    name: String,
    description: String,
    /// `token_per_session`, `token_per_message` (our `token_per_step`, in the admin
    /// dashboard's word) or `flat_fee`.
    pricing_type: String,
    price_per_token: i64,
    demo_tokens: i64,
    /// A boolean on the admin paths (true = active), as the admin dashboard reads it.
    status: bool,
    is_listed: bool,
    health_status: String,
    last_health_at: Option<DateTime<Utc>>,
    provision_url: Option<String>,
    /// = `provision_url` (the dashboard's name).
    api_provision_url: Option<String>,
    health_check_url: Option<String>,
    api_base_url: Option<String>,
    api_usage_url: Option<String>,
    api_kb_status_url: Option<String>,
    api_kb_reset_url: Option<String>,
    dashboard_url: Option<String>,
    has_service_token: bool,
    /// `****` + the token's last four characters, null without a token.
    service_token_masked: Option<String>,
    /// Customers who have added it (it can be deleted only at zero).
    users_count: i64,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

fn view(a: Automation, users_count: i64) -> AutomationView {
    AutomationView {
        id: a.id,
        name: a.name,
        description: a.description,
        pricing_type: dashboard_pricing_type(a.pricing_type),
        price_per_token: a.price_per_token,
        demo_tokens: a.demo_tokens,
        status: a.status == "active",
        is_listed: a.is_listed,
        health_status: a.health_status,
        last_health_at: a.last_health_at,
        api_provision_url: a.provision_url.clone(),
        provision_url: a.provision_url,
        health_check_url: a.health_check_url,
        api_base_url: a.api_base_url,
        api_usage_url: a.api_usage_url,
        api_kb_status_url: a.api_kb_status_url,
        api_kb_reset_url: a.api_kb_reset_url,
        dashboard_url: a.dashboard_url,
        has_service_token: a.has_service_token,
        service_token_masked: a.service_token_masked,
        users_count,
        created_at: a.created_at,
        updated_at: a.updated_at,
    }
}

/// A row read from the catalogue table, shown as the marketplace's internal API shows it (one
/// row → [`Automation`] conversion in `zimmer_db`, so both reads give one view).
fn row_view((a, users_count): (AutomationRow, i64)) -> AutomationView {
    view(Automation::from(a), users_count)
}

/// A call to the marketplace about automation `id`: `/internal/automations/{id}{rest}`.
fn on_automation(method: Method, id: i64, rest: &str) -> OwnerCall<'static> {
    let path = format!("/internal/automations/{id}{rest}");
    OwnerCall::new(Service::Marketplace, method, path)
}

/// The audit entry of a change to automation `id`.
fn automation_audit(action: &str, id: i64, details: Value) -> Audit<'_> {
    Audit::new(action, "automation", Some(id), details)
}

/// Fields worth keeping in the audit log (the URLs and prices; never the token).
fn audited_fields(input: &AutomationInput) -> Value {
    let mut v = serde_json::to_value(input).unwrap_or(Value::Null);
    if let Some(map) = v.as_object_mut() {
        map.remove("service_token");
        map.remove("description");
        if input.service_token.is_some() {
            map.insert("service_token_chosen".into(), json!(true));
        }
    }
    v
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    pub search: Option<String>,
    pub status: Option<String>,
    pub is_listed: Option<bool>,
    pub health_status: Option<String>,
}

/// `GET /api/admin/automations?search=&status=&is_listed=&health_status=`: listed or not.
pub async fn list(
    _staff: Staff,
    state: web::Data<AppState>,
    query: Listing<ListQuery>,
) -> HttpResult {
    let filter = AutomationFilter {
        search: search_text(query.search.as_deref())?,
        status: match query.status.as_deref().map(str::trim) {
            Some("true") => Some("active".to_owned()),
            Some("false") => Some("inactive".to_owned()),
            other => one_of("status", other, &["active", "inactive"])?,
        },
        is_listed: query.is_listed,
        health_status: one_of(
            "health_status",
            query.health_status.as_deref(),
            &["healthy", "degraded", "down", "unknown"],
        )?,
    };
    let page = query.page(WHOLE_LIST);
    let mut conn = state.platform.pool.get().await?;
    let (rows, total) = q::list(&mut conn, &filter, page.offset, page.limit).await?;
    let items: Vec<AutomationView> = rows.into_iter().map(row_view).collect();
    listed("automations", items, total, &page)
}

/// `GET /api/admin/automations/{id}`
pub async fn get(_staff: Staff, state: web::Data<AppState>, path: web::Path<i64>) -> HttpResult {
    let mut conn = state.platform.pool.get().await?;
    let row = found(
        q::get(&mut conn, path.into_inner()).await?,
        "Automation not found",
    )?;
    Ok(HttpResponse::Ok().json(row_view(row)))
}

/// `POST /api/admin/automations` (the form, or the wizard with its `service_token`) → 201
/// the automation as the dashboard reads it. The marketplace validates and stores it: a chosen
/// token is kept as its hash and tail, 409 when it is some automation's token already.
pub async fn create(staff: Staff, state: web::Data<AppState>, raw: web::Bytes) -> HttpResult {
    let input = input_from_dashboard(optional_json::<Value>(&raw)?, true)?;
    let body = to_json(&input)?;
    let call = OwnerCall::new(Service::Marketplace, Method::POST, "/internal/automations");
    let reply = call_owner(&state, &staff, call.body(&body).changes_stats(), |reply| {
        Audit::of_answer(
            "automation.create",
            "automation",
            reply,
            audited_fields(&input),
        )
    })
    .await?;
    let created: Automation = typed(Service::Marketplace, reply)?;
    Ok(HttpResponse::Created().json(view(created, 0)))
}

/// `PUT /api/admin/automations/{id}`: partial (an absent field stays, `null`/`""` clears a
/// URL; `{status}` alone is the row's select). Never touches `is_listed` or health unless
/// sent; `is_listed: false` unlists.
pub async fn update(
    staff: Staff,
    state: web::Data<AppState>,
    path: web::Path<i64>,
    raw: web::Bytes,
) -> HttpResult {
    let id = path.into_inner();
    let input = input_from_dashboard(optional_json::<Value>(&raw)?, false)?;
    let body = to_json(&input)?;
    let call = on_automation(Method::PUT, id, "");
    let reply = call_owner(&state, &staff, call.body(&body).changes_stats(), |_| {
        automation_audit("automation.update", id, audited_fields(&input))
    })
    .await?;
    let updated: Automation = typed(Service::Marketplace, reply)?;
    let mut conn = state.platform.pool.get().await?;
    let users = q::users_count(&mut conn, id).await?;
    Ok(HttpResponse::Ok().json(view(updated, users)))
}

/// `DELETE /api/admin/automations/{id}`: deleted when no customer has it, otherwise unlisted
/// (customers keep what they bought); `{message, deleted, unlisted, automation_id}` says which.
pub async fn delete(staff: Staff, state: web::Data<AppState>, path: web::Path<i64>) -> HttpResult {
    let id = path.into_inner();
    let call = on_automation(Method::DELETE, id, "").changes_stats();
    let reply = call_owner(&state, &staff, call, |reply| {
        let deleted = reply.body.get("deleted").and_then(Value::as_bool) == Some(true);
        let action = if deleted {
            "automation.delete"
        } else {
            "automation.unlist"
        };
        automation_audit(action, id, json!({ "deleted": deleted }))
    })
    .await?;
    let done: AutomationDeleted = typed(Service::Marketplace, reply)?;
    Ok(HttpResponse::Ok().json(json!({
        "message": done.message,
        "deleted": done.deleted,
        "unlisted": done.unlisted,
        "automation_id": done.automation_id,
    })))
}

/// A new service token through the marketplace, audited: the previous one stops working, the
/// new one works at once (consumption and request signing). Never stored by admin, never
/// logged.
async fn new_token(
    state: &AppState,
    staff: &Staff,
    id: i64,
    action: &str,
) -> Result<IssuedServiceToken, ApiError> {
    let call = on_automation(Method::POST, id, "/service-token");
    let reply = call_owner(state, staff, call, |_| {
        automation_audit(action, id, json!({}))
    })
    .await?;
    typed(Service::Marketplace, reply)
}

/// A token in an answer is shown this once: never cached.
fn shown_once(mut res: HttpResponseBuilder, body: impl Serialize) -> HttpResult {
    Ok(res.insert_header(("Cache-Control", "no-store")).json(body))
}

/// A dashboard button that replaces an automation's service token: the same mechanism as
/// `/service-token`, audited as `action`, answered 200 with the new token under the button's
/// own field names.
struct TokenButton {
    action: &'static str,
    token: &'static str,
    masked: &'static str,
    /// The field of the issue time, for the button that shows it.
    issued_at: Option<&'static str>,
    message: &'static str,
}

const GENERATE: TokenButton = TokenButton {
    action: "automation.issue_service_token",
    token: "service_token",
    masked: "service_token_masked",
    issued_at: None,
    message: "A new service token was issued; the previous one no longer works. It is shown only once.",
};

const ROTATE: TokenButton = TokenButton {
    action: "automation.rotate_service_token",
    token: "new_token",
    masked: "masked_token",
    issued_at: Some("rotated_at"),
    message: "The service token was rotated; the previous one no longer works. It is shown only once.",
};

/// A new token for automation `id` through `button`, shown this once.
async fn reissued(state: &AppState, staff: &Staff, id: i64, button: &TokenButton) -> HttpResult {
    let issued = new_token(state, staff, id, button.action).await?;
    let mut answer = serde_json::Map::new();
    answer.insert(button.token.into(), to_json(&issued.service_token)?);
    answer.insert(button.masked.into(), issued.service_token_masked.into());
    answer.insert("automation_id".into(), issued.automation_id.into());
    if let Some(field) = button.issued_at {
        answer.insert(field.into(), to_json(&issued.issued_at)?);
    }
    answer.insert("message".into(), button.message.into());
    shown_once(HttpResponse::Ok(), answer)
}

/// `POST /api/admin/automations/{id}/service-token` → 201 `{automation_id, service_token,
/// service_token_masked, issued_at}`: shown this once (not cacheable); the previous token
/// stops working.
pub async fn issue_token(
    staff: Staff,
    state: web::Data<AppState>,
    path: web::Path<i64>,
) -> HttpResult {
    let issued = new_token(
        &state,
        &staff,
        path.into_inner(),
        "automation.issue_service_token",
    )
    .await?;
    shown_once(HttpResponse::Created(), issued)
}

/// `POST /api/admin/automations/{id}/generate-service-token` (the admin dashboard's "generate
/// token" and "connect" buttons; no body) → `{service_token, automation_id, message}`: the
/// same mechanism as `/service-token`.
pub async fn generate_service_token(
    staff: Staff,
    state: web::Data<AppState>,
    path: web::Path<i64>,
) -> HttpResult {
    reissued(&state, &staff, path.into_inner(), &GENERATE).await
}

/// `POST /api/admin/automations/{id}/rotate-token` (no body) → `{new_token, masked_token,
/// automation_id, rotated_at, message}`: the same mechanism again.
pub async fn rotate_token(
    staff: Staff,
    state: web::Data<AppState>,
    path: web::Path<i64>,
) -> HttpResult {
    reissued(&state, &staff, path.into_inner(), &ROTATE).await
}

/// `DELETE /api/admin/automations/{id}/service-token` ("disconnect", no body) → `{message,
/// automation_id, removed}`: the automation has no token any more (consumption with the old
/// one answers 401); it stays listed.
pub async fn remove_service_token(
    staff: Staff,
    state: web::Data<AppState>,
    path: web::Path<i64>,
) -> HttpResult {
    let id = path.into_inner();
    let call = on_automation(Method::DELETE, id, "/service-token");
    let reply = call_owner(&state, &staff, call, |reply| {
        let removed = reply.body.get("removed").and_then(Value::as_bool);
        automation_audit(
            "automation.remove_service_token",
            id,
            json!({ "removed": removed }),
        )
    })
    .await?;
    let done: ServiceTokenRemoved = typed(Service::Marketplace, reply)?;
    Ok(HttpResponse::Ok().json(json!({
        "message": done.message,
        "automation_id": done.automation_id,
        "removed": done.removed,
    })))
}

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
pub struct GenerateTokenBody {
    #[serde(default)]
    pub password: Option<Secret>,
}

/// `POST /api/admin/automations/generate-token` `{password}` (the wizard's first step) →
/// `{token, message, warning}`. The caller's own password is re-checked by auth (throttled
/// like login; wrong → 403, never 401, which the dashboard would read as "session expired").
/// Nothing is stored: the token takes effect when the wizard creates the automation with it.
pub async fn generate_token(
    staff: Staff,
    req: HttpRequest,
    state: web::Data<AppState>,
    raw: web::Bytes,
) -> HttpResult {
    let body: GenerateTokenBody = match optional_json::<Value>(&raw)? {
        Value::Null => GenerateTokenBody::default(),
        v => serde_json::from_value(v)
            .map_err(|_| ApiError::invalid("password", "must be a string"))?,
    };
    let Some(password) = body.password.filter(|p| !p.expose().is_empty()) else {
        return Err(ApiError::invalid("password", "Your password is required")
            .with_code("password_required"));
    };
    let acting = acting_token(&req)?;
    let recheck = to_json(&PasswordRecheck { password })?;
    let call = OwnerCall::new(Service::Auth, Method::POST, "/internal/password-recheck")
        .json(recheck)
        .acting(acting);
    let reply = call_owner(&state, &staff, call, |_| {
        Audit::new(
            "automation.generate_token",
            "automation",
            None::<i64>,
            json!({}),
        )
    })
    .await?;
    let _: PasswordRechecked = typed(Service::Auth, reply)?;
    shown_once(
        HttpResponse::Ok(),
        json!({
            "token": new_service_token(),
            "message": "A service token was generated. It is stored only when you create the automation with it.",
            "warning": "It is shown only once: keep it somewhere safe and give it to the automation's vendor.",
        }),
    )
}

/// `POST /api/admin/automations/{id}/health-check`: checks now and records the result.
pub async fn health_check(
    staff: Staff,
    state: web::Data<AppState>,
    path: web::Path<i64>,
) -> HttpResult {
    let id = path.into_inner();
    let call = on_automation(Method::POST, id, "/health-check").json(json!({}));
    let reply = call_owner(&state, &staff, call, |reply| {
        let details = json!({
            "health_status": reply.body.get("health_status"),
            "previous": reply.body.get("previous"),
        });
        automation_audit("automation.health_check", id, details)
    })
    .await?;
    Ok(HttpResponse::Ok().json(reply.body))
}
