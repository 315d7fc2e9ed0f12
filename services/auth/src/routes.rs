use actix_web::web;

use crate::{AppState, handlers};

/// Every route of auth, as the gateway forwards them (api.md "auth"; aliases from clients.md).
pub fn configure(cfg: &mut web::ServiceConfig, state: AppState) {
    use handlers::{account, internal, keys, session};
    cfg.app_data(web::Data::new(state))
        .route("/.well-known/jwks.json", web::get().to(keys::jwks))
        .route("/api/auth/register", web::post().to(account::register))
        .route("/api/auth/signup", web::post().to(account::register))
        .route("/api/auth/login", web::post().to(account::login))
        .route("/api/auth/refresh", web::post().to(session::refresh))
        .route("/api/auth/csrf", web::get().to(session::csrf))
        .route("/api/auth/logout", web::post().to(session::logout))
        .route("/api/auth/logout-all", web::post().to(session::logout_all))
        .route("/api/auth/sessions", web::get().to(session::list))
        .route("/api/auth/sessions/{id}", web::delete().to(session::revoke))
        .route("/api/me", web::get().to(account::me))
        .route("/api/user/profile", web::put().to(account::update_profile))
        .route(
            "/api/user/change-password",
            web::post().to(account::change_password),
        )
        .route(
            "/api/user/password",
            web::post().to(account::change_password),
        )
        .route(
            "/internal/revocations",
            web::get().to(internal::revocations),
        );
}
