//! Users: search, view, create accounts, change role, activation or name, delete permanently.
//! Auth owns the users table, so every change goes through auth's internal API (typed in
//! `zimmer_contracts::internal::users`), which also revokes the user's sessions and emits the
//! events that make every service reject their tokens at once. Deleted (anonymised) accounts
//! leave every list (docs/panels.md "Users").

use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, Utc};
use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::json;
use zimmer_events::contracts::internal::users::{CreateUser, DeletedUser, UpdateUser};
use zimmer_http::{ApiError, HttpResult};
use zimmer_jwt::Role;

use super::{
    ListPage, Listing, WHOLE_LIST, acting_token, found, listed, one_of, search_text, to_json,
};
use crate::{
    AppState,
    clients::{Reply, Service},
    ops::{Audit, OwnerCall, call_owner, typed},
    queries::users::{self as q, UserFilter, UserRow},
    rbac::Staff,
};

const ROLES: [&str; 4] = ["customer", "support_staff", "technical_team", "manager"];

/// A user as the API shows it: the row, with what the dashboard reads from it.
#[derive(Debug, Serialize)]
pub struct UserView {
    #[serde(flatten)]
    pub user: UserRow,
    pub is_admin: bool,
    pub email_verified: bool,
}

impl From<UserRow> for UserView {
    fn from(user: UserRow) -> Self {
        Self {
            is_admin: user.role.parse::<Role>().is_ok_and(Role::is_staff),
            email_verified: user.email_verified_at.is_some(),
            user,
        }
    }
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    pub search: Option<String>,
    pub role: Option<String>,
    pub is_active: Option<bool>,
}

/// `GET /api/admin/users?search=&role=&is_active=&page=&page_size=`: `{items, users, total,
/// total_count, page, page_size}` (the admin dashboard reads `users`; without paging, the
/// newest 500).
pub async fn list(
    _staff: Staff,
    state: web::Data<AppState>,
    query: Listing<ListQuery>,
) -> HttpResult {
    list_users(&state, &query, query.page(WHOLE_LIST)).await
}

