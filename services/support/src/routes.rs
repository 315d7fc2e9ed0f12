use actix_web::web;

use crate::{AppState, handlers};

/// Every route of support, as the gateway forwards them (docs/api.md "support"; docs/panels.md shapes),
/// and the internal API (never routed by the gateway; `X-Internal-Token`):
///
/// | method | path | what |
/// | --- | --- | --- |
/// | GET | /internal/tickets/{id} | any ticket with its messages (admin's ticket view; all of them up to the 200-message cap, or `messages_limit`/`messages_offset`) |
/// | PUT | /internal/tickets/{id} | `{actor_id, status?, priority?, importance?, assigned_to?, message?}`: a change made by that staff member in the dashboard |
/// | POST | /internal/tickets/{id}/messages | `{actor_id, message}`: a staff reply from the dashboard |
///
/// Fixed paths are registered before `{id}` paths with the same prefix.
pub fn configure(cfg: &mut web::ServiceConfig, state: AppState) {
    use handlers::{internal, notifications, stream, tickets};
    cfg.app_data(web::Data::new(state))
        .route("/api/tickets", web::post().to(tickets::create))
        .route("/api/tickets", web::get().to(tickets::list))
        .route("/api/tickets/{id}", web::get().to(tickets::get))
        .route("/api/tickets/{id}", web::put().to(tickets::update))
        .route(
            "/api/tickets/{id}/messages",
            web::post().to(tickets::add_message),
        )
        .route(
            "/api/tickets/{id}/messages/{message_id}/attachment",
            web::get().to(tickets::attachment),
        )
        .route("/api/notifications", web::get().to(notifications::list))
        .route("/api/notifications/stream", web::get().to(stream::stream))
        .route(
            "/api/notifications/unread-count",
            web::get().to(notifications::unread_count),
        )
        .route(
            "/api/notifications/mark-read",
            web::post().to(notifications::mark_read_many),
        )
        .route(
            "/api/notifications/mark-all-read",
            web::post().to(notifications::mark_all_read),
        )
        .route(
            "/api/notifications/mark-read/{id}",
            web::post().to(notifications::mark_read_one),
        )
        .route(
            "/api/notifications/{id}",
            web::delete().to(notifications::delete),
        )
        .route("/internal/tickets/{id}", web::get().to(internal::get))
        .route("/internal/tickets/{id}", web::put().to(internal::update))
        .route(
            "/internal/tickets/{id}/messages",
            web::post().to(internal::add_message),
        );
}
