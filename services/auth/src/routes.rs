use actix_web::web;

use crate::{AppState, handlers};

/// Auth's OpenAPI document, served at `/api/auth/openapi.json`.
pub const OPENAPI: &str = include_str!("openapi.json");

/// Every route of auth, as the gateway forwards them (docs/api.md "auth"; aliases from docs/panels.md),
/// and the internal API other services call directly.
///
/// Internal (`X-Internal-Token` = a caller's own credential listed in `INTERNAL_CALLERS`;
/// the gateway never routes `/internal/`):
/// - `GET  /internal/revocations`: sessions revoked and users deactivated within the access
///   token lifetime (`{sessions: [{session_id, user_id, expires_at}], users: [{user_id,
///   deactivated_at}]}`), loaded by every service at start and resynchronised periodically.
/// - `GET  /internal/users/{id}`: the user (the `/api/me` shape plus `deactivated_at`).
///
/// The changes below accept only the admin service's credential plus the acting staff
/// member's own access token in `X-Acting-User-Token` (the actor is taken from it; a body
/// `actor_id` is ignored). 403 `caller_not_allowed` from another service,
/// `acting_token_required` / `invalid_actor_token` without a valid, unrevoked token,
/// `invalid_actor` when the actor is deactivated or not staff:
/// - `PUT  /internal/users/{id}` `{role?, is_active?}`: role and activation changes
///   for admin; 200 with the user. Role change → all sessions revoked, `session.revoked` +
///   `user.updated {user_id, role, actor_id}`. Deactivation → `deactivated_at` set, all
///   sessions revoked, `session.revoked`, `user.deactivated {user_id, deactivated_at}`,
///   `user.updated {user_id, is_active: false, actor_id}`. Activation → `user.updated`.
///   403 `self_change` when the actor is the target; 403 when the actor's role may not do
///   it (README.md, roles); 404 unknown user; 422 bad role.
/// - `POST /internal/users/{id}/deactivate`, `POST /internal/users/{id}/activate` and
///   `PUT /internal/users/{id}/role` `{role}`: the same, one change each.
/// - `POST /internal/users` `{name, email, role, password?, phone_number?}`: creates
///   a staff account (manager only), 201 with the user; 409 `email_taken`. Without a password
///   the new member is mailed a link to choose one (valid `STAFF_INVITE_TTL_SECS`, 72 h).
pub fn configure(cfg: &mut web::ServiceConfig, state: AppState) {
    use handlers::{account, email, internal, keys, password, session, twofa};
    cfg.app_data(web::Data::new(state))
        .route("/.well-known/jwks.json", web::get().to(keys::jwks))
        .route(
            "/api/auth/openapi.json",
            web::get().to(|| async {
                actix_web::HttpResponse::Ok()
                    .content_type("application/json")
                    .body(OPENAPI)
            }),
        )
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
            "/api/auth/delete-account",
            web::delete().to(account::delete_account),
        )
        .route(
            "/api/auth/request-email-verify",
            web::post().to(email::request),
        )
        .route(
            "/api/auth/send-email-verification",
            web::post().to(email::request),
        )
        .route("/api/auth/verify-email", web::post().to(email::verify))
        .route("/api/forgot-password", web::post().to(password::forgot))
        .route("/api/reset-password", web::post().to(password::reset))
        .route("/api/auth/2fa/status", web::get().to(twofa::status))
        .route("/api/auth/2fa/initiate", web::post().to(twofa::initiate))
        .route("/api/auth/2fa/activate", web::post().to(twofa::activate))
        .route("/api/auth/2fa/disable", web::post().to(twofa::disable))
        .route(
            "/api/auth/2fa/recovery-codes/regenerate",
            web::post().to(twofa::regenerate),
        )
        .route("/api/auth/2fa/verify", web::post().to(twofa::verify))
        .route(
            "/internal/revocations",
            web::get().to(internal::revocations),
        )
        .route("/internal/users", web::post().to(internal::create_staff))
        .route("/internal/users/{id}", web::get().to(internal::get_user))
        .route("/internal/users/{id}", web::put().to(internal::update_user))
        .route(
            "/internal/users/{id}/deactivate",
            web::post().to(internal::deactivate),
        )
        .route(
            "/internal/users/{id}/activate",
            web::post().to(internal::activate),
        )
        .route(
            "/internal/users/{id}/role",
            web::put().to(internal::change_role),
        );
}