/// The users list of both pages (users and managers); they differ only in how many rows an
/// unpaged call answers.
async fn list_users(state: &AppState, query: &ListQuery, page: ListPage) -> HttpResult {
    let filter = UserFilter {
        search: search_text(query.search.as_deref())?,
        role: one_of("role", query.role.as_deref(), &ROLES)?,
        is_active: query.is_active,
    };
    let mut conn = state.platform.pool.get().await?;
    let (rows, total) = q::list(&mut conn, &filter, page.offset, page.limit).await?;
    let items: Vec<UserView> = rows.into_iter().map(Into::into).collect();
    listed("users", items, total, &page)
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
    let user = found(q::get(&mut conn, id).await?, "User not found")?;
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

/// Unknown fields are ignored (docs/api.md); `is_admin` too (the role decides).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[schema(as = UserUpdateBody)]
pub struct UpdateBody {
    #[serde(default)]
    pub role: Option<String>,
    #[serde(default)]
    pub is_active: Option<bool>,
    /// Blank or null: no change.
    #[serde(default)]
    pub name: Option<String>,
}

impl UpdateBody {
    fn change(&self) -> Result<Change, ApiError> {
        Ok(Change {
            role: one_of("role", self.role.as_deref(), &ROLES)?,
            is_active: self.is_active,
            name: self
                .name
                .as_deref()
                .map(str::trim)
                .filter(|n| !n.is_empty())
                .map(str::to_owned),
        })
    }
}

/// What an edit asks for (each part optional).
#[derive(Debug, Default)]
struct Change {
    role: Option<String>,
    is_active: Option<bool>,
    name: Option<String>,
}

/// `PUT|PATCH /api/admin/users/{id}` `{role?, is_active?, name?}`. docs/rbac.md: any staff
/// member may (de)activate or rename a customer; changing a role, or (de)activating or renaming
/// a staff account, needs a manager; nobody changes their own role or deactivates themselves.
/// Checked here against the stored target and again by auth.
pub async fn update(
    staff: Staff,
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<i64>,
    body: web::Json<UpdateBody>,
) -> HttpResult {
    let change = body.change()?;
    if change.role.is_none() && change.is_active.is_none() && change.name.is_none() {
        return Err(ApiError::invalid(
            "role",
            "Nothing to change: send role, is_active and/or name",
        ));
    }
    let user = apply_update(&staff, &req, &state, path.into_inner(), change).await?;
    Ok(HttpResponse::Ok().json(user))
}

/// A role, activation and/or name change through auth, checked and audited; a value equal to
/// the stored one is no change, and a call that changes nothing answers the user as it is
/// (also for oneself). A deleted account is not found.
async fn apply_update(
    staff: &Staff,
    req: &HttpRequest,
    state: &AppState,
    id: i64,
    change: Change,
) -> Result<serde_json::Value, ApiError> {
    let mut conn = state.platform.pool.get().await?;
    let before = found(q::get(&mut conn, id).await?, "User not found")?;
    drop(conn);
    let role_changes = change.role.as_deref().is_some_and(|r| r != before.role);
    let active_changes = change.is_active.is_some_and(|a| a != before.is_active);
    let name_changes = change.name.as_deref().is_some_and(|n| n != before.name);
    if !role_changes && !active_changes && !name_changes {
        return to_json(&UserView::from(before));
    }
    if id == staff.id() && (role_changes || active_changes) {
        return Err(
            ApiError::forbidden("You cannot change your own role or deactivate yourself")
                .with_code("self_change"),
        );
    }
    let target_is_staff = before.role != "customer";
    if (role_changes || target_is_staff) && !staff.is_manager() {
        return Err(ApiError::forbidden(
            "Only a manager can change roles or activate, deactivate and rename staff accounts",
        ));
    }
    let role = change.role.filter(|_| role_changes);
    let is_active = change.is_active.filter(|_| active_changes);
    let name = change.name.filter(|_| name_changes);
    let body = serde_json::to_value(UpdateUser {
        role: role.clone(),
        is_active,
        name: name.clone(),
    })
    .map_err(ApiError::internal)?;
    let call = OwnerCall::new(Service::Auth, Method::PUT, format!("/internal/users/{id}"))
        .json(body)
        .acting(acting_token(req)?)
        .changes_stats();
    let reply = call_owner(state, staff, call, |_| {
        let mut changes = serde_json::Map::new();
        if let Some(r) = &role {
            changes.insert("role".into(), json!({ "from": before.role, "to": r }));
        }
        if let Some(a) = is_active {
            changes.insert(
                "is_active".into(),
                json!({ "from": before.is_active, "to": a }),
            );
        }
        if let Some(n) = &name {
            changes.insert("name".into(), json!({ "from": before.name, "to": n }));
        }
        let action = match (is_active, &role) {
            (Some(false), _) => "user.deactivate",
            (Some(true), _) => "user.activate",
            (None, Some(_)) => "user.change_role",
            (None, None) => "user.rename",
        };
        let details = json!({ "email": before.email, "changes": changes });
        Audit::new(action, "user", Some(id), details)
    })
    .await?;
    Ok(reply.body)
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
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
    let invited = body.password.as_deref().is_none_or(str::is_empty);
    let new = CreateUser {
        name: body.name,
        email: body.email,
        role: body.role.trim().to_owned(),
        password: body.password,
        phone_number: body.phone_number,
        ..CreateUser::default()
    };
    create_user(&staff, &req, &state, new, invited).await
}

/// A new account through auth, audited: 201 with auth's answer.
async fn create_user(
    staff: &Staff,
    req: &HttpRequest,
    state: &AppState,
    new: CreateUser,
    invited: bool,
) -> HttpResult {
    let new = to_json(&new)?;
    let call = OwnerCall::new(Service::Auth, Method::POST, "/internal/users")
        .json(new)
        .acting(acting_token(req)?)
        .changes_stats();
    let reply = call_owner(state, staff, call, |reply| staff_created(reply, invited)).await?;
    Ok(HttpResponse::Created().json(reply.body))
}

/// The audit entry of a new account: never the password.
fn staff_created(reply: &Reply, invited: bool) -> Audit<'static> {
    let details = json!({
        "email": reply.body.get("email"),
        "role": reply.body.get("role"),
        "invited": invited,
    });
    Audit::of_answer("user.create_staff", "user", reply, details)
}

/// The managers list of the admin dashboard returns every account at once (README.md).
const WHOLE_USERS: i64 = 5_000;

