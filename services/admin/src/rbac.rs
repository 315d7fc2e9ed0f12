//! Who may do what in the admin API: docs/rbac.md's matrix as [`Capability`] → roles, enforced for
//! every `/api/admin` route by one middleware that looks the route up in the table of
//! `routes.rs` (method + pattern → capability). A route is registered only from that table,
//! so no handler is reachable without its rule. Handlers take the authenticated [`Staff`]
//! member the guard put in the request.

use std::{future::Ready, sync::Arc};

use actix_web::{
    Error, FromRequest, HttpMessage, HttpRequest,
    body::{BoxBody, MessageBody},
    dev::{Payload, ServiceRequest, ServiceResponse},
    middleware::Next,
    web,
};
use zimmer_http::ApiError;
use zimmer_jwt::{AuthState, CurrentUser, Role, bearer_token};

use crate::routes::{AdminRoute, ROUTES};

/// One row of docs/rbac.md, as far as the admin API goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Capability {
    /// "admin dashboard stats" (revenue fields for managers only, decided in the handler).
    DashboardStats,
    /// "analytics: revenue".
    RevenueAnalytics,
    /// "analytics: usage, signups".
    ActivityAnalytics,
    /// "list and view users".
    ViewUsers,
    /// "activate / deactivate customers" for every staff role; role changes and staff
    /// (de)activation additionally need a manager, checked against the target in the handler.
    UpdateUsers,
    /// "create staff, change roles, deactivate staff".
    ManageStaff,
    /// "user automations (view)".
    ViewUserAutomations,
    /// "token adjustments" (making them and reading their history).
    TokenAdjustments,
    /// "automations: create, edit, unlist, service tokens, health checks".
    Automations,
    /// "OpenAI keys".
    OpenAiKeys,
    /// "payments (all users)".
    Payments,
    /// "discount codes".
    Discounts,
    /// "all tickets: view, reply as staff, assign, change status".
    Tickets,
    /// "broadcast notifications".
    Broadcast,
    /// "system status".
    SystemStatus,
    /// "audit log".
    AuditLog,
    /// Backups (list, trigger, verify, cleanup): operations, like system status.
    Backups,
    /// "knowledge base: entries, templates, KB status, reset, history".
    KnowledgeBase,
    /// "fallback log: view, resolve".
    FallbackLog,
    /// The admin API's own OpenAPI document: any staff member (it names no data, but the
    /// admin surface is nobody else's business).
    ApiDocs,
}

use Role::{Manager as M, SupportStaff as S, TechnicalTeam as T};

impl Capability {
    /// The roles allowed (docs/rbac.md). Customers never appear: nothing under /api/admin is theirs.
    pub const fn roles(self) -> &'static [Role] {
        match self {
            Self::DashboardStats
            | Self::ApiDocs
            | Self::ActivityAnalytics
            | Self::ViewUsers
            | Self::UpdateUsers
            | Self::ViewUserAutomations
            | Self::FallbackLog => &[M, T, S],
            Self::TokenAdjustments
            | Self::Automations
            | Self::OpenAiKeys
            | Self::SystemStatus
            | Self::Backups
            | Self::KnowledgeBase => &[M, T],
            Self::Tickets | Self::Broadcast => &[M, S],
            Self::RevenueAnalytics
            | Self::ManageStaff
            | Self::Payments
            | Self::Discounts
            | Self::AuditLog => &[M],
        }
    }
}

/// The rule of a request: its method and matched route pattern in the table.
pub fn rule_for(method: &str, pattern: &str) -> Option<&'static AdminRoute> {
    ROUTES
        .iter()
        .find(|r| r.meta.is_some() && r.method.as_str() == method && r.path == pattern)
}

/// The guard of the `/api/admin` scope: 401 without a valid token, 403 for a role the route's
/// capability does not include; otherwise the caller goes into the request for [`Staff`].
pub async fn guard(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    let pattern = req.match_pattern();
    let Some(rule) = pattern
        .as_deref()
        .and_then(|p| rule_for(req.method().as_str(), p))
    else {
        // No rule means no handler either (routes come from the same table): routing
        // answers 404 without touching anything.
        return next
            .call(req)
            .await
            .map(ServiceResponse::map_into_boxed_body);
    };
    match authorise(req.request(), rule).await {
        Ok(user) => {
            req.extensions_mut().insert(Arc::new(user));
            next.call(req)
                .await
                .map(ServiceResponse::map_into_boxed_body)
        }
        Err(e) => Ok(req.error_response(e).map_into_boxed_body()),
    }
}

async fn authorise(req: &HttpRequest, rule: &AdminRoute) -> Result<CurrentUser, ApiError> {
    let state = req
        .app_data::<web::Data<AuthState>>()
        .cloned()
        .ok_or_else(|| ApiError::internal(anyhow::anyhow!("AuthState is not registered")))?;
    let token =
        bearer_token(req).ok_or_else(|| ApiError::unauthorized("Authentication required"))?;
    let user = state.authenticate(token).await?;
    user.require_any(rule.meta.map_or(&[][..], Capability::roles))?;
    Ok(user)
}

/// The staff member the guard admitted.
#[derive(Debug, Clone)]
pub struct Staff(pub Arc<CurrentUser>);

impl Staff {
    pub fn id(&self) -> i64 {
        self.0.id
    }
    pub fn role(&self) -> Role {
        self.0.role
    }
    pub fn is_manager(&self) -> bool {
        self.0.role == Role::Manager
    }
}

impl FromRequest for Staff {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        // Only reachable behind the guard; without it this is a wiring bug, and refusing is
        // the safe answer.
        std::future::ready(
            req.extensions()
                .get::<Arc<CurrentUser>>()
                .cloned()
                .map(Staff)
                .ok_or_else(|| ApiError::unauthorized("Authentication required")),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_capability_admits_customers_and_managers_have_all() {
        for r in ROUTES {
            let Some(capability) = r.meta else { continue };
            let roles = capability.roles();
            assert!(!roles.contains(&Role::Customer), "{} {}", r.method, r.path);
            assert!(roles.contains(&Role::Manager), "{} {}", r.method, r.path);
        }
    }

    #[test]
    fn every_route_is_unique_and_under_api_admin() {
        for (i, r) in ROUTES.iter().enumerate() {
            // Only the internal API (`X-Internal-Token`) is outside the guard.
            let prefix = if r.meta.is_some() {
                "/api/admin/"
            } else {
                "/internal/"
            };
            assert!(r.path.starts_with(prefix), "{}", r.path);
            assert!(
                !ROUTES[..i]
                    .iter()
                    .any(|o| o.method == r.method && o.path == r.path),
                "duplicate {} {}",
                r.method,
                r.path
            );
        }
    }
}
