//! Every `/api/admin` route in ONE table: method, path, the docs/rbac.md capability it needs, and
//! its handler. The table both registers the routes and feeds the guard (`rbac.rs`), so a
//! route cannot exist without its rule; and it builds the OpenAPI document
//! (crates/http/src/routes.rs). The internal API other services call is in the table too,
//! without a capability (registered outside the guarded scope).

use actix_web::{middleware::from_fn, web};
use serde_json::json;
use utoipa::{ToSchema, openapi::extensions::Extensions};
use zimmer_events::contracts::internal::openai::{LeaseGrant, LeaseRequest};
use zimmer_http::{
    route,
    routes::{self, Caller, DocInfo, Route, RouteMeta},
};

use crate::{
    AppState,
    handlers::{
        PageOnly, Paging, audit, automations, backups, broadcast, dashboard, discounts, keys,
        payments, system, tickets, tokens, user_automations, users,
    },
    rbac::{Capability, guard},
};

/// One admin route: who may call it is its meta, the docs/rbac.md capability it needs
/// (`None`: outside the staff guard, the internal API with `X-Internal-Token`).
pub type AdminRoute = Route<Option<Capability>>;

/// The document names each operation's roles in `x-roles`.
impl RouteMeta for Capability {
    fn document(&self, extensions: &mut Extensions) {
        let roles: Vec<&str> = self.roles().iter().map(|r| r.as_str()).collect();
        extensions.insert("x-roles".into(), json!(roles));
    }
}

pub const DOC: DocInfo = DocInfo {
    title: "Zimmer admin API",
    description: "Everything under /api/admin for managers, the technical team and support staff \
        (docs/rbac.md; each operation names its roles in `x-roles`), and admin's internal API \
        (tag `internal`, never routed by the gateway). Lists take `page` (from 1) and \
        `page_size` (default 20, max 100) and answer `{items, total, page, page_size}`. Money is \
        integer Rials. Errors are `{detail, code}` (422 adds `errors: [{field, message}]`).",
};