/// `GET /api/admin/users/managers?search=&role=&is_active=&limit=&offset=`: despite the path,
/// every account (customers and staff), newest first, as `{users, items, total,
/// total_count, ...}`; without paging, up to 5,000 at once.
pub async fn managers(
    _staff: Staff,
    state: web::Data<AppState>,
    query: Listing<ListQuery>,
) -> HttpResult {
    list_users(&state, &query, query.page(WHOLE_USERS)).await
}

/// The admin dashboard's user form. Unknown fields (`is_admin`: the role decides) are ignored.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct ManagerCreateBody {
    pub name: String,
    pub email: String,
    pub password: String,
    pub role: String,
    #[serde(default)]
    pub is_active: Option<bool>,
}

/// `POST /api/admin/users/managers` `{email, name, password, role, is_admin, is_active}` →
/// 201 with the user: an account of any role, customers included (managers only, checked by
/// the guard and again by auth from the acting token; docs/panels.md "Users"). Password 8–128
/// characters and not a common one, email unique (409), the email counts as verified (a staff
/// member typed it), `is_active: false` creates it deactivated; `is_admin` is ignored.
pub async fn create_manager(
    staff: Staff,
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Json<ManagerCreateBody>,
) -> HttpResult {
    let body = body.into_inner();
    let role = one_of("role", Some(body.role.as_str()), &ROLES)?
        .ok_or_else(|| ApiError::invalid("role", "is required"))?;
    if body.password.is_empty() {
        return Err(ApiError::invalid("password", "is required"));
    }
    let new = CreateUser {
        name: body.name,
        email: body.email,
        role,
        password: Some(body.password),
        phone_number: None,
        is_active: body.is_active,
        email_verified: Some(true),
    };
    create_user(&staff, &req, &state, new, false).await
}

/// `PUT /api/admin/users/managers/{id}/role` and `PUT /api/admin/users/managers/{id}`: the
/// same rules as `PUT /api/admin/users/{id}`; a form that changes nothing answers 200. The
/// dashboard's edit form is `{role, is_active}` (and `name`, `is_admin`, ignored: the role
/// decides `is_admin`, and names are changed by their owner).
pub async fn update_manager(
    staff: Staff,
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<i64>,
    body: web::Json<UpdateBody>,
) -> HttpResult {
    let change = body.change()?;
    let user = apply_update(&staff, &req, &state, path.into_inner(), change).await?;
    Ok(HttpResponse::Ok().json(user))
}

/// `DELETE /api/admin/users/managers/{id}` (no body): deactivates the account, as
/// `is_active: false` (its sessions are revoked); the account and its history stay.
pub async fn deactivate_manager(
    staff: Staff,
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<i64>,
) -> HttpResult {
    let id = path.into_inner();
    let change = Change {
        is_active: Some(false),
        ..Change::default()
    };
    apply_update(&staff, &req, &state, id, change).await?;
    Ok(HttpResponse::Ok().json(json!({
        "message": "The account was deactivated",
        "user_id": id,
    })))
}

/// `DELETE /api/admin/users/managers/{id}/permanent` (no body): the account is anonymised by
/// auth (docs/panels.md "Users: the managers list and permanent delete"): managers only,
/// never oneself (403 `self_change`), deactivated first (else 409). Payments, ledger and
/// tickets keep the id; the audit entry records the id, never the erased data.
pub async fn delete_permanent(
    staff: Staff,
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<i64>,
) -> HttpResult {
    let id = path.into_inner();
    if id == staff.id() {
        return Err(
            ApiError::forbidden("You cannot delete your own account from here")
                .with_code("self_change"),
        );
    }
    let path = format!("/internal/users/{id}");
    let call = OwnerCall::new(Service::Auth, Method::DELETE, path)
        .acting(acting_token(&req)?)
        .changes_stats();
    let reply = call_owner(&state, &staff, call, |_| {
        Audit::new("user.delete_permanent", "user", Some(id), json!({}))
    })
    .await?;
    let deleted: DeletedUser = typed(Service::Auth, reply)?;
    Ok(HttpResponse::Ok().json(json!({
        "message": "The account was deleted permanently",
        "user_id": deleted.user_id,
        "deleted_at": deleted.deleted_at,
    })))
}
