//! Traces: one trace id follows a purchase from the gateway through billing, the outbox and
//! RabbitMQ to the marketplace consumer. The real billing and marketplace binaries export over
//! OTLP/HTTP to a receiver in this test, which decodes `ExportTraceServiceRequest`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use actix_web::{App, HttpResponse, HttpServer, web};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use opentelemetry_proto::tonic::{
    collector::trace::v1::ExportTraceServiceRequest, common::v1::any_value,
};
use prost::Message;
use reqwest::StatusCode;
use serde_json::{Value, json};
use zimmer_db::schema::automations;
use zimmer_jwt::Role;
use zimmer_testkit::{Gateway, Process, TempDir, TestContext, Upstreams, eventually};

const PANEL: &str = "http://localhost:3000";
const PUBLIC_CALLBACK: &str = "https://zimmer.test/api/payments/zarinpal/callback";

#[derive(Debug, Clone)]
struct Span {
    service: String,
    name: String,
    trace_id: String,
    span_id: String,
    parent: String,
}

type Spans = Arc<Mutex<Vec<Span>>>;

/// Starts an OTLP/HTTP (protobuf) receiver on 127.0.0.1; returns its base URL.
fn receiver(spans: Spans) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = HttpServer::new(move || {
        let spans = spans.clone();
        App::new()
            .app_data(web::PayloadConfig::new(16 * 1024 * 1024))
            .route(
                "/v1/traces",
                web::post().to(move |body: web::Bytes| {
                    let spans = spans.clone();
                    async move {
                        let Ok(req) = ExportTraceServiceRequest::decode(body.as_ref()) else {
                            return HttpResponse::BadRequest().finish();
                        };
                        let mut out = spans.lock().unwrap();
                        for rs in req.resource_spans {
                            let service = rs
                                .resource
                                .iter()
                                .flat_map(|r| r.attributes.iter())
                                .find(|kv| kv.key == "service.name")
                                .and_then(|kv| kv.value.as_ref()?.value.clone())
                                .map(|v| match v {
                                    any_value::Value::StringValue(s) => s,
                                    other => format!("{other:?}"),
                                })
                                .unwrap_or_default();
                            for ss in rs.scope_spans {
                                for s in ss.spans {
                                    out.push(Span {
                                        service: service.clone(),
                                        name: s.name,
                                        trace_id: hex(&s.trace_id),
                                        span_id: hex(&s.span_id),
                                        parent: hex(&s.parent_span_id),
                                    });
                                }
                            }
                        }
                        HttpResponse::Ok()
                            .content_type("application/x-protobuf")
                            .finish()
                    }
                }),
            )
    })
    .workers(1)
    .disable_signals()
    .listen(listener)
    .unwrap()
    .run();
    tokio::spawn(server);
    format!("http://127.0.0.1:{port}")
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_trace_id_links_the_callback_the_event_and_the_marketplace_consumer() {
    let ctx = TestContext::new().await;
    let spans: Spans = Arc::default();
    let otlp = receiver(spans.clone());
    let logs = TempDir::new("zimmer-traces");
    let mut env = ctx.env_pairs();
    env.extend([
        ("OTEL_EXPORTER_OTLP_ENDPOINT".to_owned(), otlp),
        // Export within a fraction of a second instead of the SDK's 5 s batch delay.
        ("OTEL_BSP_SCHEDULE_DELAY".to_owned(), "200".to_owned()),
        ("HEALTH_CHECK_ENABLED".to_owned(), "false".to_owned()),
    ]);
    let fake =
        Process::start_service("zimmer-fake-zarinpal", "fake-zarinpal", &env, &logs.path).await;
    let market =
        Process::start_service("zimmer-marketplace", "marketplace", &env, &logs.path).await;
    let mut billing_env = env.clone();
    billing_env.extend([
        (
            "ZARINPAL_BASE_URL".to_owned(),
            format!("http://127.0.0.1:{}", fake.port),
        ),
        (
            "ZARINPAL_CALLBACK_URL".to_owned(),
            PUBLIC_CALLBACK.to_owned(),
        ),
        ("FRONTEND_URL".to_owned(), PANEL.to_owned()),
    ]);
    let billing =
        Process::start_service("zimmer-billing", "billing", &billing_env, &logs.path).await;
    let gw = Gateway::start(
        &Upstreams {
            marketplace: vec![format!("127.0.0.1:{}", market.port)],
            billing: vec![format!("127.0.0.1:{}", billing.port)],
            ..Upstreams::default()
        },
        &[PANEL],
    )
    .await;
    let http = zimmer_testkit::client();

    let automation_id: i64 = {
        let mut conn = ctx.db.connect().await;
        diesel::insert_into(automations::table)
            .values((
                automations::name.eq("Trace Bot"),
                automations::price_per_token.eq(15_000_i64),
            ))
            .returning(automations::id)
            .get_result(&mut conn)
            .await
            .unwrap()
    };
    let (_, access) = ctx
        .user_with_token("trace@example.com", Role::Customer)
        .await;
    let res = http
        .post(gw.url(&format!("/api/user/automations/{automation_id}")))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success(), "{}", res.status());
    let res = http
        .post(gw.url("/api/payments/zarinpal/init"))
        .bearer_auth(&access)
        .json(&json!({ "automation_id": automation_id, "tokens": 3, "return_path": "/payment/return" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK, "{}", billing.log());
    let init: Value = res.json().await.unwrap();
    let res = http
        .get(init["redirect_url"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FOUND);
    let location = res.headers()["location"].to_str().unwrap().to_owned();
    let path_and_query = location.strip_prefix("https://zimmer.test").unwrap();

    // The callback (which verifies and emits payment.verified) carries our trace context.
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let caller_span = "00f067aa0ba902b7";
    let res = http
        .get(gw.url(path_and_query))
        .header("traceparent", format!("00-{trace_id}-{caller_span}-01"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FOUND, "{}", billing.log());

    let consumer_span = || {
        spans
            .lock()
            .unwrap()
            .iter()
            .find(|s| s.service == "zimmer-marketplace" && s.name == "consume payment.verified")
            .cloned()
    };
    eventually(
        "the marketplace exports its consumer span",
        Duration::from_secs(30),
        || async { consumer_span().is_some() },
    )
    .await;
    let consumer = consumer_span().unwrap();
    // Each service exports in its own batches, so billing's spans (the consumer's parent and
    // the chain above it) may arrive after the consumer's: wait until the chain reaches the
    // caller's span, or the deadline, and only then assert on a snapshot.
    let chain_complete = || {
        let all = spans.lock().unwrap();
        let mut parent = consumer.parent.clone();
        for _ in 0..16 {
            if parent == caller_span {
                return true;
            }
            match all.iter().find(|s| s.span_id == parent) {
                Some(p) => parent = p.parent.clone(),
                None => return false,
            }
        }
        false
    };
    eventually(
        "billing exports the spans from the callback up to the consumer's parent",
        Duration::from_secs(30),
        || async { chain_complete() },
    )
    .await;
    let all = spans.lock().unwrap().clone();
    let summary = || {
        all.iter()
            .map(|s| {
                format!(
                    "{} {} {} {}<-{}",
                    s.service, s.name, s.trace_id, s.span_id, s.parent
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(consumer.trace_id, trace_id, "{}", summary());
    // The consumer's parent is a billing span of the same trace (the request that enqueued).
    let parent = all
        .iter()
        .find(|s| s.span_id == consumer.parent)
        .unwrap_or_else(|| panic!("consumer parent not exported:\n{}", summary()));
    assert_eq!(parent.service, "zimmer-billing", "{}", summary());
    assert_eq!(parent.trace_id, trace_id);
    // …and that chain goes up to the caller's span that came through nginx.
    let mut up = parent.clone();
    for _ in 0..16 {
        match all.iter().find(|s| s.span_id == up.parent) {
            Some(p) => up = p.clone(),
            None => break,
        }
    }
    assert_eq!(up.service, "zimmer-billing", "{}", summary());
    assert_eq!(up.parent, caller_span, "{}", summary());
    // The credit really happened under that trace.
    let mut conn = ctx.db.connect().await;
    eventually("credited", Duration::from_secs(30), || async {
        zimmer_testkit::count(
            &mut ctx.db.connect().await,
            "SELECT count(*) AS n FROM token_ledger WHERE kind = 'purchase'",
        )
        .await
            == 1
    })
    .await;
    assert_eq!(
        zimmer_testkit::count(
            &mut conn,
            "SELECT count(*) AS n FROM token_ledger WHERE kind = 'purchase'"
        )
        .await,
        1
    );
    drop((gw, billing, market, fake));
}
