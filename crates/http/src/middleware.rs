use std::{
    future::{Future, Ready, ready},
    pin::Pin,
    rc::Rc,
    time::Instant,
};

use actix_web::{
    Error, HttpResponse,
    body::{BoxBody, MessageBody},
    dev::{Service, ServiceRequest, ServiceResponse, Transform, forward_ready},
    http::{
        StatusCode,
        header::{CONTENT_TYPE, HeaderName, HeaderValue},
    },
};
use tracing::Instrument;
use zimmer_telemetry::Metrics;

use crate::error::REQUEST_ID;

const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// One middleware for what every request needs: a request id (the gateway's `X-Request-ID`,
/// else a new one) on the span, every log line, the response and 5xx bodies; the W3C trace
/// context of the caller as the span's parent; request counts and latency per route; and a
/// JSON `{"detail","code"}` body for any error answer that is not JSON already.
#[derive(Clone)]
pub struct Observability {
    metrics: Metrics,
}

impl Observability {
    pub fn new(metrics: Metrics) -> Self {
        Self { metrics }
    }
}

impl<S, B> Transform<S, ServiceRequest> for Observability
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<BoxBody>;
    type Error = Error;
    type Transform = ObservabilityService<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, Self::InitError>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(ObservabilityService {
            service: Rc::new(service),
            metrics: self.metrics.clone(),
        }))
    }
}

pub struct ObservabilityService<S> {
    service: Rc<S>,
    metrics: Metrics,
}

fn valid_request_id(value: &str) -> bool {
    !value.is_empty()
        && value.len() <= 128
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl<S, B> Service<ServiceRequest> for ObservabilityService<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<BoxBody>;
    type Error = Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>>>>;

    forward_ready!(service);

    fn call(&self, req: ServiceRequest) -> Self::Future {
        let started = Instant::now();
        let request_id = req
            .headers()
            .get(&X_REQUEST_ID)
            .and_then(|v| v.to_str().ok())
            .filter(|v| valid_request_id(v))
            .map(str::to_owned)
            .unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string());
        let method = req.method().as_str().to_owned();
        // The route pattern, not the path: ids in paths would explode metric cardinality.
        let route = req
            .match_pattern()
            .unwrap_or_else(|| "unmatched".to_owned());
        let span = tracing::info_span!(
            "http_request",
            otel.name = %format!("{method} {route}"),
            otel.kind = "server",
            http.method = %method,
            http.route = %route,
            http.status_code = tracing::field::Empty,
            request_id = %request_id,
        );
        zimmer_telemetry::set_parent_from(
            &span,
            req.headers()
                .iter()
                .filter_map(|(k, v)| Some((k.as_str(), v.to_str().ok()?))),
        );
        let service = Rc::clone(&self.service);
        let metrics = self.metrics.clone();
        let fut_span = span.clone();
        Box::pin(
            async move {
                let res = REQUEST_ID
                    .scope(request_id.clone(), service.call(req))
                    .await?;
                let status = res.status();
                let mut res = if res.response().error().is_some() {
                    normalise_error(res, &request_id)
                } else {
                    res.map_into_boxed_body()
                };
                if let Ok(value) = HeaderValue::from_str(&request_id) {
                    res.headers_mut().insert(X_REQUEST_ID, value);
                }
                let elapsed = started.elapsed().as_secs_f64();
                fut_span.record("http.status_code", status.as_u16());
                metrics
                    .http_requests
                    .with_label_values(&[method.as_str(), route.as_str(), status.as_str()])
                    .inc();
                metrics
                    .http_duration
                    .with_label_values(&[method.as_str(), route.as_str()])
                    .observe(elapsed);
                if status.is_server_error() {
                    tracing::error!(
                        status = status.as_u16(),
                        elapsed_ms = elapsed * 1e3,
                        "request failed"
                    );
                } else {
                    tracing::info!(
                        status = status.as_u16(),
                        elapsed_ms = elapsed * 1e3,
                        "request"
                    );
                }
                Ok(res)
            }
            .instrument(span),
        )
    }
}

/// Logs the cause of an error answer and makes sure its body is our JSON shape (actix's own
/// errors, e.g. from a route's method guard, answer plain text otherwise).
fn normalise_error<B: MessageBody + 'static>(
    res: ServiceResponse<B>,
    request_id: &str,
) -> ServiceResponse<BoxBody> {
    let status = res.status();
    if let Some(err) = res.response().error() {
        if status.is_server_error() {
            tracing::error!(error = %err, "handler error");
        } else {
            tracing::debug!(error = %err, "client error");
        }
    }
    let is_json = res
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if is_json {
        return res.map_into_boxed_body();
    }
    let (code, detail) = match status {
        StatusCode::NOT_FOUND => ("not_found", "Not found"),
        StatusCode::METHOD_NOT_ALLOWED => ("method_not_allowed", "Method not allowed"),
        StatusCode::PAYLOAD_TOO_LARGE => ("payload_too_large", "Request body too large"),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ("unsupported_media_type", "Unsupported media type"),
        StatusCode::UNAUTHORIZED => ("unauthorized", "Authentication required"),
        StatusCode::FORBIDDEN => ("forbidden", "Forbidden"),
        s if s.is_client_error() => ("bad_request", "Bad request"),
        _ => ("internal_error", "Internal error"),
    };
    let mut body = serde_json::json!({ "detail": detail, "code": code });
    if status.is_server_error() {
        body["request_id"] = serde_json::Value::String(request_id.to_owned());
    }
    let (req, old) = res.into_parts();
    let mut new = HttpResponse::build(status).json(body);
    for (name, value) in old.headers() {
        if name != CONTENT_TYPE && name != actix_web::http::header::CONTENT_LENGTH {
            new.headers_mut().append(name.clone(), value.clone());
        }
    }
    ServiceResponse::new(req, new)
}
