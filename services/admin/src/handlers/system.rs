//! System status: each service's own readiness (its `/readyz` at the internal URLs), admin's
//! database, Redis and broker, the depth of the consumer queues (main, retry, dead letters)
//! and the outbox backlog per producer. Every probe is bounded in time and runs concurrently,
//! so one dead dependency makes the page say so instead of hanging it.

use std::time::{Duration, Instant};

use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use diesel::{
    QueryableByName,
    sql_types::{BigInt, Text, Timestamptz},
};
use diesel_async::RunQueryDsl;
use lapin::{Connection, ConnectionProperties, options::QueueDeclareOptions, types::FieldTable};
use serde::Serialize;
use serde_json::{Value, json};
use zimmer_events::topology;
use zimmer_http::HttpResult;

use crate::{AppState, clients::Service, rbac::Staff};

const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Debug, Serialize)]
struct Check {
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    latency_ms: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

impl Check {
    fn of(started: Instant, result: Result<(), String>) -> Self {
        let latency_ms = Some((started.elapsed().as_secs_f64() * 1e4).round() / 10.0);
        match result {
            Ok(()) => Self {
                status: "ok",
                latency_ms,
                error: None,
            },
            Err(e) => Self {
                status: "failing",
                latency_ms,
                error: Some(e),
            },
        }
    }
}

#[derive(Debug, Serialize)]
struct QueueDepth {
    name: String,
    /// Messages waiting (None: the queue does not exist yet, i.e. its consumer never ran).
    messages: Option<u32>,
    consumers: Option<u32>,
    retrying: Option<u32>,
    dead_lettered: Option<u32>,
}

#[derive(Debug, QueryableByName, Serialize)]
struct OutboxBacklog {
    #[diesel(sql_type = Text)]
    producer: String,
    #[diesel(sql_type = BigInt)]
    pending: i64,
    #[diesel(sql_type = Timestamptz)]
    oldest_created_at: DateTime<Utc>,
}

async fn bounded<F, T>(f: F) -> Result<T, String>
where
    F: Future<Output = Result<T, String>>,
{
    tokio::time::timeout(PROBE_TIMEOUT, f)
        .await
        .unwrap_or_else(|_| Err("timed out".to_owned()))
}

async fn database(state: &AppState) -> (Check, Vec<OutboxBacklog>) {
    let started = Instant::now();
    let result = bounded(async {
        let mut conn = state.platform.pool.get().await.map_err(|e| e.to_string())?;
        diesel::sql_query(
            "SELECT producer, count(*) AS pending, min(created_at) AS oldest_created_at \
             FROM outbox WHERE published_at IS NULL GROUP BY producer ORDER BY producer",
        )
        .load::<OutboxBacklog>(&mut conn)
        .await
        .map_err(|e| e.to_string())
    })
    .await;
    match result {
        Ok(backlog) => (Check::of(started, Ok(())), backlog),
        Err(e) => (Check::of(started, Err(e)), Vec::new()),
    }
}

async fn redis(state: &AppState) -> Check {
    let started = Instant::now();
    let r = bounded(state.platform.redis.ping()).await;
    Check::of(started, r)
}

/// Passive declares on a connection of its own: a missing queue closes the channel with an
/// error, which must not disturb the service's shared connection (it carries the revocation
/// feed).
async fn queue_depths(state: &AppState) -> Result<Vec<QueueDepth>, String> {
    let amqp = &state.platform.settings.amqp;
    let conn = Connection::connect(amqp.url.expose(), ConnectionProperties::default())
        .await
        .map_err(|e| format!("cannot connect: {e}"))?;
    let mut out = Vec::new();
    for name in &state.config.watched_queues {
        let queue = topology::queue_name(amqp, name);
        let mut counts = Vec::with_capacity(3);
        for q in [
            queue.clone(),
            topology::retry_queue_name(&queue),
            topology::dead_letter_queue_name(&queue),
        ] {
            counts.push(passive_declare(&conn, &q).await);
        }
        out.push(QueueDepth {
            name: queue,
            messages: counts[0].map(|c| c.0),
            consumers: counts[0].map(|c| c.1),
            retrying: counts[1].map(|c| c.0),
            dead_lettered: counts[2].map(|c| c.0),
        });
    }
    let _ = conn.close(200, "status checked".into()).await;
    Ok(out)
}

async fn passive_declare(conn: &Connection, queue: &str) -> Option<(u32, u32)> {
    let channel = conn.create_channel().await.ok()?;
    let declared = channel
        .queue_declare(
            queue.into(),
            QueueDeclareOptions {
                passive: true,
                ..QueueDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await
        .ok();
    if declared.is_some() {
        let _ = channel.close(200, "ok".into()).await;
    }
    declared.map(|q| (q.message_count(), q.consumer_count()))
}

async fn broker(state: &AppState) -> Value {
    let started = Instant::now();
    let connected = state.platform.broker.ping().await;
    let check = Check::of(started, connected.clone());
    let queues = match connected {
        Ok(()) => match bounded(queue_depths(state)).await {
            Ok(q) => json!(q),
            Err(e) => json!({ "error": e }),
        },
        Err(_) => Value::Null,
    };
    json!({ "status": check.status, "error": check.error, "queues": queues })
}

async fn service(state: &AppState, s: Service) -> (String, Value) {
    let started = Instant::now();
    let (status, body) = state.upstreams.readyz(s, PROBE_TIMEOUT).await;
    let ready = status == Some(200);
    let latency_ms = (started.elapsed().as_secs_f64() * 1e4).round() / 10.0;
    (
        s.name().to_owned(),
        json!({
            "status": if ready { "ready" } else if status.is_some() { "not_ready" } else { "unreachable" },
            "url": state.upstreams.base(s),
            "http_status": status,
            "latency_ms": latency_ms,
            "checks": body.get("checks").cloned().unwrap_or(body),
        }),
    )
}

/// `GET /api/admin/system/status`
pub async fn status(_staff: Staff, state: web::Data<AppState>) -> HttpResult {
    let services = futures_util::future::join_all(Service::ALL.map(|s| service(&state, s)));
    let ((db, backlog), redis, broker, services) =
        tokio::join!(database(&state), redis(&state), broker(&state), services);
    let mut all_ok = db.status == "ok" && redis.status == "ok" && broker["status"] == "ok";
    let mut map = serde_json::Map::new();
    map.insert(
        "admin".to_owned(),
        json!({
            "status": if all_ok { "ready" } else { "not_ready" },
            "version": env!("CARGO_PKG_VERSION"),
        }),
    );
    for (name, v) in services {
        all_ok &= v["status"] == "ready";
        map.insert(name, v);
    }
    Ok(HttpResponse::Ok().json(json!({
        "status": if all_ok { "ok" } else { "degraded" },
        "version": env!("CARGO_PKG_VERSION"),
        "environment": if state.platform.settings.is_production() { "production" } else { "development" },
        "services": map,
        "database": db,
        "redis": redis,
        "broker": broker,
        "outbox": backlog,
        "checked_at": Utc::now(),
    })))
}
