use std::{future::Future, pin::Pin, sync::Arc};

use actix_web::{FromRequest, HttpRequest, dev::Payload, http::header::AUTHORIZATION, web};
use uuid::Uuid;
use zimmer_http::ApiError;

use crate::{Claims, Revocations, Role, Verifier, VerifyError};

/// What the extractor needs, registered as app data by every service.
#[derive(Clone)]
pub struct AuthState {
    pub verifier: Arc<Verifier>,
    pub revocations: Revocations,
}

impl AuthState {
    pub fn new(verifier: Verifier, revocations: Revocations) -> Self {
        Self {
            verifier: Arc::new(verifier),
            revocations,
        }
    }

    /// Verifies a raw access token and checks the revocation set.
    pub async fn authenticate(&self, token: &str) -> Result<CurrentUser, ApiError> {
        let claims = self
            .verifier
            .verify_fetching(token)
            .await
            .map_err(|e| match e {
                // Not the client's fault and not a logout: panels treat 401 as "signed out".
                VerifyError::KeysUnavailable => ApiError::unavailable(
                    "The token signing keys are not available yet (auth unreachable); retry shortly",
                )
                .with_code("keys_unavailable"),
                e => ApiError::unauthorized(format!("Invalid access token: {e}")),
            })?;
        // Before the first full load this instance cannot know whether the session was
        // revoked (e.g. logged out before it started): neither accept nor call it invalid.
        if !self.revocations.is_loaded() {
            return Err(ApiError::unavailable(
                "This instance has not loaded the session revocations yet; retry shortly",
            )
            .with_code("revocations_unavailable"));
        }
        if self.revocations.is_revoked(&claims) {
            return Err(ApiError::unauthorized("Access token has been revoked"));
        }
        let id = claims
            .user_id()
            .ok_or_else(|| ApiError::unauthorized("Invalid access token"))?;
        Ok(CurrentUser {
            id,
            role: claims.role,
            session_id: claims.sid,
            claims,
        })
    }
}

/// The authenticated caller (`Authorization: Bearer …`). Missing or bad → 401; keys or
/// revocations not loaded yet → 503 (`keys_unavailable` / `revocations_unavailable`).
#[derive(Debug, Clone)]
pub struct CurrentUser {
    pub id: i64,
    pub role: Role,
    pub session_id: Uuid,
    pub claims: Claims,
}

impl CurrentUser {
    /// The one role check of the platform: 403 unless the caller has one of `roles`.
    pub fn require_any(&self, roles: &[Role]) -> Result<(), ApiError> {
        if roles.contains(&self.role) {
            Ok(())
        } else {
            Err(ApiError::forbidden("You do not have permission to do this"))
        }
    }

    pub fn is_staff(&self) -> bool {
        self.role.is_staff()
    }
}

/// The bearer token of a request, if it has one.
pub fn bearer_token(req: &HttpRequest) -> Option<&str> {
    let value = req.headers().get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

impl FromRequest for CurrentUser {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let state = req.app_data::<web::Data<AuthState>>().cloned();
        let token = bearer_token(req).map(str::to_owned);
        Box::pin(async move {
            let state = state.ok_or_else(|| {
                ApiError::internal(anyhow::anyhow!("AuthState is not registered"))
            })?;
            let token = token.ok_or_else(|| ApiError::unauthorized("Authentication required"))?;
            state.authenticate(&token).await
        })
    }
}

/// `Option<CurrentUser>` semantics for public routes that say more to a signed-in caller:
/// no token → `None`; a bad token → 401 (a client sending garbage should hear about it).
pub struct MaybeUser(pub Option<CurrentUser>);

impl FromRequest for MaybeUser {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        if bearer_token(req).is_none() {
            return Box::pin(async { Ok(MaybeUser(None)) });
        }
        let fut = CurrentUser::from_request(req, payload);
        Box::pin(async move { fut.await.map(|u| MaybeUser(Some(u))) })
    }
}
