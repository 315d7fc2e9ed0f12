//! Logs, traces and metrics, set up the same way in every service.
//!
//! - `tracing` with JSON lines (or pretty ones for local work), filtered by `RUST_LOG`,
//!   written to stdout by a writer thread ([`writer`]), not on the request's path.
//! - OpenTelemetry: every span goes through an SDK tracer so trace ids exist and propagate even
//!   when nothing is exported; spans are exported over OTLP/HTTP only when
//!   `OTEL_EXPORTER_OTLP_ENDPOINT` is set.
//! - W3C trace context is carried in string maps, which HTTP and AMQP helpers fill and read.
//! - Prometheus metrics live in a [`Metrics`] value each app owns (no process globals, so
//!   several apps can run in one test process).

use std::{collections::HashMap, sync::OnceLock};

use opentelemetry::{
    global,
    propagation::{Extractor, Injector},
    trace::TracerProvider as _,
};
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::{Resource, propagation::TraceContextPropagator, trace::SdkTracerProvider};
use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry};
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::{EnvFilter, layer::SubscriberExt, util::SubscriberInitExt};
use zimmer_config::Settings;

pub mod writer;

static PROVIDER: OnceLock<SdkTracerProvider> = OnceLock::new();

/// Flushes exported spans when dropped (at process exit).
pub struct TelemetryGuard;

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        writer::flush();
        if let Some(provider) = PROVIDER.get() {
            let _ = provider.shutdown();
        }
    }
}

/// Installs the global subscriber once per process; later calls (tests) are no-ops.
pub fn init(settings: &Settings) -> TelemetryGuard {
    if PROVIDER.get().is_some() {
        return TelemetryGuard;
    }
    global::set_text_map_propagator(TraceContextPropagator::new());
    let mut builder = SdkTracerProvider::builder().with_resource(
        Resource::builder()
            .with_service_name(format!("zimmer-{}", settings.service))
            .build(),
    );
    let mut export_error = None;
    if let Some(endpoint) = &settings.otlp_endpoint {
        let url = format!("{}/v1/traces", endpoint.trim_end_matches('/'));
        match opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_endpoint(url)
            .build()
        {
            Ok(exporter) => builder = builder.with_batch_exporter(exporter),
            Err(e) => export_error = Some(e.to_string()),
        }
    }
    let provider = builder.build();
    let tracer = provider.tracer(format!("zimmer-{}", settings.service));
    global::set_tracer_provider(provider.clone());
    let _ = PROVIDER.set(provider);

    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,lapin=warn,h2=warn,hyper=warn,reqwest=warn"));
    let otel = tracing_opentelemetry::layer().with_tracer(tracer);
    let registry = tracing_subscriber::registry().with(filter).with(otel);
    // LOG_WRITER=direct writes on the caller's thread as before (to measure the difference).
    let out = if settings.env.string("LOG_WRITER", "thread") == "direct" {
        None
    } else {
        writer::non_blocking()
    };
    let result = match (settings.log_json, out) {
        (true, Some(out)) => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .with_current_span(true)
                    .with_span_list(false)
                    .with_writer(out),
            )
            .try_init(),
        (true, None) => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .with_current_span(true)
                    .with_span_list(false),
            )
            .try_init(),
        (false, Some(out)) => registry
            .with(tracing_subscriber::fmt::layer().with_writer(out))
            .try_init(),
        (false, None) => registry.with(tracing_subscriber::fmt::layer()).try_init(),
    };
    drop(result); // already set by an earlier app in this process: keep that one
    if let Some(e) = export_error {
        tracing::warn!(error = %e, "OTLP exporter could not be built; spans are not exported");
    }
    TelemetryGuard
}

/// The current span's W3C context (`traceparent`, `tracestate`) as a string map.
pub fn current_context_headers() -> HashMap<String, String> {
    let mut map = HashMap::new();
    let context = tracing::Span::current().context();
    global::get_text_map_propagator(|p| p.inject_context(&context, &mut MapInjector(&mut map)));
    map
}

/// Makes `span` a child of the remote context found in `headers`, if any.
pub fn set_parent_from<'a, I>(span: &tracing::Span, headers: I)
where
    I: IntoIterator<Item = (&'a str, &'a str)>,
{
    // Only the two headers the W3C propagator reads: this runs on every request, and
    // copying every header into the map was an allocation per header.
    let map: HashMap<String, String> = headers
        .into_iter()
        .filter(|(k, _)| {
            k.eq_ignore_ascii_case("traceparent") || k.eq_ignore_ascii_case("tracestate")
        })
        .map(|(k, v)| (k.to_ascii_lowercase(), v.to_owned()))
        .collect();
    if !map.contains_key("traceparent") {
        return;
    }
    let parent = global::get_text_map_propagator(|p| p.extract(&MapExtractor(&map)));
    let _ = span.set_parent(parent);
}

