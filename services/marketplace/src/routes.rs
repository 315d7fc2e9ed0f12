use serde::Serialize;
use utoipa::ToSchema;
use zimmer_http::{
    route,
    routes::{Caller, DocInfo, Route},
};

use zimmer_events::contracts::internal::{
    automations::{Automation, AutomationInput},
    knowledge::{
        Fallback, FallbackQuery, FallbackStatusChange, KbTemplate, KnowledgeEntry, KnowledgeQuery,
        ListWindow, NewKnowledgeEntry, TemplateInput, TemplateQuery,
    },
    tokens::{AdjustAnswer, AdjustRequest},
};

use crate::{
    handlers::{
        UserAutomationView, catalogue, consume, fallbacks, internal, kb_monitoring, knowledge,
        mine, usage,
    },
    ops::consume::ConsumeAnswer,
    queries::{
        catalogue::CatalogueItem,
        usage::{DayUsage, Share, UsageRecord},
        user_automations::UserAutomationItem,
    },
};

/// Every route of the marketplace.
///
/// Public, as the gateway forwards them (docs/api.md "marketplace", docs/panels.md):
/// - `GET  /api/automations/marketplace` (aliases `/api/automations/available`,
///   `/api/automations`), `GET /api/optimized/automations/marketplace`,
///   `GET /api/automations/{id}`
/// - `GET /api/user/automations`, `GET /api/user/automations/active`,
///   `GET|POST|PUT /api/user/automations/{automation_id}`,
///   `GET /api/user/automations/{automation_id}/usage`
/// - `GET /api/user/usage`, `GET /api/user/usage/distribution`
/// - `POST /api/automation-usage/consume` (vendors, `X-Zimmer-Service-Token`)
/// - `GET /api/automation-usage/knowledge?user_automation_id=` → `{entries, templates}` and
///   `POST /api/automation-usage/fallback` `{user_automation_id, message, error_type?,
///   idempotency_key?}` → 201 `{id}` (vendors, the same token check as consumption)
/// - `GET /api/marketplace/openapi.json` (this service's OpenAPI document, built from [`ROUTES`])
///
/// Internal (never routed by the gateway; `X-Internal-Token` = `INTERNAL_API_TOKEN`), for the
/// admin service. Errors have the usual `{detail, code}` shape.
/// - Automations and their service tokens (types in
///   `zimmer_contracts::internal::automations`, docs/panels.md "Automations and service
///   tokens"): `GET|POST /internal/automations`, `GET|PUT|PATCH|DELETE
///   /internal/automations/{id}` (delete unlists when customers have it),
///   `POST /internal/automations/{id}/service-token` → 201 (shown once; the previous token
///   stops working), `DELETE /internal/automations/{id}/service-token` (consumption then 401)
/// - `POST /internal/automations/{id}/health-check` → `{automation_id, health_status,
///   previous, changed, checked_at}` (409 `no_health_check_url`)
/// - `POST /internal/tokens/adjust` `{user_automation_id, delta, reason, idempotency_key,
///   actor_id}` → 201 `{ledger_id, user_automation_id, delta, tokens_remaining, demo_tokens,
///   reason, actor_id, created_at}`; the same key again → 200, same body,
///   `Idempotent-Replayed: true`; 409 `idempotency_conflict` (key used for another
///   adjustment) or `insufficient_tokens` (below zero); 404 unknown user automation;
///   422 invalid input (or unknown actor). Emits `tokens.adjusted`.
/// - Knowledge base, KB templates, fallback log (types in
///   `zimmer_contracts::internal::knowledge`): `GET|POST /internal/knowledge`,
///   `GET|POST /internal/kb-templates`, `PUT|DELETE /internal/kb-templates/{id}`,
///   `GET /internal/fallbacks`, `PUT /internal/fallbacks/{id}`
/// - KB monitoring (types in `zimmer_contracts::internal::kb_monitoring`):
///   `GET /internal/kb/status?automation_id=` (asks the vendor about every customer, writes
///   `kb_status_history`), `POST /internal/kb/reset/{user_automation_id}`,
///   `GET /internal/kb/history[/stats|/chart-data]`
pub const DOC: DocInfo = DocInfo {
    title: "Zimmer marketplace API",
    description: "The catalogue, customers' automations and usage, the vendors' API \
        (`X-Zimmer-Service-Token`) (docs/api.md \"marketplace\"), and the internal API for admin \
        (tag `internal`, never routed by the gateway). Money is integer Rials. Errors are \
        `{detail, code}`.",
};

