//! Calls to the owners' internal APIs (`/internal/...`, `X-Internal-Token` = admin's own
//! credential, `INTERNAL_API_TOKEN`): admin writes nothing of theirs itself. Changes to users
//! also carry the acting staff member's own access token (`X-Acting-User-Token`, see
//! [`Upstreams::call_as`]), from which auth takes the actor and checks the role. Each call
//! carries the trace context and the request id, has a connect and a total timeout, and maps
//! the answer for the admin caller:
//! - 2xx → the JSON body;
//! - 4xx (except 401) → the same status, `detail` and `code` (a 422 keeps its field errors):
//!   the owner refused the change for a reason the caller can act on;
//! - 401 → 502: the owner refused *our* service credential, a deployment error;
//! - 5xx → 502 `upstream_error`, but 503 stays 503;
//! - unreachable or too slow, or the owner answers 503 → 503 `upstream_unavailable`
//!   (retry later).

pub mod openai;

use std::{borrow::Cow, time::Duration};

use actix_web::http::StatusCode;
use reqwest::Method;
use serde::Serialize;
use serde_json::Value;
use zimmer_config::{Secret, Settings};
use zimmer_http::{ApiError, FieldError};

use crate::config::AdminConfig;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    Auth,
    Marketplace,
    Billing,
    Support,
}

impl Service {
    pub const ALL: [Service; 4] = [
        Service::Auth,
        Service::Marketplace,
        Service::Billing,
        Service::Support,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Self::Auth => "auth",
            Self::Marketplace => "marketplace",
            Self::Billing => "billing",
            Self::Support => "support",
        }
    }
}

#[derive(Clone)]
pub struct Upstreams {
    http: reqwest::Client,
    token: Secret,
    bases: [String; 4],
}

impl std::fmt::Debug for Upstreams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upstreams")
            .field("bases", &self.bases)
            .finish_non_exhaustive()
    }
}

/// A successful answer.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub body: Value,
}

impl Upstreams {
    pub fn new(settings: &Settings, config: &AdminConfig) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .connect_timeout(config.upstream_connect_timeout)
            .timeout(config.upstream_timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        let base = |s: &str| s.trim().trim_end_matches('/').to_owned();
        Ok(Self {
            http,
            token: settings.internal_token.clone(),
            bases: [
                base(&settings.auth_internal_url),
                base(&settings.marketplace_internal_url),
                base(&settings.billing_internal_url),
                base(&settings.support_internal_url),
            ],
        })
    }

    pub fn base(&self, service: Service) -> &str {
        let i = match service {
            Service::Auth => 0,
            Service::Marketplace => 1,
            Service::Billing => 2,
            Service::Support => 3,
        };
        &self.bases[i]
    }

    fn request(
        &self,
        service: Service,
        method: Method,
        path: &str,
        acting_token: Option<&str>,
    ) -> reqwest::RequestBuilder {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base(service)))
            .header("x-internal-token", self.token.expose());
        if let Some(token) = acting_token {
            req = req.header("x-acting-user-token", format!("Bearer {token}"));
        }
        for (k, v) in zimmer_telemetry::current_context_headers() {
            req = req.header(k, v);
        }
        if let Some(id) = zimmer_http::request_id() {
            req = req.header("x-request-id", id);
        }
        req
    }

    /// One call; `query` pairs are appended to the URL, `body` sent as JSON. With
    /// `acting_token` (a staff member's own access token, the Bearer of the admin request) the
    /// owner verifies it and takes the actor from it, so admin's credential alone cannot act for
    /// anybody.
    pub async fn call_as<B: Serialize + ?Sized>(
        &self,
        service: Service,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&B>,
        acting_token: Option<&str>,
    ) -> Result<Reply, ApiError> {
        let path = with_query(path, query)?;
        let mut req = self.request(service, method.clone(), &path, acting_token);
        if let Some(b) = body {
            req = req.json(b);
        }
        answer(service, &method, &path, req).await
    }

    /// A `GET` allowed to take longer than the usual upstream timeout: the KB status of an
    /// automation waits for its vendor on behalf of every customer (up to 25 s,
    /// docs/panels.md "KB monitoring").
    pub async fn get_slow(
        &self,
        service: Service,
        path: &str,
        query: &[(&str, String)],
        timeout: Duration,
    ) -> Result<Reply, ApiError> {
        let path = with_query(path, query)?;
        let req = self.request(service, Method::GET, &path, None);
        answer(service, &Method::GET, &path, req.timeout(timeout)).await
    }

    pub async fn get(
        &self,
        service: Service,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<Reply, ApiError> {
        self.call_as::<Value>(service, Method::GET, path, query, None, None)
            .await
    }

    /// `GET {base}/readyz` of a service: its own view of its dependencies (system status).
    pub async fn readyz(&self, service: Service, timeout: Duration) -> (Option<u16>, Value) {
        let req = self
            .http
            .get(format!("{}/readyz", self.base(service)))
            .timeout(timeout);
        match req.send().await {
            Ok(res) => {
                let status = res.status().as_u16();
                let body = res.json::<Value>().await.unwrap_or(Value::Null);
                (Some(status), body)
            }
            Err(e) => (
                None,
                serde_json::json!({ "error": if e.is_timeout() { "timed out" } else { "unreachable" } }),
            ),
        }
    }
}

