use zimmer_http::{
    route,
    routes::{DocInfo, Route},
};

use zimmer_events::contracts::internal::automations::{PasswordRecheck, PasswordRechecked};

use crate::handlers::{
    TokenAnswer, UserView, account, email, internal, keys, password, recheck, session, twofa,
};

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
/// - `POST /internal/users` `{name, email, role, password?, phone_number?, is_active?,
///   email_verified?}`: creates an account of any role (manager only), 201 with the user;
///   409 `email_taken`. Without a password (staff only) the new member is mailed a link to
///   choose one (valid `STAFF_INVITE_TTL_SECS`, 72 h).
/// - `DELETE /internal/users/{id}`: permanent delete (anonymisation, as
///   `/api/auth/delete-account`), manager only, never oneself (403 `self_change`), the
///   account deactivated first (else 409 `user_active`); 404 unknown or already deleted.
/// - `POST /internal/password-recheck` `{password}` (types in
///   `zimmer_contracts::internal::automations`): the acting member's own password, for admin's
///   generate-token → `{user_id}`; wrong → 403 `wrong_password`; throttled like login (429).
///
/// The OpenAPI document's title (served at `/api/auth/openapi.json`, built from [`ROUTES`]).
pub const DOC: DocInfo = DocInfo {
    title: "Zimmer auth API",
    description: "Accounts, sessions, email verification, password reset, two-factor sign-in \
        (docs/api.md \"auth\"), and the internal user API for admin (tag `internal`, never \
        routed by the gateway). Errors are `{detail, code}`.",
};

/// Every route of auth, in matching order: this table registers them and documents them
/// (crates/http/src/routes.rs).
pub const ROUTES: &[Route] = &[
    route!(GET "/.well-known/jwks.json" => keys::jwks, "The public signing keys (JWKS)").public(),
    Route::openapi_document("/api/auth/openapi.json"),
    route!(POST "/api/auth/register" => account::register, "Create a customer account; answers tokens and sets the refresh cookie")
        .public().body::<account::RegisterRequest>().created::<TokenAnswer>(),
    route!(POST "/api/auth/signup" => account::register, "Alias of POST /api/auth/register (the user panel)")
        .public().body::<account::RegisterRequest>().created::<TokenAnswer>(),
    route!(POST "/api/auth/login" => account::login, "Sign in; with 2FA on, `{otp_required: true, challenge_token, expires_in}` instead of tokens")
        .public().body::<account::LoginRequest>().ok::<TokenAnswer>(),
    route!(POST "/api/auth/refresh" => session::refresh, "Rotate the refresh token (cookie, or `{refresh_token}` for a client without `Origin`)")
        .public().body::<session::RefreshBody>().ok::<TokenAnswer>(),
    route!(GET "/api/auth/csrf" => session::csrf, "`{csrf_token}` and the matching cookie").public(),
    route!(POST "/api/auth/logout" => session::logout, "Revoke the session (Bearer's, else the refresh cookie's)")
        .public().status(204),
    route!(POST "/api/auth/logout-all" => session::logout_all, "Revoke every session of the caller: `{revoked_sessions}`"),
    route!(GET "/api/auth/sessions" => session::list, "The caller's sessions").list::<session::SessionView>(),
    route!(DELETE "/api/auth/sessions/{id}" => session::revoke, "Revoke one of the caller's sessions"),
    route!(GET "/api/me" => account::me, "The caller's account, unwrapped").ok::<UserView>(),
    route!(PUT "/api/user/profile" => account::update_profile, "Change name and/or phone number")
        .body::<account::ProfileRequest>().ok::<UserView>(),
    route!(POST "/api/user/change-password" => account::change_password, "Change the password; revokes the other sessions")
        .body::<account::ChangePasswordRequest>(),
    route!(POST "/api/user/password" => account::change_password, "Alias of POST /api/user/change-password (the user panel)")
        .body::<account::ChangePasswordRequest>(),
    route!(DELETE "/api/auth/delete-account" => account::delete_account, "Delete (anonymise) the caller's account; needs `{password}`")
        .body::<account::DeleteAccountRequest>(),
    route!(POST "/api/auth/request-email-verify" => email::request, "Mail a verification link and code")
        .body::<email::RequestBody>(),
    route!(POST "/api/auth/send-email-verification" => email::request, "Alias of POST /api/auth/request-email-verify (the user panel)")
        .body::<email::RequestBody>(),
    route!(POST "/api/auth/verify-email" => email::verify, "Verify the email: `{token}`, or with Bearer `{verification_code}`")
        .public().body::<email::VerifyBody>(),
    route!(POST "/api/forgot-password" => password::forgot, "Mail a reset link; always 200").public().body::<password::ForgotRequest>(),
    route!(POST "/api/reset-password" => password::reset, "Set a new password with the mailed token").public().body::<password::ResetRequest>(),
    route!(GET "/api/auth/2fa/status" => twofa::status, "`{enabled}`"),
    route!(POST "/api/auth/2fa/initiate" => twofa::initiate, "Start TOTP set-up: `{secret, otpauth_uri}`; no body, or `{password}` when the sign-in is not recent")
        .optional_body::<twofa::CodeBody>(),
    route!(POST "/api/auth/2fa/activate" => twofa::activate, "Turn TOTP on with a code: `{recovery_codes}`, shown once").body::<twofa::CodeBody>(),
    route!(POST "/api/auth/2fa/disable" => twofa::disable, "Turn TOTP off with `{otp_code}` or `{password}`").body::<twofa::CodeBody>(),
    route!(POST "/api/auth/2fa/recovery-codes/regenerate" => twofa::regenerate, "New recovery codes: `{codes, recovery_codes}`").body::<twofa::CodeBody>(),
    route!(POST "/api/auth/2fa/verify" => twofa::verify, "Finish a 2FA sign-in with the challenge and a TOTP or recovery code")
        .public().body::<twofa::VerifyBody>().ok::<TokenAnswer>(),
    // internal (see above)
    route!(GET "/internal/revocations" => internal::revocations, "Sessions revoked and users deactivated within the access-token lifetime"),
    route!(POST "/internal/users" => internal::create_staff, "Create an account of any role `{name, email, role, password?, phone_number?, is_active?, email_verified?}` (admin, manager only)")
        .body::<internal::CreateStaff>().created::<internal::InternalUser>(),
    route!(GET "/internal/users/{id}" => internal::get_user, "A user with `deactivated_at`").ok::<internal::InternalUser>(),
    route!(PUT "/internal/users/{id}" => internal::update_user, "Change role, activation and/or name (admin)")
        .body::<internal::UpdateUser>().ok::<internal::InternalUser>(),
    route!(DELETE "/internal/users/{id}" => internal::delete_user, "Delete (anonymise) a deactivated account permanently (admin, manager only; never oneself)")
        .ok::<internal::DeletedUser>(),
    route!(POST "/internal/users/{id}/deactivate" => internal::deactivate, "Deactivate a user (admin)").ok::<internal::InternalUser>(),
    route!(POST "/internal/users/{id}/activate" => internal::activate, "Activate a user (admin)").ok::<internal::InternalUser>(),
    route!(PUT "/internal/users/{id}/role" => internal::change_role, "Change a user's role (admin)")
        .body::<internal::RoleChange>().ok::<internal::InternalUser>(),
    route!(POST "/internal/password-recheck" => recheck::password_recheck, "Re-check the acting staff member's own password `{password}` → `{user_id}`; wrong → 403 `wrong_password`, throttled like login (admin)")
        .body::<PasswordRecheck>().ok::<PasswordRechecked>(),
];
