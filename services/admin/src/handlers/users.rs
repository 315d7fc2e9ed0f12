//! Users: search, view, create staff, change role or activation. Auth owns the users table, so
//! every change goes through auth's internal API, which also revokes the user's sessions and
//! emits the events that make every service reject their tokens at once.

use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, Utc};
use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::json;
use zimmer_http::{ApiError, HttpResult, Paged};
use zimmer_jwt::Role;

use super::{Audit, audit_after, invalidate_stats, one_of, page, search_text};
use crate::{
    AppState,
    clients::Service,
    queries::users::{self as q, UserFilter, UserRow},
    rbac::Staff,
};

const ROLES: [&str; 4] = ["customer", "support_staff", "technical_team", "manager"];

#[derive(Debug, Serialize)]
pub struct UserView {
    pub id: i64,
    pub name: String,
    pub email: String,
    pub phone_number: Option<String>,
    pub role: String,
    pub is_admin: bool,
    pub is_active: bool,
    pub email_verified: bool,
    pub email_verified_at: Option<DateTime<Utc>>,
    pub twofa_enabled: bool,
    pub last_login_at: Option<DateTime<Utc>>,
    pub deactivated_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<UserRow> for UserView {
    fn from(u: UserRow) -> Self {
        Self {
            is_admin: u.role.parse::<Role>().is_ok_and(Role::is_staff),
            id: u.id,
            name: u.name,
            email: u.email,
            phone_number: u.phone_number,
            role: u.role,
            is_active: u.is_active,
            email_verified: u.email_verified_at.is_some(),
            email_verified_at: u.email_verified_at,
            twofa_enabled: u.twofa_enabled,
            last_login_at: u.last_login_at,
            deactivated_at: u.deactivated_at,
            created_at: u.created_at,
            updated_at: u.updated_at,
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    pub search: Option<String>,
    pub role: Option<String>,
    pub is_active: Option<bool>,
    pub page: Option<i64>,
    pub page_size: Option<i64>,
}

/// `GET /api/admin/users?search=&role=&is_active=&page=&page_size=`
pub async fn list(
    _staff: Staff,
    state: web::Data<AppState>,
    query: web::Query<ListQuery>,
) -> HttpResult {
    let filter = UserFilter {
        search: search_text(query.search.as_deref())?,
        role: one_of("role", query.role.as_deref(), &ROLES)?,
        is_active: query.is_active,
    };
    let page = page(query.page, query.page_size);
    let mut conn = state.platform.pool.get().await?;
    let (rows, total) = q::list(&mut conn, &filter, page.offset(), page.limit()).await?;
    let items: Vec<UserView> = rows.into_iter().map(Into::into).collect();
    Ok(HttpResponse::Ok().json(Paged::new(items, total, &page)))
}

#[derive(Debug, Serialize)]
struct AutomationSummary {
    user_automation_id: i64,
    automation_id: i64,
    name: String,
    tokens_remaining: i64,
    demo_tokens: i64,
    status: String,
    integration_status: String,
    created_at: DateTime<Utc>,
}

#[derive(Debug, Serialize)]
struct PaymentSummary {
    count: i64,
    succeeded: i64,
    /// Rials; managers only (it is revenue).
    #[serde(skip_serializing_if = "Option::is_none")]
    total_spent: Option<i64>,
}

#[derive(Debug, Serialize)]
struct TicketSummary {
    total: i64,
    open: i64,
}

#[derive(Debug, Serialize)]
struct UserDetail {
    #[serde(flatten)]
    user: UserView,
    automations: Vec<AutomationSummary>,
    payments: PaymentSummary,
    tickets: TicketSummary,
    active_sessions: i64,
}

/// `GET /api/admin/users/{id}`: the user with their automations and counters.
pub async fn get(staff: Staff, state: web::Data<AppState>, path: web::Path<i64>) -> HttpResult {
    let id = path.into_inner();
    let mut conn = state.platform.pool.get().await?;
    let user = q::get(&mut conn, id)
        .await?
        .ok_or_else(|| ApiError::not_found("User not found"))?;
    let automations = q::automations_of(&mut conn, id).await?;
    let counters = q::counters(&mut conn, id).await?;
    drop(conn);
    let detail = UserDetail {
        user: user.into(),
        automations: automations
            .into_iter()
            .map(|a| AutomationSummary {
                user_automation_id: a.id,
                automation_id: a.automation_id,
                name: a.automation_name,
                tokens_remaining: a.tokens_remaining,
                demo_tokens: a.demo_tokens,
                status: a.status,
                integration_status: a.integration_status,
                created_at: a.created_at,
            })
            .collect(),
        payments: PaymentSummary {
            count: counters.payments,
            succeeded: counters.payments_succeeded,
            total_spent: staff.is_manager().then_some(counters.spent),
        },
        tickets: TicketSummary {
            total: counters.tickets,
            open: counters.tickets_open,
        },
        active_sessions: counters.active_sessions,
    };
    Ok(HttpResponse::Ok().json(detail))
}

/// Unknown fields are ignored (api.md).
#[derive(Debug, Deserialize)]
pub struct UpdateBody {
    #[serde(default)]
    pub role: Option<String>,
    #[serde(default)]
    pub is_active: Option<bool>,
}

/// `PUT|PATCH /api/admin/users/{id}` `{role?, is_active?}`. rbac.md: any staff member may
/// (de)activate a customer; changing a role or (de)activating a staff account needs a
/// manager; nobody changes their own role or deactivates themselves. Checked here against the
/// stored target and again by auth.
pub async fn update(
    staff: Staff,
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<i64>,
    body: web::Json<UpdateBody>,
) -> HttpResult {
    let id = path.into_inner();
    let body = body.into_inner();
    let role = one_of("role", body.role.as_deref(), &ROLES)?;
    if role.is_none() && body.is_active.is_none() {
        return Err(ApiError::invalid(
            "role",
            "Nothing to change: send role and/or is_active",
        ));
    }
    let mut conn = state.platform.pool.get().await?;
    let before = q::get(&mut conn, id)
        .await?
        .ok_or_else(|| ApiError::not_found("User not found"))?;
    drop(conn);
    if id == staff.id() {
        return Err(
            ApiError::forbidden("You cannot change your own role or deactivate yourself")
                .with_code("self_change"),
        );
    }
    let role_changes = role.as_deref().is_some_and(|r| r != before.role);
    let target_is_staff = before.role != "customer";
    if (role_changes || target_is_staff) && !staff.is_manager() {
        return Err(ApiError::forbidden(
            "Only a manager can change roles or activate and deactivate staff accounts",
        ));
    }
    let reply = state
        .upstreams
        .send_acting(
            Service::Auth,
            Method::PUT,
            &format!("/internal/users/{id}"),
            &json!({ "role": role, "is_active": body.is_active }),
            acting_token(&req)?,
        )
        .await?;
    let mut changes = serde_json::Map::new();
    if let Some(r) = &role
        && role_changes
    {
        changes.insert("role".into(), json!({ "from": before.role, "to": r }));
    }
    if let Some(a) = body.is_active
        && a != before.is_active
    {
        changes.insert(
            "is_active".into(),
            json!({ "from": before.is_active, "to": a }),
        );
    }
    if !changes.is_empty() {
        let action = match body.is_active {
            Some(false) if before.is_active => "user.deactivate",
            Some(true) if !before.is_active => "user.activate",
            _ => "user.change_role",
        };
        audit_after(
            &state,
            &staff,
            Audit {
                action,
                target_type: "user",
                target_id: Some(id.to_string()),
                details: json!({ "email": before.email, "changes": changes }),
            },
            None,
        )
        .await;
        invalidate_stats(&state).await;
    }
    Ok(HttpResponse::Ok().json(reply.body))
}

#[derive(Debug, Deserialize)]
pub struct CreateStaffBody {
    pub name: String,
    pub email: String,
    pub role: String,
    #[serde(default)]
    pub password: Option<String>,
    #[serde(default)]
    pub phone_number: Option<String>,
}

/// `POST /api/admin/users` `{name, email, role, password?, phone_number?}` → 201: a staff
/// account (managers only). Without a password auth mails the new member a link to set one.
pub async fn create_staff(
    staff: Staff,
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Json<CreateStaffBody>,
) -> HttpResult {
    let body = body.into_inner();
    // Auth validates every field; the role is checked here too so that a typo never reaches
    // it as "customer".
    one_of(
        "role",
        Some(&body.role),
        &["support_staff", "technical_team", "manager"],
    )?;
    let reply = state
        .upstreams
        .send_acting(
            Service::Auth,
            Method::POST,
            "/internal/users",
            &json!({
                "name": body.name,
                "email": body.email,
                "role": body.role.trim(),
                "password": body.password,
                "phone_number": body.phone_number,
            }),
            acting_token(&req)?,
        )
        .await?;
    let new_id = reply.body.get("id").and_then(serde_json::Value::as_i64);
    audit_after(
        &state,
        &staff,
        Audit {
            action: "user.create_staff",
            target_type: "user",
            target_id: new_id.map(|i| i.to_string()),
            // Never the password.
            details: json!({
                "email": reply.body.get("email"),
                "role": reply.body.get("role"),
                "invited": body.password.as_deref().is_none_or(str::is_empty),
            }),
        },
        None,
    )
    .await;
    invalidate_stats(&state).await;
    Ok(HttpResponse::Created().json(reply.body))
}

/// The staff member's own access token (already verified by the staff guard), passed to auth
/// so that it checks the actor itself.
fn acting_token(req: &HttpRequest) -> Result<&str, ApiError> {
    zimmer_jwt::bearer_token(req).ok_or_else(|| ApiError::unauthorized("Authentication required"))
}
