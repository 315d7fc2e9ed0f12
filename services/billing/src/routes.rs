use actix_web::web;

use crate::{AppState, handlers};

/// Every route of billing, as the gateway forwards them (docs/api.md "billing", docs/panels.md).
///
/// Internal API (`X-Internal-Token`, never routed by the gateway; admin calls it):
///
/// | method | path | what |
/// | --- | --- | --- |
/// | GET | /internal/discounts?search=&active=&page=&page_size= | codes, paged, each with its redemption counts |
/// | POST | /internal/discounts | create `{code, percent_off, active?, starts_at?, ends_at?, max_redemptions?, per_user_limit?, automation_id?}` → 201; 409 on a taken code |
/// | GET | /internal/discounts/{id} | one code with `redemptions: {reserved, confirmed, released, over_limit}` |
/// | PUT, PATCH | /internal/discounts/{id} | partial update; `null` clears a nullable field |
/// | DELETE | /internal/discounts/{id} | deletes an unused code, deactivates a used one |
/// | GET | /internal/discounts/{id}/redemptions?page=&page_size= | its redemptions, paged |
/// | GET | /internal/payments?status=&user_id=&automation_id=&from=&to=&page=&page_size=&order= | all payments, paged |
/// | GET | /internal/payments/{id} | one payment with its reconciliation state |
/// | POST | /internal/payments/{id}/reconcile | verify it now (pending, or closed but perhaps paid) |
/// | POST | /internal/reconcile | run one reconciliation round now |
pub fn configure(cfg: &mut web::ServiceConfig, state: AppState) {
    use handlers::{callback, discounts, internal, payments};
    cfg.app_data(web::Data::new(state))
        .route(
            "/api/payments/zarinpal/init",
            web::post().to(payments::init),
        )
        .route(
            "/api/payments/zarinpal/callback",
            web::get().to(callback::callback),
        )
        .route("/api/user/payments", web::get().to(payments::list))
        // Before `{id}`, which would otherwise take "summary".
        .route(
            "/api/user/payments/summary",
            web::get().to(payments::summary),
        )
        .route("/api/user/payments/{id}", web::get().to(payments::get))
        .route(
            "/api/discounts/validate",
            web::post().to(discounts::validate),
        )
        .route(
            "/internal/discounts",
            web::get().to(internal::list_discounts),
        )
        .route(
            "/internal/discounts",
            web::post().to(internal::create_discount),
        )
        .route(
            "/internal/discounts/{id}",
            web::get().to(internal::get_discount),
        )
        .route(
            "/internal/discounts/{id}",
            web::put().to(internal::update_discount),
        )
        .route(
            "/internal/discounts/{id}",
            web::patch().to(internal::update_discount),
        )
        .route(
            "/internal/discounts/{id}",
            web::delete().to(internal::delete_discount),
        )
        .route(
            "/internal/discounts/{id}/redemptions",
            web::get().to(internal::list_redemptions),
        )
        .route("/internal/payments", web::get().to(internal::list_payments))
        .route(
            "/internal/payments/{id}",
            web::get().to(internal::get_payment),
        )
        .route(
            "/internal/payments/{id}/reconcile",
            web::post().to(internal::reconcile_payment),
        )
        .route(
            "/internal/reconcile",
            web::post().to(internal::reconcile_now),
        );
}
