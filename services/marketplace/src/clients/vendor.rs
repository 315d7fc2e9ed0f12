//! The HTTP client for automation vendors: provisioning calls and health checks, each
//! signed (see `domain::tokens`), each with its own timeout, never following redirects, never
//! through a proxy, and only to addresses the outbound policy allows (`crate::clients::outbound`):
//! IP literals are checked here, names by the client's resolver, whose checked answer is
//! what the connection uses.

use std::{sync::Arc, time::Duration};

use reqwest::{Client, Method, StatusCode, Url, redirect::Policy};

use crate::{
    clients::outbound::{GuardedResolver, OutboundPolicy, Refused, refusal_in},
    domain::tokens::{AUTOMATION_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, sign},
};

#[derive(Clone)]
pub struct VendorClient {
    http: Client,
    policy: Arc<OutboundPolicy>,
}

/// Why a vendor call failed, which decides whether to try again.
#[derive(Debug)]
pub enum CallError {
    /// Timeout, connection refused, 5xx, 408, 429: may work later.
    Retryable(String),
    /// Any other 4xx: the vendor refuses this request as it is.
    Permanent(String),
    /// The URL leads to an address the outbound policy forbids: not called at all.
    Refused(String),
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Retryable(e) => write!(f, "retryable: {e}"),
            Self::Permanent(e) => write!(f, "permanent: {e}"),
            Self::Refused(e) => write!(f, "refused: {e}"),
        }
    }
}

/// Where one vendor call goes, as which automation (signed with its service token when it
/// has one), and how long it may take.
#[derive(Debug, Clone, Copy)]
pub struct VendorCall<'a> {
    pub url: &'a str,
    pub automation_id: i64,
    pub token_hash: Option<&'a [u8]>,
    pub timeout: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    Healthy,
    Degraded,
    Down,
}

impl Health {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Healthy => "healthy",
            Self::Degraded => "degraded",
            Self::Down => "down",
        }
    }
}

impl VendorClient {
    pub fn new(policy: OutboundPolicy) -> anyhow::Result<Self> {
        let policy = Arc::new(policy);
        let http = Client::builder()
            .redirect(Policy::none())
            // A proxy would resolve the vendor's name itself, past the guard.
            .no_proxy()
            .dns_resolver(Arc::new(GuardedResolver(Arc::clone(&policy))))
            .connect_timeout(Duration::from_secs(3))
            .user_agent("zimmer-marketplace")
            .build()?;
        Ok(Self { http, policy })
    }

    pub fn policy(&self) -> &OutboundPolicy {
        &self.policy
    }

    /// The URL, if the policy lets it be called (an IP literal is judged here; a name is
    /// judged by the resolver when the connection is made).
    fn target(&self, url: &str) -> Result<Url, Refused> {
        let url = Url::parse(url).map_err(|_| Refused("is not a valid URL".to_owned()))?;
        self.policy.check_literal(&url)?;
        Ok(url)
    }

    /// `call`'s request (`method` to its URL, with its timeout), signed over `body`.
    fn signed(
        &self,
        method: Method,
        url: Url,
        call: VendorCall<'_>,
        body: &[u8],
    ) -> reqwest::RequestBuilder {
        let builder = self
            .http
            .request(method, url)
            .timeout(call.timeout)
            .header(AUTOMATION_HEADER, call.automation_id.to_string());
        match call.token_hash {
            Some(key) => {
                let ts = chrono::Utc::now().timestamp();
                builder
                    .header(TIMESTAMP_HEADER, ts.to_string())
                    .header(SIGNATURE_HEADER, sign(key, ts, body))
            }
            None => builder,
        }
    }

    /// `POST provision_url` with the JSON body; Ok on any 2xx.
    pub async fn provision(
        &self,
        call: VendorCall<'_>,
        body: &serde_json::Value,
    ) -> Result<(), CallError> {
        let response = self.post_signed(call, body).await?;
        let status = response.status();
        if status.is_success() {
            Ok(())
        } else if status.is_server_error()
            || status == StatusCode::REQUEST_TIMEOUT
            || status == StatusCode::TOO_MANY_REQUESTS
        {
            Err(CallError::Retryable(format!("vendor answered {status}")))
        } else {
            Err(CallError::Permanent(format!("vendor answered {status}")))
        }
    }

    /// `POST url` with a JSON body, signed when the automation has a service token: the KB
    /// status and reset calls (docs/panels.md "KB monitoring"). Any answer is `Ok` with its
    /// status and its JSON body (`Value::Null` when it is not JSON, or larger than 64 KB);
    /// `Err`: refused by the outbound policy (not called) or no answer in `timeout`.
    pub async fn post_json(
        &self,
        call: VendorCall<'_>,
        body: &serde_json::Value,
    ) -> Result<(StatusCode, serde_json::Value), CallError> {
        const MAX_ANSWER: usize = 64 * 1024;
        let mut response = self.post_signed(call, body).await?;
        let status = response.status();
        let mut answer = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(call_error)? {
            answer.extend_from_slice(&chunk);
            if answer.len() > MAX_ANSWER {
                return Ok((status, serde_json::Value::Null));
            }
        }
        Ok((
            status,
            serde_json::from_slice(&answer).unwrap_or(serde_json::Value::Null),
        ))
    }

    /// `POST url` with the JSON body, signed (with the service token when there is one).
    async fn post_signed(
        &self,
        call: VendorCall<'_>,
        body: &serde_json::Value,
    ) -> Result<reqwest::Response, CallError> {
        let url = self.target(call.url).map_err(|r| CallError::Refused(r.0))?;
        let raw = serde_json::to_vec(body).map_err(|e| CallError::Permanent(e.to_string()))?;
        self.signed(Method::POST, url, call, &raw)
            .header("content-type", "application/json")
            .body(raw)
            .send()
            .await
            .map_err(call_error)
    }

    /// `GET health_check_url`: a 2xx is healthy unless its JSON `status` says `degraded`
    /// (or down); anything else, including no answer in time, is down. `Err`: the URL is
    /// refused by the outbound policy and was not called.
    pub async fn health(&self, call: VendorCall<'_>) -> Result<Health, Refused> {
        let url = self.target(call.url)?;
        let response = match self.signed(Method::GET, url, call, b"").send().await {
            Ok(r) => r,
            Err(e) => {
                if let Some(refused) = refusal_in(&e) {
                    return Err(refused);
                }
                tracing::info!(
                    automation_id = call.automation_id,
                    error = %without_url(&e),
                    "health check failed"
                );
                return Ok(Health::Down);
            }
        };
        if !response.status().is_success() {
            return Ok(Health::Down);
        }
        let reported = response
            .json::<serde_json::Value>()
            .await
            .ok()
            .and_then(|v| {
                v.get("status")
                    .and_then(|s| s.as_str())
                    .map(str::to_ascii_lowercase)
            });
        Ok(match reported.as_deref() {
            Some("degraded") => Health::Degraded,
            Some("down" | "unhealthy" | "error") => Health::Down,
            _ => Health::Healthy,
        })
    }
}

/// A call that got no (whole) answer: refused by the outbound policy, else worth a retry.
fn call_error(e: reqwest::Error) -> CallError {
    match refusal_in(&e) {
        Some(r) => CallError::Refused(r.0),
        None => CallError::Retryable(without_url(&e)),
    }
}

/// reqwest errors print the URL, which may carry a vendor's secret in its query: keep the
/// kind of failure only.
fn without_url(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else if e.is_request() {
        "request failed"
    } else {
        "transport error"
    };
    kind.to_owned()
}