/// Every admin route (the acceptance test walks them all for every role), in matching order.
pub const ROUTES: &[AdminRoute] = &[
    Route::openapi_document("/api/admin/openapi.json")
        .caller(Caller::User)
        .meta(Some(Capability::ApiDocs)),
    route!(GET "/api/admin/dashboard/stats" => dashboard::stats, "Dashboard stats: users, revenue (managers only), payments by status, automations, tokens consumed, open tickets; cached briefly")
        .meta(Some(Capability::DashboardStats)),
    route!(GET "/api/admin/dashboard" => dashboard::summary, "The admin dashboard's cards: `{status, data: {total_users, total_automations, total_tickets (active), all_tickets, system_status}}`")
        .meta(Some(Capability::DashboardStats)),
    route!(GET "/api/admin/usage/stats" => dashboard::usage_stats, "Tokens consumed (ever, today, 30 days), users, active automations")
        .meta(Some(Capability::ActivityAnalytics)),
    route!(GET "/api/admin/analytics/revenue" => dashboard::revenue, "Rials received per UTC day (`days`, 1-366, default 30)")
        .meta(Some(Capability::RevenueAnalytics))
        .query::<dashboard::SeriesQuery>(),
    route!(GET "/api/admin/analytics/usage" => dashboard::usage, "Tokens consumed per UTC day (`days`)")
        .meta(Some(Capability::ActivityAnalytics))
        .query::<dashboard::SeriesQuery>(),
    route!(GET "/api/admin/analytics/signups" => dashboard::signups, "Accounts created per UTC day (`days`)")
        .meta(Some(Capability::ActivityAnalytics))
        .query::<dashboard::SeriesQuery>(),
    route!(GET "/api/admin/users" => users::list, "Users: `search` (email, name, phone), `role`, `is_active`, paging")
        .meta(Some(Capability::ViewUsers))
        .query::<users::ListQuery>().query::<Paging>(),
    route!(POST "/api/admin/users" => users::create_staff, "Create a staff account `{name, email, role, password?, phone_number?}` (through auth)")
        .meta(Some(Capability::ManageStaff))
        .body::<users::CreateStaffBody>(),
    route!(GET "/api/admin/users/managers" => users::managers, "Every account (the admin dashboard's list), `{users, items, total, total_count}`: `search`, `role`, `is_active`, `limit` (default 5,000), `offset`")
        .meta(Some(Capability::ViewUsers))
        .query::<users::ListQuery>().query::<Paging>(),
    route!(POST "/api/admin/users/managers" => users::create_manager, "Create an account of any role, customers included `{email, name, password, role, is_active}` (through auth; email verified)")
        .meta(Some(Capability::ManageStaff))
        .body::<users::ManagerCreateBody>(),
    route!(PUT "/api/admin/users/managers/{id}/role" => users::update_manager, "Change `role`, `is_active` and/or `name` (the dashboard's edit form; same rules as PUT /users/{id})")
        .meta(Some(Capability::UpdateUsers))
        .body::<users::UpdateBody>(),
    route!(PUT "/api/admin/users/managers/{id}" => users::update_manager, "Same as PUT /users/managers/{id}/role")
        .meta(Some(Capability::UpdateUsers))
        .body::<users::UpdateBody>(),
    route!(DELETE "/api/admin/users/managers/{id}" => users::deactivate_manager, "Deactivate an account (same rules as `is_active: false`)")
        .meta(Some(Capability::UpdateUsers)),
    route!(DELETE "/api/admin/users/managers/{id}/permanent" => users::delete_permanent, "Delete (anonymise) a deactivated account permanently (through auth; never oneself; 409 while active)")
        .meta(Some(Capability::ManageStaff)),
    route!(GET "/api/admin/users/{id}" => users::get, "A user with their automations, payment and ticket counters")
        .meta(Some(Capability::ViewUsers)),
    route!(PUT "/api/admin/users/{id}" => users::update, "Change `role`, `is_active` and/or `name` (through auth; a role change or deactivation revokes the user's sessions)")
        .meta(Some(Capability::UpdateUsers))
        .body::<users::UpdateBody>(),
    route!(PATCH "/api/admin/users/{id}" => users::update, "Same as PUT")
        .meta(Some(Capability::UpdateUsers))
        .body::<users::UpdateBody>(),
    route!(GET "/api/admin/user-automations" => user_automations::list, "Customers' automations: `user_id`, `automation_id`, `status`, `integration_status`, paging")
        .meta(Some(Capability::ViewUserAutomations))
        .query::<user_automations::ListQuery>().query::<Paging>(),
    route!(POST "/api/admin/tokens/adjust" => tokens::adjust, "Adjust a balance `{user_automation_id, delta (or delta_tokens), reason, idempotency_key?}` through the marketplace ledger; once per key (without one, each call is one adjustment)")
        .meta(Some(Capability::TokenAdjustments))
        .body::<tokens::AdjustBody>(),
    route!(GET "/api/admin/tokens/history" => tokens::history, "Token adjustments, newest first: `user_automation_id`, `user_id`, `actor_id`, paging")
        .meta(Some(Capability::TokenAdjustments))
        .query::<tokens::HistoryQuery>().query::<PageOnly>(),
    route!(GET "/api/admin/tokens/adjustments" => tokens::adjustments, "Token adjustments as the admin dashboard reads them (`items` and `adjustments`): `user_id`, `automation_id`, `admin_id`, `start_date`, `end_date`, paging")
        .meta(Some(Capability::TokenAdjustments))
        .query::<tokens::AdjustmentsQuery>().query::<Paging>(),
    route!(GET "/api/admin/automations" => automations::list, "Every automation, listed or not: `search`, `status`, `is_listed`, `health_status`, paging")
        .meta(Some(Capability::Automations))
        .query::<automations::ListQuery>().query::<Paging>(),
    route!(POST "/api/admin/automations" => automations::create, "Create an automation (through the marketplace): the dashboard's form or wizard (`status` boolean, vendor URLs, `service_token` of 32-256 characters, 409 if in use)")
        .meta(Some(Capability::Automations))
        .body::<DashboardAutomation>(),
    route!(POST "/api/admin/automations/generate-token" => automations::generate_token, "The wizard's service token `{password}` (the caller's own, re-checked by auth; wrong → 403) → `{token, message, warning}`; nothing stored")
        .meta(Some(Capability::Automations))
        .optional_body::<automations::GenerateTokenBody>(),
    route!(GET "/api/admin/automations/{id}" => automations::get, "One automation with its customer count")
        .meta(Some(Capability::Automations)),
    route!(PUT "/api/admin/automations/{id}" => automations::update, "Edit an automation; `is_listed: false` unlists (through the marketplace)")
        .meta(Some(Capability::Automations))
        .body::<DashboardAutomation>(),
    route!(DELETE "/api/admin/automations/{id}" => automations::delete, "Delete when no customer has it, else unlist")
        .meta(Some(Capability::Automations)),
    route!(POST "/api/admin/automations/{id}/service-token" => automations::issue_token, "Issue a new service token, shown once")
        .meta(Some(Capability::Automations)),
    route!(DELETE "/api/admin/automations/{id}/service-token" => automations::remove_service_token, "Remove the service token (\"disconnect\"): calls with it answer 401; stays listed → `{message, automation_id}`")
        .meta(Some(Capability::Automations)),
    route!(POST "/api/admin/automations/{id}/generate-service-token" => automations::generate_service_token, "Issue a new service token, shown once: `{service_token, automation_id, message}`")
        .meta(Some(Capability::Automations)),
    route!(POST "/api/admin/automations/{id}/rotate-token" => automations::rotate_token, "Issue a new service token, shown once: `{new_token, masked_token, automation_id, rotated_at, message}`")
        .meta(Some(Capability::Automations)),
    route!(POST "/api/admin/automations/{id}/health-check" => automations::health_check, "Check the automation's health now")
        .meta(Some(Capability::Automations)),
    route!(GET "/api/admin/payments" => payments::list, "All payments: `status`, `user_id`, `automation_id`, `from`, `to`, paging")
        .meta(Some(Capability::Payments))
        .query::<payments::ListQuery>().query::<Paging>(),
    route!(GET "/api/admin/payments/{id}" => payments::get, "One payment with its discount redemption")
        .meta(Some(Capability::Payments)),
    route!(POST "/api/admin/payments/{id}/reconcile" => payments::reconcile, "Ask Zarinpal about this payment now (through billing)")
        .meta(Some(Capability::Payments)),
    route!(GET "/api/admin/discounts" => discounts::list, "Discount codes with redemption counts: `search`, `active`, paging (through billing)")
        .meta(Some(Capability::Discounts))
        .query::<discounts::ListQuery>().query::<PageOnly>(),
    route!(POST "/api/admin/discounts" => discounts::create, "Create a code `{code, percent_off, active?, starts_at?, ends_at?, max_redemptions?, per_user_limit?, automation_ids?, description?}` (`automation_ids` a set, empty = every automation)")
        .meta(Some(Capability::Discounts))
        .body::<DashboardDiscount>(),
    route!(GET "/api/admin/discounts/{id}" => discounts::get, "One discount code")
        .meta(Some(Capability::Discounts)),
    route!(PUT "/api/admin/discounts/{id}" => discounts::update, "Edit a code (partial, in either vocabulary: `discount_value`, `is_active`, `valid_from`, `valid_until`, `max_uses`, `description`; `null` clears; another code's `code` is 409)")
        .meta(Some(Capability::Discounts))
        .body::<DashboardDiscount>(),
    route!(DELETE "/api/admin/discounts/{id}" => discounts::delete, "Delete an unused code, deactivate a used one")
        .meta(Some(Capability::Discounts)),
    route!(GET "/api/admin/discounts/{id}/redemptions" => discounts::redemptions, "A code's redemptions, newest first, as a bare array with `code`, `automation_id` and `status`")
        .meta(Some(Capability::Discounts))
        .query::<PageOnly>(),
    route!(GET "/api/admin/tickets" => tickets::list, "All tickets: `status`, `priority`, `assigned_to` (id or `none`), `user_id`, `search`, paging")
        .meta(Some(Capability::Tickets))
        .query::<tickets::ListQuery>().query::<Paging>(),
    route!(GET "/api/admin/tickets/{id}" => tickets::get, "A ticket with its whole thread")
        .meta(Some(Capability::Tickets)),
    route!(PUT "/api/admin/tickets/{id}" => tickets::update, "Change `status`, `priority`, `importance`, `assigned_to` or add a `message` (through support)")
        .meta(Some(Capability::Tickets))
        .body::<TicketChange>(),
    route!(POST "/api/admin/tickets/{id}/messages" => tickets::reply, "Reply as staff `{message}` (through support)")
        .meta(Some(Capability::Tickets))
        .body::<tickets::ReplyBody>(),
    route!(GET "/api/admin/openai-keys" => keys::list, "OpenAI keys (masked tail only), status and daily limits")
        .meta(Some(Capability::OpenAiKeys))
        .query::<keys::ListQuery>(),
    route!(POST "/api/admin/openai-keys" => keys::create, "Store a key `{alias, key, status?, daily_limit?}` encrypted")
        .meta(Some(Capability::OpenAiKeys))
        .body::<keys::CreateBody>(),
    route!(GET "/api/admin/openai-keys/{id}" => keys::get, "One key (masked)")
        .meta(Some(Capability::OpenAiKeys)),
    route!(PUT "/api/admin/openai-keys/{id}" => keys::update, "Rename, change status or daily limit, or rotate the key")
        .meta(Some(Capability::OpenAiKeys))
        .body::<keys::UpdateBody>(),
    route!(PATCH "/api/admin/openai-keys/{id}" => keys::update, "Same as PUT")
        .meta(Some(Capability::OpenAiKeys))
        .body::<keys::UpdateBody>(),
    route!(DELETE "/api/admin/openai-keys/{id}" => keys::delete, "Delete a key")
        .meta(Some(Capability::OpenAiKeys)),
    route!(POST "/api/admin/openai-keys/{id}/test" => keys::test, "Test a key with one chat completion (`max_tokens: 1`): `{success, latency_ms?, model?, error_message?}`; 401/403 from OpenAI marks it `error`")
        .meta(Some(Capability::OpenAiKeys)),
    route!(GET "/api/admin/list" => keys::list_bare, "OpenAI keys as the dashboard reads them: a bare array; `automation_id`, `status`")
        .meta(Some(Capability::OpenAiKeys))
        .query::<keys::ListQuery>(),
    route!(POST "/api/admin/" => keys::create, "Store a key `{automation_id, alias, api_key, status?, rpm_limit?, daily_token_limit?}` (the dashboard's path)")
        .meta(Some(Capability::OpenAiKeys))
        .body::<keys::CreateBody>(),
    route!(PUT "/api/admin/keys/{id}" => keys::update, "Edit a key `{alias?, rpm_limit?, daily_token_limit?, status?, api_key?}` (`\"\"` keeps the key)")
        .meta(Some(Capability::OpenAiKeys))
        .body::<keys::UpdateBody>(),
    route!(PATCH "/api/admin/keys/{id}/status" => keys::set_status, "Change a key's `status` (active, disabled, exhausted, error)")
        .meta(Some(Capability::OpenAiKeys))
        .body::<keys::StatusBody>(),
    route!(DELETE "/api/admin/keys/{id}" => keys::delete, "Delete a key (the dashboard's path)")
        .meta(Some(Capability::OpenAiKeys)),
    route!(POST "/api/admin/keys/{id}/test" => keys::test, "Test a key (the dashboard's path; see /openai-keys/{id}/test)")
        .meta(Some(Capability::OpenAiKeys)),
    route!(POST "/api/admin/notifications/broadcast" => broadcast::send, "Notify every active user (or one `role`) `{type, title, body, role?, data?}` → `{created, event_id}`")
        .meta(Some(Capability::Broadcast))
        .body::<broadcast::BroadcastBody>(),
    route!(POST "/api/admin/notifications" => broadcast::send_to_users, "Notify chosen users `{user_ids, type, title, body, data?}` (through support, synchronously) → `{created}`")
        .meta(Some(Capability::Broadcast))
        .body::<broadcast::DirectBody>(),
    route!(GET "/api/admin/system/status" => system::status, "Readiness of each service, database, Redis, broker queue depths, outbox backlog")
        .meta(Some(Capability::SystemStatus)),
    route!(GET "/api/admin/backups" => backups::list, "Finished backup runs, newest first, a bare array: `status_filter` (success, failed), `from_date`, `to_date`, `limit`, `page`")
        .meta(Some(Capability::Backups))
        .query::<backups::ListQuery>(),
    route!(GET "/api/admin/backups/stats" => backups::stats, "Backup counts (total, successful, failed, verified), the last successful one, total size")
        .meta(Some(Capability::Backups)),
    route!(POST "/api/admin/backups/trigger" => backups::trigger, "Make a PostgreSQL backup now and verify it; 409 while another backup job runs, 202 if still running after 50 s")
        .meta(Some(Capability::Backups)),
    route!(POST "/api/admin/backups/verify/{id}" => backups::verify, "Verify a backup: checksum, `pg_restore --list`, and a restore into the scratch database when configured")
        .meta(Some(Capability::Backups)),
    route!(DELETE "/api/admin/backups/cleanup" => backups::cleanup, "Remove backups older than `retention_days` (1-365), never the newest successful one")
        .meta(Some(Capability::Backups))
        .query::<backups::CleanupQuery>(),
    route!(GET "/api/admin/knowledge" => crate::handlers::knowledge::list, "Knowledge base entries, newest first: `client_id`, `category` (case-insensitive, anywhere), paging; `{knowledge_entries, total, total_count}` (through the marketplace)")
        .meta(Some(Capability::KnowledgeBase))
        .query::<crate::handlers::knowledge::EntryQuery>().query::<Paging>(),
    route!(POST "/api/admin/knowledge" => crate::handlers::knowledge::create, "Write an entry for a customer `{client_id, category, answer}` (through the marketplace) → 201")
        .meta(Some(Capability::KnowledgeBase))
        .body::<KnowledgeForm>(),
    route!(GET "/api/admin/kb-templates" => crate::handlers::knowledge::list_templates, "KB templates, newest first: `automation_id`, `category`, paging; `{templates, total, total_count}`")
        .meta(Some(Capability::KnowledgeBase))
        .query::<crate::handlers::knowledge::TemplateQuery>().query::<Paging>(),
    route!(POST "/api/admin/kb-templates" => crate::handlers::knowledge::create_template, "Create a template `{automation_id, category, question, answer}` (`category` \"\" = none) → 201")
        .meta(Some(Capability::KnowledgeBase))
        .body::<KbTemplateForm>(),
    route!(PUT "/api/admin/kb-templates/{id}" => crate::handlers::knowledge::update_template, "Replace a template's four fields")
        .meta(Some(Capability::KnowledgeBase))
        .body::<KbTemplateForm>(),
    route!(DELETE "/api/admin/kb-templates/{id}" => crate::handlers::knowledge::delete_template, "Delete a template → 204")
        .meta(Some(Capability::KnowledgeBase)),
    route!(GET "/api/admin/fallbacks" => crate::handlers::fallbacks::list, "Messages vendors could not answer, newest first: `client_id`, paging; `{fallbacks, total, total_count}`")
        .meta(Some(Capability::FallbackLog))
        .query::<crate::handlers::fallbacks::ListQuery>().query::<Paging>(),
    route!(PUT "/api/admin/fallbacks/{id}" => crate::handlers::fallbacks::update, "Resolve or reopen a fallback `{status}` (resolved, open) through the marketplace")
        .meta(Some(Capability::FallbackLog))
        .body::<crate::handlers::fallbacks::StatusBody>(),
    route!(GET "/api/admin/kb-status" => crate::handlers::kb_monitoring::status, "KB state of every customer of `automation_id`, asked from its vendor now (each answer kept in the KB history); remembers the rows for kb-reset")
        .meta(Some(Capability::KnowledgeBase))
        .query::<crate::handlers::kb_monitoring::KbQuery>(),
    route!(POST "/api/admin/kb-reset/{id}" => crate::handlers::kb_monitoring::reset_by_position, "Reset the KB of the customer in row `{id}` (1-based) of the KB status list this staff member last loaded (15 min); 409 without one")
        .meta(Some(Capability::KnowledgeBase)),
    route!(POST "/api/admin/user-automations/{id}/kb-reset" => crate::handlers::kb_monitoring::reset_user_automation, "Reset one user automation's KB through its vendor: `{message, user_automation_id, automation_name, reset_status}`")
        .meta(Some(Capability::KnowledgeBase)),
    route!(GET "/api/admin/kb-history" => crate::handlers::kb_monitoring::history, "KB status history, newest first, a bare array: `automation_id`, `user_id`, `from_date`, `to_date` (YYYY-MM-DD), `page`, `limit` (1-100, default 50)")
        .meta(Some(Capability::KnowledgeBase))
        .query::<crate::handlers::kb_monitoring::KbQuery>(),
    route!(GET "/api/admin/kb-history/stats" => crate::handlers::kb_monitoring::stats, "KB history counts: `{total_records, healthy_count, warning_count, problematic_count, backup_count}`")
        .meta(Some(Capability::KnowledgeBase))
        .query::<crate::handlers::kb_monitoring::KbQuery>(),
    route!(GET "/api/admin/kb-history/chart-data" => crate::handlers::kb_monitoring::chart, "KB history per UTC day (`days` 1-30, default 7), zero-filled: `{chart_data, date_range}`")
        .meta(Some(Capability::KnowledgeBase))
        .query::<crate::handlers::kb_monitoring::KbQuery>(),
    route!(GET "/api/admin/audit-log" => audit::list, "Who did what to whom: `actor_id`, `action`, `target_type`, `target_id`, `from`, `to`, paging")
        .meta(Some(Capability::AuditLog))
        .query::<audit::ListQuery>().query::<PageOnly>(),
    route!(POST "/internal/openai-keys/lease" => keys::lease, "`{automation_id, tokens}` → the key for one OpenAI request, counted (docs/panels.md \"Counted when used\")")
        .meta(None)
        .body::<LeaseRequest>().ok::<LeaseGrant>(),
];

