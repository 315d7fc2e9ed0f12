//! Every `/api/admin` route in ONE table: method, path, the docs/rbac.md capability it needs, and
//! its handler. The table both registers the routes and feeds the guard (`rbac.rs`), so a
//! route cannot exist without its rule. The internal API other services call is listed below
//! the table.

use actix_web::{http::Method, middleware::from_fn, web};

use crate::{
    AppState,
    handlers::{
        audit, automations, backups, broadcast, dashboard, discounts, keys, openapi, payments,
        system, tickets, tokens, user_automations, users,
    },
    rbac::{Capability, guard},
};

/// One admin route and who may call it.
#[derive(Debug, Clone, Copy)]
pub struct AdminRoute {
    pub method: &'static str,
    /// The full actix pattern, as `HttpRequest::match_pattern` reports it.
    pub path: &'static str,
    pub capability: Capability,
    /// One line for the OpenAPI document.
    pub summary: &'static str,
}

macro_rules! admin_routes {
    ($($method:ident $path:literal => $cap:ident, $handler:path, $summary:literal;)*) => {
        /// Every admin route (the acceptance test walks them all for every role).
        pub const ROUTES: &[AdminRoute] = &[$(AdminRoute {
            method: stringify!($method),
            path: concat!("/api/admin", $path),
            capability: Capability::$cap,
            summary: $summary,
        },)*];

        fn register(cfg: &mut web::ServiceConfig) {
            $(cfg.route($path, web::method(Method::$method).to($handler));)*
        }
    };
}

