//! `GET /internal/token-check`: does *this* instance accept this access token right now?
//! Answers `{user_id, role, session_id}` (200) or the extractor's 401. It exists so an
//! operator (or a test) can see a revocation reach every service without depending on any
//! service's business routes. Internal like every `/internal/` route: the gateway never
//! routes it and it needs the service credential.

use actix_web::HttpResponse;
use zimmer_http::InternalCaller;

use crate::CurrentUser;

pub const TOKEN_CHECK_PATH: &str = "/internal/token-check";

pub async fn token_check(_caller: InternalCaller, user: CurrentUser) -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({
        "user_id": user.id,
        "role": user.role,
        "session_id": user.session_id,
    }))
}
