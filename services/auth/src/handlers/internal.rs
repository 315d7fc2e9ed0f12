//! Auth's internal API (`/internal/...`: never routed by the gateway, and every call needs
//! a service credential `X-Internal-Token`). Admin changes users only through here: auth
//! owns the users table.
//!
//! Changes (roles, activation, staff creation) are accepted only from the admin service's
//! own credential, and only with the acting staff member's own access token in
//! `X-Acting-User-Token`: auth verifies it (signature, expiry, revocation) and takes the
//! actor from it, never from the request body, so neither another service's credential nor
//! admin's credential alone can make anybody a manager. Admin checks roles first; auth
//! checks them again here against the actor's stored role (README.md, roles):
//! - nobody changes their own role or deactivates themselves;
//! - only a manager creates staff, changes a role, or (de)activates a staff account;
//! - any active staff member may (de)activate a customer.

use actix_web::{HttpRequest, HttpResponse, web};
use chrono::Utc;
use diesel_async::{AsyncConnection, AsyncPgConnection};
use serde::Deserialize;
use zimmer_db::models::{NewUser, User};
use zimmer_events::contracts::UserUpdated;
pub use zimmer_events::contracts::internal::users::{
    CreateUser as CreateStaff, DeletedUser, InternalUser, UpdateUser,
};
use zimmer_http::{ApiError, HttpResult, InternalCaller, validate, validate::Validator};
use zimmer_jwt::Role;

use super::{
    UserView, deactivate_in_tx, deactivate_locally, enqueue_revoked, enqueue_user_updated,
    revoke_locally,
};
use crate::ops::account::{erase_in_tx, erase_locally, insert_registered_in_tx};
use crate::{
    AppState,
    clients::mail,
    domain::{
        password::check_new_password,
        tokens::{random_token, token_hash},
    },
    queries,
};

/// Revocations still live, for a service that starts after they happened.
pub async fn revocations(_caller: InternalCaller, state: web::Data<AppState>) -> HttpResult {
    let ttl = i64::try_from(state.platform.settings.jwt.access_ttl.as_secs()).unwrap_or(3600);
    let since = Utc::now() - chrono::Duration::seconds(ttl);
    let mut conn = state.platform.pool.get().await?;
    let list = queries::live_revocations(&mut conn, since, ttl).await?;
    Ok(HttpResponse::Ok().json(list))
}

/// User `id` as admin sees it (404 when unknown): the public view plus the deactivation and
/// deletion times.
async fn internal_view(conn: &mut AsyncPgConnection, id: i64) -> Result<InternalUser, ApiError> {
    let user = queries::user_by_id(conn, id)
        .await?
        .ok_or_else(|| ApiError::not_found("User not found"))?;
    let (deactivated_at, deleted_at) = queries::lifecycle(conn, id).await?;
    let u = UserView::from(user);
    Ok(InternalUser {
        id: u.id,
        name: u.name,
        email: u.email,
        phone_number: u.phone_number,
        role: u.role,
        is_admin: u.is_admin,
        is_active: u.is_active,
        email_verified: u.email_verified,
        email_verified_at: u.email_verified_at,
        twofa_enabled: u.twofa_enabled,
        created_at: u.created_at,
        deactivated_at,
        deleted_at,
    })
}

/// A deleted account is gone for every change (it cannot be reactivated or renamed).
async fn live_target(conn: &mut AsyncPgConnection, id: i64) -> Result<User, ApiError> {
    let user = queries::lock_user(conn, id)
        .await?
        .ok_or_else(|| ApiError::not_found("User not found"))?;
    if queries::lifecycle(conn, id).await?.1.is_some() {
        return Err(ApiError::not_found("User not found"));
    }
    Ok(user)
}

fn role_of(user: &User) -> Result<Role, ApiError> {
    user.role
        .parse::<Role>()
        .map_err(|()| ApiError::internal(anyhow::anyhow!("unknown role {}", user.role)))
}

/// The header with the acting staff member's access token (`Bearer ` prefix optional).
pub const ACTING_TOKEN_HEADER: &str = "x-acting-user-token";

/// The only service that may change users.
const ADMIN: &str = "admin";