admin_routes! {
    GET "/openapi.json"                    => ApiDocs, openapi::document,
        "This document (OpenAPI 3.1), generated from this table";
    GET "/dashboard/stats"                 => DashboardStats, dashboard::stats,
        "Dashboard stats: users, revenue (managers only), payments by status, automations, tokens consumed, open tickets; cached briefly";
    GET "/dashboard"                       => DashboardStats, dashboard::summary,
        "The admin dashboard's cards: `{status, data: {total_users, total_automations, total_tickets (active), all_tickets, system_status}}`";
    GET "/usage/stats"                     => ActivityAnalytics, dashboard::usage_stats,
        "Tokens consumed (ever, today, 30 days), users, active automations";
    GET "/analytics/revenue"               => RevenueAnalytics, dashboard::revenue,
        "Rials received per UTC day (`days`, 1-366, default 30)";
    GET "/analytics/usage"                 => ActivityAnalytics, dashboard::usage,
        "Tokens consumed per UTC day (`days`)";
    GET "/analytics/signups"               => ActivityAnalytics, dashboard::signups,
        "Accounts created per UTC day (`days`)";
    GET "/users"                           => ViewUsers, users::list,
        "Users: `search` (email, name, phone), `role`, `is_active`, paging";
    POST "/users"                          => ManageStaff, users::create_staff,
        "Create a staff account `{name, email, role, password?, phone_number?}` (through auth)";
    GET "/users/managers"                  => ViewUsers, users::managers,
        "Every account (the admin dashboard's list), `{users, items, total, total_count}`: `search`, `role`, `is_active`, `limit` (default 5,000), `offset`";
    POST "/users/managers"                 => ManageStaff, users::create_manager,
        "Create a staff account `{email, name, password, role, is_active}` (through auth)";
    PUT "/users/managers/{id}/role"        => UpdateUsers, users::update_manager,
        "Change `role` and/or `is_active` (the dashboard's edit form; same rules as PUT /users/{id})";
    PUT "/users/managers/{id}"             => UpdateUsers, users::update_manager,
        "Same as PUT /users/managers/{id}/role";
    DELETE "/users/managers/{id}"          => UpdateUsers, users::deactivate_manager,
        "Deactivate an account (same rules as `is_active: false`)";
    GET "/users/{id}"                      => ViewUsers, users::get,
        "A user with their automations, payment and ticket counters";
    PUT "/users/{id}"                      => UpdateUsers, users::update,
        "Change `role` and/or `is_active` (through auth; the user's sessions are revoked)";
    PATCH "/users/{id}"                    => UpdateUsers, users::update,
        "Same as PUT";
    GET "/user-automations"                => ViewUserAutomations, user_automations::list,
        "Customers' automations: `user_id`, `automation_id`, `status`, `integration_status`, paging";
    POST "/tokens/adjust"                  => TokenAdjustments, tokens::adjust,
        "Adjust a balance `{user_automation_id, delta (or delta_tokens), reason, idempotency_key?}` through the marketplace ledger; once per key (without one, each call is one adjustment)";
    GET "/tokens/history"                  => TokenAdjustments, tokens::history,
        "Token adjustments, newest first: `user_automation_id`, `user_id`, `actor_id`, paging";
    GET "/tokens/adjustments"              => TokenAdjustments, tokens::adjustments,
        "Token adjustments as the admin dashboard reads them (`items` and `adjustments`): `user_id`, `automation_id`, `admin_id`, `start_date`, `end_date`, paging";
    GET "/automations"                     => Automations, automations::list,
        "Every automation, listed or not: `search`, `status`, `is_listed`, `health_status`, paging";
    POST "/automations"                    => Automations, automations::create,
        "Create an automation (through the marketplace)";
    GET "/automations/{id}"                => Automations, automations::get,
        "One automation with its customer count";
    PUT "/automations/{id}"                => Automations, automations::update,
        "Edit an automation; `is_listed: false` unlists (through the marketplace)";
    DELETE "/automations/{id}"             => Automations, automations::delete,
        "Delete when no customer has it, else unlist";
    POST "/automations/{id}/service-token" => Automations, automations::issue_token,
        "Issue a new service token, shown once";
    POST "/automations/{id}/generate-service-token" => Automations, automations::generate_service_token,
        "Issue a new service token, shown once: `{service_token, automation_id, message}`";
    POST "/automations/{id}/rotate-token"  => Automations, automations::rotate_token,
        "Issue a new service token, shown once: `{new_token, masked_token, automation_id, rotated_at, message}`";
    POST "/automations/{id}/health-check"  => Automations, automations::health_check,
        "Check the automation's health now";
    GET "/payments"                        => Payments, payments::list,
        "All payments: `status`, `user_id`, `automation_id`, `from`, `to`, paging";
    GET "/payments/{id}"                   => Payments, payments::get,
        "One payment with its discount redemption";
    POST "/payments/{id}/reconcile"        => Payments, payments::reconcile,
        "Ask Zarinpal about this payment now (through billing)";
    GET "/discounts"                       => Discounts, discounts::list,
        "Discount codes with redemption counts: `search`, `active`, paging (through billing)";
    POST "/discounts"                      => Discounts, discounts::create,
        "Create a code `{code, percent_off, active?, starts_at?, ends_at?, max_redemptions?, per_user_limit?, automation_id?}`";
    GET "/discounts/{id}"                  => Discounts, discounts::get,
        "One discount code";
    PUT "/discounts/{id}"                  => Discounts, discounts::update,
        "Edit a code (partial; `null` clears)";
    DELETE "/discounts/{id}"               => Discounts, discounts::delete,
        "Delete an unused code, deactivate a used one";
    GET "/discounts/{id}/redemptions"      => Discounts, discounts::redemptions,
        "A code's redemptions, paged";
    GET "/tickets"                         => Tickets, tickets::list,
        "All tickets: `status`, `priority`, `assigned_to` (id or `none`), `user_id`, `search`, paging";
    GET "/tickets/{id}"                    => Tickets, tickets::get,
        "A ticket with its whole thread";
    PUT "/tickets/{id}"                    => Tickets, tickets::update,
        "Change `status`, `priority`, `importance`, `assigned_to` or add a `message` (through support)";
    POST "/tickets/{id}/messages"          => Tickets, tickets::reply,
        "Reply as staff `{message}` (through support)";
    GET "/openai-keys"                     => OpenAiKeys, keys::list,
        "OpenAI keys (masked tail only), status and daily limits";
    POST "/openai-keys"                    => OpenAiKeys, keys::create,
        "Store a key `{alias, key, status?, daily_limit?}` encrypted";
    GET "/openai-keys/{id}"                => OpenAiKeys, keys::get,
        "One key (masked)";
    PUT "/openai-keys/{id}"                => OpenAiKeys, keys::update,
        "Rename, change status or daily limit, or rotate the key";
    PATCH "/openai-keys/{id}"              => OpenAiKeys, keys::update,
        "Same as PUT";
    DELETE "/openai-keys/{id}"             => OpenAiKeys, keys::delete,
        "Delete a key";
    POST "/notifications/broadcast"        => Broadcast, broadcast::send,
        "Notify every user (or one `role`) `{title, body, role?}`";
    GET "/system/status"                   => SystemStatus, system::status,
        "Readiness of each service, database, Redis, broker queue depths, outbox backlog";
    GET "/backups"                         => Backups, backups::list,
        "Finished backup runs, newest first, a bare array: `status_filter` (success, failed), `from_date`, `to_date`, `limit`, `page`";
    GET "/backups/stats"                   => Backups, backups::stats,
        "Backup counts (total, successful, failed, verified), the last successful one, total size";
    POST "/backups/trigger"                => Backups, backups::trigger,
        "Make a PostgreSQL backup now and verify it; 409 while another backup job runs, 202 if still running after 50 s";
    POST "/backups/verify/{id}"            => Backups, backups::verify,
        "Verify a backup: checksum, `pg_restore --list`, and a restore into the scratch database when configured";
    DELETE "/backups/cleanup"              => Backups, backups::cleanup,
        "Remove backups older than `retention_days` (1-365), never the newest successful one";
    GET "/audit-log"                       => AuditLog, audit::list,
        "Who did what to whom: `actor_id`, `action`, `target_type`, `target_id`, `from`, `to`, paging";
}

pub fn configure(cfg: &mut web::ServiceConfig, state: AppState) {
    cfg.app_data(web::Data::new(state)).service(
        web::scope("/api/admin")
            .wrap(from_fn(guard))
            .configure(register),
    );
}
