use std::future::{Ready, ready};

use actix_web::{FromRequest, HttpRequest, dev::Payload, web};
use zimmer_config::Settings;

use crate::ApiError;

/// A caller of `/internal/...` routes: another service presenting its own credential as
/// `X-Internal-Token`, known to this service through `INTERNAL_CALLERS` (by the SHA-256 of
/// the credential, compared in constant time). The gateway never routes `/internal/`, and
/// this check means a request that reaches a service directly still needs a credential;
/// the name tells the handler *which* service calls, so a route can admit only some
/// ([`InternalCaller::require`]).
#[derive(Debug, Clone)]
pub struct InternalCaller {
    name: String,
}

impl InternalCaller {
    /// The calling service (`admin`, `marketplace`, ...).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// 403 `caller_not_allowed` unless the caller is one of `allowed`.
    pub fn require(&self, allowed: &[&str]) -> Result<(), ApiError> {
        if allowed.contains(&self.name.as_str()) {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!(
                "The {} service may not call this internal route",
                self.name
            ))
            .with_code("caller_not_allowed"))
        }
    }
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
        match settings.internal_callers.identify(presented) {
            Some(name) => {
                tracing::debug!(caller = name, path = req.path(), "internal call");
                ready(Ok(InternalCaller {
                    name: name.to_owned(),
                }))
            }
            None => ready(Err(ApiError::unauthorized("Service credential required"))),
        }
    }
}
