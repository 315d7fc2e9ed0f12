use std::future::{Ready, ready};

use actix_web::{FromRequest, HttpRequest, dev::Payload, web};
use zimmer_config::Settings;

use crate::ApiError;

/// A caller of `/internal/...` routes: another service presenting the shared
/// `X-Internal-Token`. The gateway never routes `/internal/`, and this check means a
/// request that reaches a service directly still needs the credential.
#[derive(Debug, Clone, Copy)]
pub struct InternalCaller;

/// Compares in time independent of where the inputs differ.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl FromRequest for InternalCaller {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let Some(settings) = req.app_data::<web::Data<Settings>>() else {
            return ready(Err(ApiError::internal(anyhow::anyhow!(
                "Settings are not registered"
            ))));
        };
        let presented = req
            .headers()
            .get("x-internal-token")
            .map(|v| v.as_bytes())
            .unwrap_or_default();
        if constant_time_eq(presented, settings.internal_token.expose().as_bytes()) {
            ready(Ok(InternalCaller))
        } else {
            ready(Err(ApiError::unauthorized("Service credential required")))
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn constant_time_eq_works() {
        assert!(super::constant_time_eq(b"abc", b"abc"));
        assert!(!super::constant_time_eq(b"abc", b"abd"));
        assert!(!super::constant_time_eq(b"abc", b"ab"));
    }
}