pub fn configure(cfg: &mut web::ServiceConfig, state: AppState) {
    cfg.app_data(web::Data::new(state));
    // The internal API, outside the staff guard (each handler takes `InternalCaller`).
    routes::register_outside(cfg, "/api/admin/", DOC, ROUTES);
    cfg.service(
        web::scope("/api/admin")
            .wrap(from_fn(guard))
            .configure(|c| routes::register_under(c, "/api/admin", DOC, ROUTES)),
    );
}

// The request bodies the handlers read as loose JSON objects (the admin dashboard's forms,
// several spellings accepted), described for the document only: each says what its handler
// (or the `domain` function it calls) accepts.

/// `POST` / `PUT /api/admin/automations(/{id})`, read by `domain::automations::
/// input_from_dashboard`: on create `name` and `price_per_token` are required; on update every
/// field is optional (absent = unchanged; for a URL `null` or `""` clears it).
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct DashboardAutomation {
    name: Option<String>,
    /// `""` or `null`: no description.
    description: Option<String>,
    /// `token_per_session`, `token_per_step` (also `token_per_message`) or `flat_fee`.
    pricing_type: Option<String>,
    /// Whole Rials.
    price_per_token: Option<i64>,
    demo_tokens: Option<i64>,
    /// `true` / `false` (the dashboard's switch, also as strings) or `active` / `inactive`.
    #[schema(value_type = Option<String>)]
    status: Option<serde_json::Value>,
    is_listed: Option<bool>,
    provision_url: Option<String>,
    /// The dashboard's name of `provision_url` (used when `provision_url` is absent).
    api_provision_url: Option<String>,
    health_check_url: Option<String>,
    api_base_url: Option<String>,
    api_usage_url: Option<String>,
    api_kb_status_url: Option<String>,
    api_kb_reset_url: Option<String>,
    dashboard_url: Option<String>,
    /// Create only: a token chosen by the wizard (32-256 visible ASCII characters); ignored on
    /// update.
    service_token: Option<String>,
}

