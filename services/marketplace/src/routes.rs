use actix_web::{HttpResponse, http::StatusCode, web};
use zimmer_http::ApiError;

use crate::{AppState, handlers};

/// The OpenAPI document of the public routes (docs/api.md: each service publishes its own).
const OPENAPI: &str = include_str!("openapi.json");

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
/// - `GET /api/marketplace/openapi.json` (this service's OpenAPI document)
///
/// Internal (never routed by the gateway; `X-Internal-Token` = `INTERNAL_API_TOKEN`), for the
/// admin service. Errors have the usual `{detail, code}` shape.
/// - `GET  /internal/automations` → every automation (listed or not) as staff see it:
///   `[{id, name, description, pricing_type, price_per_token, demo_tokens, status, is_listed,
///   health_status, last_health_at, provision_url, health_check_url, has_service_token,
///   created_at, updated_at}]`
/// - `POST /internal/automations` `{name, price_per_token, description?, pricing_type?,
///   demo_tokens?, status?, is_listed?, provision_url?, health_check_url?}` → 201 automation
/// - `GET  /internal/automations/{id}` → automation
/// - `PUT|PATCH /internal/automations/{id}` same fields, all optional (absent = unchanged,
///   `null` clears a URL) → automation; `is_listed: false` unlists
/// - `DELETE /internal/automations/{id}` → `{deleted: true}` when nobody has it, else it is
///   unlisted: `{deleted: false, unlisted: true, automation}`
/// - `POST /internal/automations/{id}/service-token` → 201 `{automation_id, service_token}`
///   (shown this once; the previous token stops working)
/// - `POST /internal/automations/{id}/health-check` → `{automation_id, health_status,
///   previous, changed, checked_at}` (409 `no_health_check_url`)
/// - `POST /internal/tokens/adjust` `{user_automation_id, delta, reason, idempotency_key,
///   actor_id}` → 201 `{ledger_id, user_automation_id, delta, tokens_remaining, demo_tokens,
///   reason, actor_id, created_at}`; the same key again → 200, same body,
///   `Idempotent-Replayed: true`; 409 `idempotency_conflict` (key used for another
///   adjustment) or `insufficient_tokens` (below zero); 404 unknown user automation;
///   422 invalid input (or unknown actor). Emits `tokens.adjusted`.
pub fn configure(cfg: &mut web::ServiceConfig, state: AppState) {
    use handlers::{catalogue, consume, internal, mine, usage};
    cfg.app_data(web::Data::new(state))
        // catalogue
        .service(resource("/api/automations").route(web::get().to(catalogue::list)))
        .service(resource("/api/automations/marketplace").route(web::get().to(catalogue::list)))
        .service(resource("/api/automations/available").route(web::get().to(catalogue::list)))
        .service(
            resource("/api/optimized/automations/marketplace")
                .route(web::get().to(catalogue::optimized)),
        )
        .service(resource("/api/automations/{id}").route(web::get().to(catalogue::detail)))
        // a customer's automations ("/active" before "/{automation_id}")
        .service(resource("/api/user/automations").route(web::get().to(mine::list)))
        .service(resource("/api/user/automations/active").route(web::get().to(mine::list_active)))
        .service(
            resource("/api/user/automations/{automation_id}")
                .route(web::get().to(mine::get))
                .route(web::post().to(mine::add))
                .route(web::put().to(mine::update)),
        )
        .service(
            resource("/api/user/automations/{automation_id}/usage")
                .route(web::get().to(usage::history)),
        )
        .service(resource("/api/user/usage").route(web::get().to(usage::summary)))
        .service(resource("/api/user/usage/distribution").route(web::get().to(usage::distribution)))
        // vendors
        .service(resource("/api/automation-usage/consume").route(web::post().to(consume::consume)))
        .service(
            resource("/api/marketplace/openapi.json").route(web::get().to(|| async {
                HttpResponse::Ok()
                    .content_type("application/json")
                    .body(OPENAPI)
            })),
        )
        // internal (admin)
        .service(
            resource("/internal/automations")
                .route(web::get().to(internal::list))
                .route(web::post().to(internal::create)),
        )
        .service(
            resource("/internal/automations/{id}")
                .route(web::get().to(internal::get))
                .route(web::put().to(internal::update))
                .route(web::patch().to(internal::update))
                .route(web::delete().to(internal::delete)),
        )
        .service(
            resource("/internal/automations/{id}/service-token")
                .route(web::post().to(internal::issue_service_token)),
        )
        .service(
            resource("/internal/automations/{id}/health-check")
                .route(web::post().to(internal::health_check)),
        )
        .service(resource("/internal/tokens/adjust").route(web::post().to(internal::adjust)));
}

/// A path whose other methods answer a JSON 405.
fn resource(path: &str) -> actix_web::Resource {
    web::resource(path).default_service(web::to(|| async {
        Err::<HttpResponse, _>(ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "Method not allowed",
        ))
    }))
}