/// The trace id of the current span, for log lines and error bodies.
pub fn current_trace_id() -> Option<String> {
    use opentelemetry::trace::TraceContextExt;
    let context = tracing::Span::current().context();
    let span_context = context.span().span_context().clone();
    span_context
        .is_valid()
        .then(|| span_context.trace_id().to_string())
}

struct MapInjector<'a>(&'a mut HashMap<String, String>);
impl Injector for MapInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        self.0.insert(key.to_owned(), value);
    }
}

struct MapExtractor<'a>(&'a HashMap<String, String>);
impl Extractor for MapExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }
    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(String::as_str).collect()
    }
}

/// The Prometheus registry and the metrics every service exports.
#[derive(Clone)]
pub struct Metrics {
    pub registry: Registry,
    pub http_requests: IntCounterVec,
    pub http_duration: HistogramVec,
    pub pool: IntGaugeVec,
    pub outbox_pending: IntGaugeVec,
    pub events_published: IntCounterVec,
    pub events_consumed: IntCounterVec,
    pub events_dead_lettered: IntCounterVec,
    /// Consumer lag: messages waiting in each consumer's queue and its dead-letter queue.
    pub events_queue_depth: IntGaugeVec,
    /// 1 when a dependency answers, 0 when it does not (set by `/readyz` and at each scrape);
    /// the degraded ones (broker, Redis, outbox backlog) never fail readiness, so alert on this.
    pub dependency_up: IntGaugeVec,
}

impl Metrics {
    pub fn new(service: &str) -> Self {
        let registry = Registry::new_custom(
            Some("zimmer".into()),
            Some(HashMap::from([("service".to_owned(), service.to_owned())])),
        )
        .unwrap_or_default();
        let counter = |name: &str, help: &str, labels: &[&str]| {
            let c = IntCounterVec::new(Opts::new(name, help), labels)
                .unwrap_or_else(|e| unreachable!("static metric definition: {e}"));
            let _ = registry.register(Box::new(c.clone()));
            c
        };
        let gauge = |name: &str, help: &str, labels: &[&str]| {
            let g = IntGaugeVec::new(Opts::new(name, help), labels)
                .unwrap_or_else(|e| unreachable!("static metric definition: {e}"));
            let _ = registry.register(Box::new(g.clone()));
            g
        };
        let http_duration = HistogramVec::new(
            HistogramOpts::new(
                "http_request_duration_seconds",
                "HTTP request latency by route",
            )
            .buckets(vec![
                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
            ]),
            &["method", "route"],
        )
        .unwrap_or_else(|e| unreachable!("static metric definition: {e}"));
        let _ = registry.register(Box::new(http_duration.clone()));
        Self {
            http_requests: counter(
                "http_requests_total",
                "HTTP requests by route and status",
                &["method", "route", "status"],
            ),
            http_duration,
            pool: gauge(
                "db_pool_connections",
                "Database pool connections by state",
                &["state"],
            ),
            outbox_pending: gauge(
                "outbox_pending_events",
                "Events written but not yet confirmed by the broker",
                &["producer"],
            ),
            events_published: counter(
                "events_published_total",
                "Events published with a broker confirm",
                &["type"],
            ),
            events_consumed: counter(
                "events_consumed_total",
                "Events handled by consumers, by outcome",
                &["consumer", "type", "outcome"],
            ),
            events_dead_lettered: counter(
                "events_dead_lettered_total",
                "Events sent to the dead-letter exchange",
                &["consumer", "type"],
            ),
            events_queue_depth: gauge(
                "events_queue_depth",
                "Messages waiting in a consumer's queue (lag) or its dead-letter queue",
                &["consumer", "queue"],
            ),
            dependency_up: gauge(
                "dependency_up",
                "Whether a dependency of this instance is usable (1) or not (0)",
                &["dependency"],
            ),
            registry,
        }
    }

    /// Prometheus text exposition of everything registered.
    pub fn render(&self) -> String {
        use prometheus::Encoder;
        let mut buf = Vec::new();
        let _ = prometheus::TextEncoder::new().encode(&self.registry.gather(), &mut buf);
        String::from_utf8(buf).unwrap_or_default()
    }
}
