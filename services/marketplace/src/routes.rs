use actix_web::web;

use crate::handlers;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route(
        "/api/user/automations",
        web::get().to(handlers::my_automations),
    )
    .route(
        "/api/user/automations/active",
        web::get().to(handlers::my_active_automations),
    );
}