/// Every route of the marketplace, in matching order (a literal segment before an id at the
/// same place): this table registers them and documents them (crates/http/src/routes.rs).
pub const ROUTES: &[Route] = &[
    route!(GET "/api/automations" => catalogue::list, "Listed, active automations: `search`, paging (alias of /api/automations/marketplace)")
        .public().ok::<CataloguePage>()
        .query::<catalogue::CatalogueQuery>(),
    route!(GET "/api/automations/marketplace" => catalogue::list, "Listed, active automations: `search`, paging; cached")
        .public().ok::<CataloguePage>()
        .query::<catalogue::CatalogueQuery>(),
    route!(GET "/api/automations/available" => catalogue::list, "Alias of /api/automations/marketplace")
        .public().ok::<CataloguePage>()
        .query::<catalogue::CatalogueQuery>(),
    route!(GET "/api/optimized/automations/marketplace" => catalogue::optimized, "The panel's catalogue: `{automations, total}`")
        .public().ok::<OptimizedCatalogue>()
        .query::<catalogue::CatalogueQuery>(),
    route!(GET "/api/automations/{id}" => catalogue::detail, "One listed automation, unwrapped, with `user_has_automation` for a signed-in caller (`?t=` ignored)")
        .public().ok::<AutomationDetail>(),
    route!(GET "/api/user/automations" => mine::list, "The caller's automations with balances, a bare array")
        .list::<UserAutomationItem>(),
    route!(GET "/api/user/automations/active" => mine::list_active, "The same, status active only")
        .list::<UserAutomationItem>(),
    route!(GET "/api/user/automations/{automation_id}" => mine::get, "One of the caller's automations, by the automation's id: `{user_automation}`")
        .ok::<UserAutomationAnswer>(),
    route!(POST "/api/user/automations/{automation_id}" => mine::add, "Add an automation with its demo tokens; provisioning starts")
        .created::<UserAutomationAnswer>(),
    route!(PUT "/api/user/automations/{automation_id}" => mine::update, "Set the Telegram bot token (`{telegram_bot_token}`); provisioning starts")
        .body::<mine::UpdateBody>().ok::<UserAutomationAnswer>(),
    route!(GET "/api/user/automations/{automation_id}/usage" => usage::history, "Usage records of one automation, paged, `from`/`to`")
        .ok::<UsagePage>()
        .query::<usage::HistoryQuery>(),
    route!(GET "/api/user/usage" => usage::summary, "`range=7d|30d`: `[{day, tokens, sessions}]`; `range=6m|12m`: `[{month, value}]` (MonthUsage)")
        .list::<DayUsage>()
        .query::<usage::RangeQuery>(),
    route!(GET "/api/user/usage/distribution" => usage::distribution, "Tokens per automation: `[{name, value}]`")
        .list::<Share>()
        .query::<usage::RangeQuery>(),
    route!(POST "/api/automation-usage/consume" => consume::consume, "Spend a user automation's tokens (vendor, `X-Zimmer-Service-Token`); once per idempotency key")
        .caller(Caller::Vendor).body::<consume::ConsumeRequest>().ok::<ConsumeAnswer>(),
    route!(GET "/api/automation-usage/knowledge" => knowledge::vendor_read, "The automation's knowledge base (vendor, `X-Zimmer-Service-Token`)")
        .caller(Caller::Vendor).query::<knowledge::VendorQuery>(),
    route!(POST "/api/automation-usage/fallback" => fallbacks::report, "Report a question the automation could not answer (vendor, `X-Zimmer-Service-Token`)")
        .caller(Caller::Vendor).body::<fallbacks::ReportBody>().status(201),
    Route::openapi_document("/api/marketplace/openapi.json"),
    route!(GET "/internal/automations" => internal::list, "Every automation, listed or not, as staff see it"),
    route!(POST "/internal/automations" => internal::create, "Create an automation (201); vendor URLs must not point inside")
        .body::<AutomationInput>().created::<Automation>(),
    route!(GET "/internal/automations/{id}" => internal::get, "One automation"),
    route!(PUT "/internal/automations/{id}" => internal::update, "Edit an automation (absent = unchanged, `null` clears a URL); `is_listed: false` unlists")
        .body::<AutomationInput>().ok::<Automation>(),
    route!(PATCH "/internal/automations/{id}" => internal::update, "Same as PUT").body::<AutomationInput>().ok::<Automation>(),
    route!(DELETE "/internal/automations/{id}" => internal::delete, "Delete when nobody has it, else unlist"),
    route!(POST "/internal/automations/{id}/service-token" => internal::issue_service_token, "Issue a new service token, shown once (201); the previous one stops working"),
    route!(DELETE "/internal/automations/{id}/service-token" => internal::remove_service_token, "Remove the service token"),
    route!(POST "/internal/automations/{id}/health-check" => internal::health_check, "Check the automation's health now"),
    route!(GET "/internal/knowledge" => knowledge::list_entries, "Knowledge base entries").query::<KnowledgeQuery>().query::<ListWindow>(),
    route!(POST "/internal/knowledge" => knowledge::create_entry, "Create a knowledge base entry").body::<NewKnowledgeEntry>().created::<KnowledgeEntry>(),
    route!(GET "/internal/kb-templates" => knowledge::list_templates, "KB templates").query::<TemplateQuery>().query::<ListWindow>(),
    route!(POST "/internal/kb-templates" => knowledge::create_template, "Create a KB template").body::<TemplateInput>().created::<KbTemplate>(),
    route!(PUT "/internal/kb-templates/{id}" => knowledge::replace_template, "Replace a KB template").body::<TemplateInput>().ok::<KbTemplate>(),
    route!(DELETE "/internal/kb-templates/{id}" => knowledge::delete_template, "Delete a KB template"),
    route!(GET "/internal/fallbacks" => fallbacks::list, "The fallback log").query::<FallbackQuery>().query::<ListWindow>(),
    route!(PUT "/internal/fallbacks/{id}" => fallbacks::set_status, "Set a fallback's status").body::<FallbackStatusChange>().ok::<Fallback>(),
    route!(POST "/internal/tokens/adjust" => internal::adjust, "Adjust a balance through the ledger, once per idempotency key; emits `tokens.adjusted`")
        .body::<AdjustRequest>().created::<AdjustAnswer>(),
    route!(GET "/internal/kb/status" => kb_monitoring::status, "KB status of the user automations").query::<kb_monitoring::KbQuery>(),
    route!(POST "/internal/kb/reset/{user_automation_id}" => kb_monitoring::reset, "Reset a user automation's KB"),
    route!(GET "/internal/kb/history" => kb_monitoring::history, "KB check history").query::<kb_monitoring::KbQuery>(),
    route!(GET "/internal/kb/history/stats" => kb_monitoring::stats, "KB history stats").query::<kb_monitoring::KbQuery>(),
    route!(GET "/internal/kb/history/chart-data" => kb_monitoring::chart, "KB history as chart data").query::<kb_monitoring::KbQuery>(),
];