/// The user admin acts for: the caller must be the admin service, and the acting token must
/// be a valid, unrevoked access token. A bad acting token is 403 (not 401: admin maps a 401
/// from auth to "our service credential was refused"); keys or revocations not loaded yet
/// stay 503.
pub(crate) async fn acting_user(
    caller: &InternalCaller,
    req: &HttpRequest,
    st: &AppState,
) -> Result<i64, ApiError> {
    caller.require(&[ADMIN])?;
    let raw = req
        .headers()
        .get(ACTING_TOKEN_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .unwrap_or_default();
    let token = match raw.split_once(' ') {
        Some((scheme, t)) if scheme.eq_ignore_ascii_case("bearer") => t.trim(),
        _ => raw,
    };
    if token.is_empty() {
        return Err(ApiError::forbidden(
            "The acting staff member's access token is required (X-Acting-User-Token)",
        )
        .with_code("acting_token_required"));
    }
    let user = st.platform.auth.authenticate(token).await.map_err(|e| {
        if e.status() == actix_web::http::StatusCode::UNAUTHORIZED {
            ApiError::forbidden(format!(
                "The acting staff member's token is not valid: {}",
                e.detail()
            ))
            .with_code("invalid_actor_token")
        } else {
            e
        }
    })?;
    Ok(user.id)
}

/// The acting staff member's account: it exists and is active (else 403 `invalid_actor`).
pub async fn active_actor(conn: &mut AsyncPgConnection, actor_id: i64) -> Result<User, ApiError> {
    queries::user_by_id(conn, actor_id)
        .await?
        .filter(|a| a.is_active)
        .ok_or_else(|| {
            ApiError::forbidden("The acting user does not exist or is deactivated")
                .with_code("invalid_actor")
        })
}

/// The acting staff member's role: the member exists, is active and is staff.
async fn actor_role(conn: &mut AsyncPgConnection, actor_id: i64) -> Result<Role, ApiError> {
    let role = role_of(&active_actor(conn, actor_id).await?)?;
    if !role.is_staff() {
        return Err(ApiError::forbidden("Only staff can manage users"));
    }
    Ok(role)
}

/// The acting staff member, who must be a manager for this action (`refused` says which).
async fn manager(
    conn: &mut AsyncPgConnection,
    actor_id: i64,
    refused: &'static str,
) -> Result<(), ApiError> {
    match actor_role(conn, actor_id).await? {
        Role::Manager => Ok(()),
        _ => Err(ApiError::forbidden(refused)),
    }
}

/// `GET /internal/users/{id}`
pub async fn get_user(
    _caller: InternalCaller,
    state: web::Data<AppState>,
    path: web::Path<i64>,
) -> HttpResult {
    let mut conn = state.platform.pool.get().await?;
    Ok(HttpResponse::Ok().json(internal_view(&mut conn, path.into_inner()).await?))
}

/// `PUT /internal/users/{id}` `{role?, is_active?, name?}`: a role change revokes every
/// session (access tokens carry the role); deactivation revokes them too and emits
/// `user.deactivated`; a name change emits `user.updated {name}`. Repeating a change that is
/// already in effect is a no-op (no events); so is a call that changes nothing, also for
/// oneself (docs/panels.md "Users").
pub async fn update_user(
    caller: InternalCaller,
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<i64>,
    body: web::Json<UpdateUser>,
) -> HttpResult {
    update_as_actor(&caller, &req, &state, path.into_inner(), body.into_inner()).await
}

/// The acting staff member's change of one user (the body of every update route).
async fn update_as_actor(
    caller: &InternalCaller,
    req: &HttpRequest,
    st: &AppState,
    target_id: i64,
    update: UpdateUser,
) -> HttpResult {
    let actor_id = acting_user(caller, req, st).await?;
    apply_update(st, actor_id, target_id, update).await
}

async fn apply_update(
    st: &AppState,
    actor_id: i64,
    target_id: i64,
    body: UpdateUser,
) -> HttpResult {
    let new_role = match body.role.as_deref() {
        None => None,
        Some(r) => Some(r.trim().parse::<Role>().map_err(|()| {
            ApiError::invalid(
                "role",
                "must be one of customer, support_staff, technical_team, manager",
            )
        })?),
    };
    let new_name = match body.name.as_deref() {
        None => None,
        Some(n) => {
            Some(validate::line(n, 100).map_err(|m| ApiError::invalid("name", m.to_string()))?)
        }
    };
    if new_role.is_none() && body.is_active.is_none() && new_name.is_none() {
        return Err(ApiError::invalid(
            "role",
            "Nothing to change: send role, is_active and/or name",
        ));
    }
    let mut conn = st.platform.pool.get().await?;
    let (user, revoked, deactivation) = conn
        .transaction(async |conn| {
            let actor_role = actor_role(conn, actor_id).await?;
            let target = live_target(conn, target_id).await?;
            let target_role = role_of(&target)?;
            let role_changes = new_role.is_some_and(|r| r != target_role);
            let activity_changes = body.is_active.is_some_and(|a| a != target.is_active);
            let name_changes = new_name.as_deref().is_some_and(|n| n != target.name);
            if target.id == actor_id && (role_changes || activity_changes) {
                return Err(ApiError::forbidden(
                    "You cannot change your own role or deactivate yourself",
                )
                .with_code("self_change"));
            }
            if name_changes && target_role.is_staff() && actor_role != Role::Manager {
                return Err(ApiError::forbidden(
                    "Only a manager can rename a staff account",
                ));
            }
            if role_changes && actor_role != Role::Manager {
                return Err(ApiError::forbidden("Only a manager can change roles"));
            }
            if activity_changes && target_role.is_staff() && actor_role != Role::Manager {
                return Err(ApiError::forbidden(
                    "Only a manager can activate or deactivate staff accounts",
                ));
            }

            let mut changes = UserUpdated {
                user_id: target_id,
                ..UserUpdated::default()
            };
            let mut revoked = Vec::new();
            let mut deactivation = None;
            if let Some(role) = new_role.filter(|_| role_changes)
                && queries::set_role(conn, target_id, role.as_str())
                    .await?
                    .is_some()
            {
                changes.role = Some(role.as_str().to_owned());
                revoked =
                    queries::revoke_user_sessions(conn, target_id, None, "role_changed").await?;
                enqueue_revoked(conn, st, &revoked).await?;
            }
            if body.is_active == Some(false) {
                deactivation = deactivate_in_tx(conn, st, target_id, "deactivated").await?;
                if deactivation.is_some() {
                    changes.is_active = Some(false);
                }
            } else if body.is_active == Some(true) && queries::activate(conn, target_id).await? {
                changes.is_active = Some(true);
            }
            if let Some(name) = new_name.as_deref().filter(|_| name_changes)
                && queries::set_name(conn, target_id, name).await?
            {
                changes.name = Some(name.to_owned());
            }
            if changes.role.is_some() || changes.is_active.is_some() || changes.name.is_some() {
                changes.actor_id = Some(actor_id);
                enqueue_user_updated(conn, changes).await?;
            }
            let view = internal_view(conn, target_id).await?;
            Ok::<_, ApiError>((view, revoked, deactivation))
        })
        .await?;
    st.users.forget(&target_id);
    revoke_locally(st, &revoked);
    if let Some(d) = &deactivation {
        deactivate_locally(st, d);
        tracing::info!(user_id = target_id, actor_id, "user deactivated");
    }
    Ok(HttpResponse::Ok().json(user))
}

/// `POST /internal/users/{id}/deactivate` (any body is ignored)
pub async fn deactivate(
    caller: InternalCaller,
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<i64>,
) -> HttpResult {
    set_active(&caller, &req, &state, path.into_inner(), false).await
}

/// `POST /internal/users/{id}/activate` (any body is ignored)
pub async fn activate(
    caller: InternalCaller,
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<i64>,
) -> HttpResult {
    set_active(&caller, &req, &state, path.into_inner(), true).await
}

/// Deactivate and activate: the update of `PUT /internal/users/{id}` with only `is_active`.
async fn set_active(
    caller: &InternalCaller,
    req: &HttpRequest,
    state: &AppState,
    target_id: i64,
    is_active: bool,
) -> HttpResult {
    let update = UpdateUser {
        is_active: Some(is_active),
        ..UpdateUser::default()
    };
    update_as_actor(caller, req, state, target_id, update).await
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct RoleChange {
    pub role: String,
}

/// `PUT /internal/users/{id}/role` `{role}`
pub async fn change_role(
    caller: InternalCaller,
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<i64>,
    body: web::Json<RoleChange>,
) -> HttpResult {
    let update = UpdateUser {
        role: Some(body.into_inner().role),
        ..UpdateUser::default()
    };
    update_as_actor(&caller, &req, &state, path.into_inner(), update).await
}

/// `POST /internal/users` `{name, email, role, password?, phone_number?, is_active?,
/// email_verified?}` → 201: an account of any role, customers included (manager only;
/// docs/panels.md "Users"). A customer needs a password (the invitation link is for staff);
/// `is_active: false` creates it deactivated; `email_verified: true` marks the address
/// verified (a staff member typed it). `user.registered` goes out like for a sign-up.
pub async fn create_staff(
    caller: InternalCaller,
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Json<CreateStaff>,
) -> HttpResult {
    let st = state.get_ref();
    // Before validating the body: an unauthorised caller learns nothing about it.
    let actor_id = acting_user(&caller, &req, st).await?;
    let body = body.into_inner();
    let mut v = Validator::new();
    let name = v.check("name", validate::line(&body.name, 100));
    let email = v.check("email", crate::domain::address::normalize(&body.email));
    let phone = v.check(
        "phone_number",
        validate::phone(body.phone_number.as_deref().unwrap_or("")),
    );
    let role = match body.role.trim().parse::<Role>() {
        Ok(r) => Some(r),
        _ => {
            v.error(
                "role",
                "must be one of customer, support_staff, technical_team, manager",
            );
            None
        }
    };
    let password = body.password.as_deref().filter(|p| !p.is_empty());
    if let Some(p) = password {
        v.check("password", check_new_password(p));
    } else if role == Some(Role::Customer) {
        v.error("password", "is required for a customer account");
    }
    v.finish()?;
    let (Some(name), Some(email), Some(phone), Some(role)) = (name, email, phone, role) else {
        return Err(ApiError::bad_request("Invalid request"));
    };
    // No usable password yet: a long random one nobody knows, replaced through the link.
    let invite = password.is_none();
    let initial = match password {
        Some(p) => p.to_owned(),
        None => random_token(32),
    };
    let password_hash = st.hasher.hash(&initial).await?;
    let invite_token = random_token(32);
    let invite_ttl = st.flows.invite_ttl;
    let mut conn = st.platform.pool.get().await?;
    let verified = body.email_verified == Some(true);
    let deactivated = body.is_active == Some(false);
    let (user, deactivation) = conn
        .transaction(async |conn| {
            manager(conn, actor_id, "Only a manager can create accounts").await?;
            let user = insert_registered_in_tx(
                conn,
                &NewUser {
                    name: &name,
                    email: &email,
                    phone_number: phone.as_deref(),
                    password_hash: &password_hash,
                    role: role.as_str(),
                },
                Some(actor_id),
            )
            .await?;
            if invite {
                queries::create_reset_token(
                    conn,
                    user.id,
                    &token_hash(&invite_token),
                    invite_ttl.as_secs_f64(),
                )
                .await?;
            }
            let user = if verified {
                queries::mark_email_verified(conn, user.id).await?
            } else {
                user
            };
            let deactivation = if deactivated {
                deactivate_in_tx(conn, st, user.id, "deactivated").await?
            } else {
                None
            };
            let view = internal_view(conn, user.id).await?;
            Ok::<_, ApiError>((view, deactivation))
        })
        .await?;
    drop(conn);
    if let Some(d) = &deactivation {
        deactivate_locally(st, d);
    }
    if invite {
        let link = super::frontend_link(st, "reset-password", &invite_token);
        let hours = i64::try_from(invite_ttl.as_secs() / 3600)
            .unwrap_or(72)
            .max(1);
        st.mailer.send_in_background(mail::staff_invitation(
            &user.email,
            &user.name,
            &link,
            hours,
        ));
    }
    tracing::info!(user_id = user.id, actor_id, role = %role, "account created by a manager");
    Ok(HttpResponse::Created().json(user))
}

/// `DELETE /internal/users/{id}` (no body): a manager's permanent delete (docs/panels.md
/// "Users: the managers list and permanent delete"): the same anonymisation as
/// `DELETE /api/auth/delete-account` ([`crate::ops::account::erase_in_tx`]). Never oneself
/// (403 `self_change`); the account must be deactivated first (409 `user_active`); unknown or
/// already deleted: 404. Answers `{user_id, deleted_at}`.
pub async fn delete_user(
    caller: InternalCaller,
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<i64>,
) -> HttpResult {
    let st = state.get_ref();
    let actor_id = acting_user(&caller, &req, st).await?;
    let target_id = path.into_inner();
    let mut conn = st.platform.pool.get().await?;
    let erased = conn
        .transaction(async |conn| {
            manager(
                conn,
                actor_id,
                "Only a manager can delete accounts permanently",
            )
            .await?;
            if target_id == actor_id {
                return Err(
                    ApiError::forbidden("You cannot delete your own account from here")
                        .with_code("self_change"),
                );
            }
            let target = live_target(conn, target_id).await?;
            if target.is_active {
                return Err(ApiError::conflict(
                    "user_active",
                    "Deactivate the account before deleting it permanently",
                ));
            }
            erase_in_tx(conn, st, target_id, Some(actor_id)).await
        })
        .await?;
    drop(conn);
    erase_locally(st, &erased);
    tracing::info!(
        user_id = target_id,
        actor_id,
        "account deleted permanently (anonymised)"
    );
    Ok(HttpResponse::Ok().json(DeletedUser {
        user_id: target_id,
        deleted_at: erased.deleted_at,
    }))
}