/// `POST` / `PUT /api/admin/discounts(/{id})`: billing's fields, or the dashboard's names for
/// them (`discount_value` = `percent_off`, `is_active` = `active`, `valid_from` = `starts_at`,
/// `valid_until` = `ends_at`, `max_uses` = `max_redemptions`). On create `code` and the
/// percentage are required; on update every field is optional and `null` (or `""`) clears a
/// nullable one.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct DashboardDiscount {
    code: Option<String>,
    /// 1-100; also accepted as `discount_value`.
    percent_off: Option<i32>,
    discount_value: Option<i32>,
    /// Absent on create: active; also accepted as `is_active`.
    active: Option<bool>,
    is_active: Option<bool>,
    /// Only `percentage` (or `null`) is accepted.
    discount_type: Option<String>,
    /// Also accepted as `valid_from`.
    starts_at: Option<String>,
    valid_from: Option<String>,
    /// Also accepted as `valid_until`.
    ends_at: Option<String>,
    valid_until: Option<String>,
    /// Also accepted as `max_uses`.
    max_redemptions: Option<i32>,
    max_uses: Option<i32>,
    per_user_limit: Option<i32>,
    /// The automations the code is for; empty = every automation.
    automation_ids: Option<Vec<i64>>,
    /// Older callers: one automation, added to `automation_ids`.
    automation_id: Option<i64>,
    description: Option<String>,
}

/// `PUT /api/admin/tickets/{id}`, relayed to support as the acting staff member: any of these.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct TicketChange {
    status: Option<String>,
    priority: Option<String>,
    importance: Option<String>,
    /// A staff user id, or `null` to unassign.
    assigned_to: Option<i64>,
    /// A reply added with the change.
    message: Option<String>,
}

/// `POST /api/admin/knowledge`.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct KnowledgeForm {
    /// The customer (a positive id, also as a string of digits).
    client_id: i64,
    category: String,
    answer: String,
}

/// `POST /api/admin/kb-templates`, `PUT /api/admin/kb-templates/{id}` (all four fields).
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct KbTemplateForm {
    /// A positive id, also as a string of digits.
    automation_id: i64,
    /// `""` or absent: none.
    category: Option<String>,
    question: String,
    answer: String,
}