// Shapes the handlers write with `json!` or wrap, described here for the document
// (docs/panels.md "The user panel" reads them; crates/platform-tests checks the panel's fields
// are in them).

/// `GET /api/automations/marketplace` (`Paged`, crates/http/src/paging.rs).
#[derive(Serialize, ToSchema)]
pub struct CataloguePage {
    items: Vec<CatalogueItem>,
    total: i64,
    page: i64,
    page_size: i64,
}

/// `GET /api/optimized/automations/marketplace`.
#[derive(Serialize, ToSchema)]
pub struct OptimizedCatalogue {
    automations: Vec<CatalogueItem>,
    total: i64,
}

/// `GET /api/automations/{id}`: the automation unwrapped, plus whether the caller has it.
#[derive(Serialize, ToSchema)]
pub struct AutomationDetail {
    #[serde(flatten)]
    automation: CatalogueItem,
    user_has_automation: bool,
}

/// `{user_automation}` of `GET|POST|PUT /api/user/automations/{automation_id}`.
#[derive(Serialize, ToSchema)]
pub struct UserAutomationAnswer {
    user_automation: UserAutomationView,
}

/// `GET /api/user/automations/{automation_id}/usage`.
#[derive(Serialize, ToSchema)]
pub struct UsagePage {
    items: Vec<UsageRecord>,
    total: i64,
    page: i64,
    page_size: i64,
}
