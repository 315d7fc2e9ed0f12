use std::net::TcpListener;

use actix_web::{HttpRequest, HttpResponse, error::JsonPayloadError, web};
use zimmer_config::Settings;
use zimmer_telemetry::Metrics;

use crate::{ApiError, Probes, body::deserialize_error};

/// Binds the configured address; port 0 picks a free port (tests).
pub fn bind(settings: &Settings) -> std::io::Result<TcpListener> {
    TcpListener::bind((settings.http_host.as_str(), settings.http_port))
}

/// Extractor configuration so that bad input answers our JSON with a 4xx: malformed JSON 400,
/// wrong types 422, too large 413, wrong content type 415, a bad path segment 404, a bad query 400.
pub fn extractor_configs(cfg: &mut web::ServiceConfig, settings: &Settings) {
    cfg.app_data(
        web::JsonConfig::default()
            .limit(settings.json_limit)
            .error_handler(|err, _req| json_error(&err).into()),
    )
    .app_data(
        web::PathConfig::default()
            .error_handler(|_err, _req| ApiError::not_found("Not found").into()),
    )
    .app_data(web::QueryConfig::default().error_handler(|err, _req| {
        ApiError::bad_request(format!("Invalid query string: {err}")).into()
    }))
    .app_data(web::PayloadConfig::default().limit(settings.json_limit));
}

fn json_error(err: &JsonPayloadError) -> ApiError {
    use actix_web::http::StatusCode;
    match err {
        JsonPayloadError::Overflow { .. } | JsonPayloadError::OverflowKnownLength { .. } => {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                "Request body too large",
            )
        }
        JsonPayloadError::ContentType => ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "Content-Type must be application/json",
        ),
        JsonPayloadError::Deserialize(e) => deserialize_error(e),
        _ => ApiError::bad_request("Could not read the request body"),
    }
}

/// Any path no route matches.
pub async fn default_service() -> Result<HttpResponse, ApiError> {
    Err(ApiError::not_found("Not found"))
}

/// `/healthz`, `/readyz` and `/metrics`. The gateway does not route them: they are for the
/// orchestrator and Prometheus on the internal network.
pub fn probe_routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/healthz", web::get().to(healthz))
        .route("/readyz", web::get().to(readyz))
        .route("/metrics", web::get().to(metrics));
}

async fn healthz(probes: web::Data<Probes>) -> HttpResponse {
    let (ok, checks) = Probes::run(&probes.liveness).await;
    let body = serde_json::json!({ "status": if ok { "ok" } else { "failing" }, "checks": checks });
    if ok {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}

async fn readyz(probes: web::Data<Probes>, metrics: web::Data<Metrics>) -> HttpResponse {
    let (ready, body, up) = probes.readiness().await;
    record_dependencies(&metrics, &up);
    if ready {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}

fn record_dependencies(metrics: &Metrics, up: &[(&'static str, bool)]) {
    for (name, ok) in up {
        metrics
            .dependency_up
            .with_label_values(&[*name])
            .set(i64::from(*ok));
    }
}

async fn metrics(
    _req: HttpRequest,
    metrics: web::Data<Metrics>,
    probes: web::Data<Probes>,
) -> HttpResponse {
    // The dependency gauges are current at every scrape, whether or not anything probes
    // `/readyz` (each check is bounded to 2 s).
    let (_, _, up) = probes.readiness().await;
    record_dependencies(&metrics, &up);
    if let Some(pool) = &probes.pool {
        let status = pool.status();
        for (label, value) in [
            ("size", status.size),
            ("available", status.available),
            ("waiting", status.waiting),
            ("max", status.max_size),
        ] {
            metrics.pool.with_label_values(&[label]).set(value as i64);
        }
    }
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(metrics.render())
}