/// `path?k=v&...` with the pairs URL-encoded; `path` as is without any.
fn with_query(path: &str, query: &[(&str, String)]) -> Result<String, ApiError> {
    if query.is_empty() {
        return Ok(path.to_owned());
    }
    let mut url = reqwest::Url::parse("http://internal")
        .map_err(|e| ApiError::internal(anyhow::anyhow!("{e}")))?;
    url.set_path(path);
    url.query_pairs_mut()
        .extend_pairs(query.iter().map(|(k, v)| (*k, v.as_str())));
    Ok(format!("{path}?{}", url.query().unwrap_or_default()))
}

/// Sends the request and maps the owner's answer for the admin caller.
async fn answer(
    service: Service,
    method: &Method,
    path: &str,
    req: reqwest::RequestBuilder,
) -> Result<Reply, ApiError> {
    let (status, body) = exchange(service, req).await?;
    tracing::debug!(service = service.name(), %method, path = %path, status, "internal call");
    map_answer(service, status, body)
}

/// Sends the request: its status and JSON body (`null` when empty or not JSON).
async fn exchange(
    service: Service,
    req: reqwest::RequestBuilder,
) -> Result<(u16, Value), ApiError> {
    let res = req.send().await.map_err(|e| unreachable(service, &e))?;
    let status = res.status().as_u16();
    let bytes = res.bytes().await.map_err(|e| unreachable(service, &e))?;
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    Ok((status, body))
}

fn unreachable(service: Service, e: &reqwest::Error) -> ApiError {
    unavailable(
        service,
        anyhow::anyhow!("{} call failed: {e}", service.name()),
    )
}

/// 503 `upstream_unavailable`: the caller may retry later.
fn unavailable(service: Service, cause: anyhow::Error) -> ApiError {
    ApiError::unavailable(format!(
        "The {} service is unavailable; please retry",
        service.name()
    ))
    .with_code("upstream_unavailable")
    .with_cause(cause)
}

fn map_answer(service: Service, status: u16, body: Value) -> Result<Reply, ApiError> {
    if (200..300).contains(&status) {
        return Ok(Reply { status, body });
    }
    let text = |k: &str| body.get(k).and_then(Value::as_str).map(str::to_owned);
    if (400..500).contains(&status) && status != 401 {
        let code = text("code").unwrap_or_else(|| "upstream_rejected".to_owned());
        let detail = text("detail")
            .or_else(|| text("message"))
            .unwrap_or_else(|| format!("The {} service refused the request", service.name()));
        let errors: Vec<FieldError> = body
            .get("errors")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|e| {
                        Some(FieldError {
                            field: Cow::Owned(e.get("field")?.as_str()?.to_owned()),
                            message: Cow::Owned(e.get("message")?.as_str()?.to_owned()),
                        })
                    })
                    .collect()
            })
            .unwrap_or_default();
        if status == 422 && !errors.is_empty() {
            return Err(ApiError::validation(errors).with_code(code));
        }
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
        return Err(ApiError::new(status, code, detail));
    }
    if status == 502 && text("code").as_deref() == Some("vendor_error") {
        // The owner is fine but a vendor it called for us failed: its reason is the answer.
        let detail = text("detail").unwrap_or_else(|| "The vendor call failed".to_owned());
        return Err(ApiError::new(
            StatusCode::BAD_GATEWAY,
            "vendor_error",
            detail,
        ));
    }
    let cause = anyhow::anyhow!("{} answered {status}: {body}", service.name());
    if status == 503 {
        // The owner is up but its own dependencies are not: retryable, like unreachable.
        return Err(unavailable(service, cause));
    }
    Err(ApiError::new(
        StatusCode::BAD_GATEWAY,
        "upstream_error",
        format!(
            "The {} service failed to handle the request",
            service.name()
        ),
    )
    .with_cause(cause))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_mapped_for_the_admin_caller() {
        let ok = map_answer(Service::Auth, 200, serde_json::json!({"id": 1}));
        assert_eq!(ok.map(|r| r.body["id"].as_i64()).ok().flatten(), Some(1));

        let e = map_answer(
            Service::Auth,
            409,
            serde_json::json!({"detail": "taken", "code": "email_taken"}),
        )
        .err()
        .unwrap_or_else(|| panic!("expected an error"));
        assert_eq!(
            (e.status().as_u16(), e.code(), e.detail()),
            (409, "email_taken", "taken")
        );

        let e = map_answer(
            Service::Billing,
            422,
            serde_json::json!({"detail": "x", "code": "validation_error",
                "errors": [{"field": "percent_off", "message": "must be between 1 and 100"}]}),
        )
        .err()
        .unwrap_or_else(|| panic!("expected an error"));
        assert_eq!(e.status().as_u16(), 422);
        assert!(e.detail().starts_with("percent_off"));

        for (status, expected) in [(401, 502), (500, 502), (503, 503)] {
            let e = map_answer(Service::Support, status, Value::Null)
                .err()
                .unwrap_or_else(|| panic!("expected an error"));
            assert_eq!(e.status().as_u16(), expected, "{status}");
        }
    }
}
