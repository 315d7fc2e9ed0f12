//! Faults, scripted and bounded, loopback only: one real `zimmer-marketplace` process reaches
//! PostgreSQL, Redis and RabbitMQ through `ToggleProxy`s the test cuts and restores (the
//! machine's shared servers are never stopped). The service answers what it can, says 503 on
//! `/readyz` only while its database is gone (Redis and the broker are reported as degraded
//! in the body and in `zimmer_dependency_up`, the instance stays ready), recovers by itself,
//! and no credit, spend or event is lost or doubled.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use zimmer_testkit::{Process, TempDir, TestContext, ToggleProxy, eventually};

use crate::fixtures::{Funded, funded_automation};

const WAIT: Duration = Duration::from_secs(60);

struct Market {
    ctx: TestContext,
    process: Process,
    http: reqwest::Client,
    f: Funded,
    _logs: TempDir,
    /// What the instance reaches PostgreSQL, Redis and RabbitMQ through (open at first; last,
    /// so dropped after the process).
    pg: ToggleProxy,
    redis: ToggleProxy,
    amqp: ToggleProxy,
}

impl Market {
    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.process.port)
    }

    async fn readyz(&self) -> StatusCode {
        self.http
            .get(self.url("/readyz"))
            .send()
            .await
            .unwrap()
            .status()
    }

    /// `/readyz`'s status and body.
    async fn readiness(&self) -> (StatusCode, Value) {
        let res = self.http.get(self.url("/readyz")).send().await.unwrap();
        let status = res.status();
        (status, res.json().await.unwrap_or(Value::Null))
    }

    /// `zimmer_dependency_up{dependency=…}` as scraped from `/metrics`.
    async fn dependency_up(&self, dependency: &str) -> Option<i64> {
        let text = zimmer_testkit::scrape_metrics(&self.http, &self.process.url()).await;
        let label = format!("dependency=\"{dependency}\"");
        text.lines()
            .find(|l| l.starts_with("zimmer_dependency_up{") && l.contains(&label))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
    }

    /// Waits until `dependency` is reported degraded while the instance stays ready.
    async fn degraded_but_ready(&self, dependency: &str) {
        eventually(
            &format!("readyz reports {dependency} degraded and stays 200"),
            WAIT,
            || async {
                let (status, body) = self.readiness().await;
                status == StatusCode::OK
                    && body["status"] == "degraded"
                    && body["degraded"].get(dependency).is_some()
            },
        )
        .await;
        assert_eq!(self.dependency_up(dependency).await, Some(0));
    }

    async fn consume(&self, units: i64, key: &str) -> (StatusCode, Value) {
        let res = self
            .http
            .post(self.url("/api/automation-usage/consume"))
            .header("X-Zimmer-Service-Token", &self.f.service_token)
            .json(&json!({ "user_automation_id": self.f.user_automation_id, "units": units, "idempotency_key": key }))
            .send()
            .await
            .unwrap();
        let status = res.status();
        (status, res.json().await.unwrap_or(Value::Null))
    }

    async fn n(&self, sql: &str) -> i64 {
        zimmer_testkit::count(&mut self.ctx.db.connect().await, sql).await
    }

    async fn balance(&self) -> i64 {
        self.n(&format!(
            "SELECT tokens_remaining AS n FROM user_automations WHERE id = {}",
            self.f.user_automation_id
        ))
        .await
    }

    async fn spends(&self) -> i64 {
        self.n(&format!(
            "SELECT count(*) AS n FROM token_ledger WHERE kind = 'consumption' AND user_automation_id = {}",
            self.f.user_automation_id
        ))
        .await
    }
}

/// A marketplace process whose database, Redis and broker connections go through proxies of
/// its own, with a funded user automation (`paid` tokens).
async fn market(paid: i64) -> Market {
    let pg = ToggleProxy::start("127.0.0.1:5432", true).await;
    let redis = ToggleProxy::start("127.0.0.1:6379", true).await;
    let amqp = ToggleProxy::start("127.0.0.1:5672", true).await;
    let ctx = TestContext::new().await;
    let logs = TempDir::new("zimmer-faults");
    let mut env: Vec<(String, String)> = ctx
        .env_pairs()
        .into_iter()
        .map(|(k, v)| {
            if k == "DATABASE_URL" {
                let v = v.replace("127.0.0.1:5432", &format!("127.0.0.1:{}", pg.port));
                (
                    k,
                    v.replace("localhost:5432", &format!("127.0.0.1:{}", pg.port)),
                )
            } else {
                (k, v)
            }
        })
        .collect();
    env.extend([
        (
            "REDIS_URL".to_owned(),
            format!("redis://127.0.0.1:{}", redis.port),
        ),
        (
            "AMQP_URL".to_owned(),
            format!("amqp://guest:guest@127.0.0.1:{}/%2f", amqp.port),
        ),
        ("HEALTH_CHECK_ENABLED".to_owned(), "false".to_owned()),
    ]);
    let process =
        Process::start_service("zimmer-marketplace", "marketplace", &env, &logs.path).await;
    let http = zimmer_testkit::client();
    let base = format!("http://127.0.0.1:{}", process.port);
    let f = funded_automation(&ctx, &http, &base, &base, "fault", paid).await;
    Market {
        pg,
        redis,
        amqp,
        ctx,
        process,
        http,
        f,
        _logs: logs,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_cut_is_reported_degraded_not_unready_and_consumption_stays_exact() {
    let m = market(10).await;
    assert_eq!(m.readyz().await, StatusCode::OK);

    assert_eq!(m.dependency_up("redis").await, Some(1));

    // Redis is best effort: the instance stays in the load balancer, degraded.
    m.redis.disable();
    m.degraded_but_ready("redis").await;
    // The money path does not need Redis: spends are still exact and idempotent.
    let (s, a) = m.consume(2, "r-1").await;
    assert_eq!(s, StatusCode::OK, "{a} {}", m.process.log());
    assert_eq!(a["accepted"], true);
    let (s, again) = m.consume(2, "r-1").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(again, a, "the retry replays, it does not spend twice");

    m.redis.enable();
    eventually("readyz is clean again with Redis", WAIT, || async {
        let (status, body) = m.readiness().await;
        status == StatusCode::OK && body["status"] == "ready"
    })
    .await;
    assert_eq!(m.dependency_up("redis").await, Some(1));
    let (s, b) = m.consume(1, "r-2").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(b["remaining_paid_tokens"], 7);
    assert_eq!(m.balance().await, 7);
    assert_eq!(m.spends().await, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_cut_is_a_clear_503_and_the_pool_recovers_without_losing_a_spend() {
    let m = market(10).await;
    let (s, _) = m.consume(1, "p-1").await;
    assert_eq!(s, StatusCode::OK);

    // Without its database the instance cannot serve: not ready.
    m.pg.disable();
    eventually("readyz reports the database down", WAIT, || async {
        m.readyz().await == StatusCode::SERVICE_UNAVAILABLE
    })
    .await;
    assert_eq!(m.readiness().await.1["status"], "not_ready");
    // A spend while the database is gone is refused with a retryable 503, never a 500…
    let (s, body) = m.consume(3, "p-2").await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["code"], "unavailable");
    // …and Prometheus still answers (it needs nothing but the process).
    let res = m.http.get(m.url("/metrics")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);

    m.pg.enable();
    eventually("the pool reconnects by itself", WAIT, || async {
        m.readyz().await == StatusCode::OK
    })
    .await;
    // The vendor retries with the same key: charged exactly once.
    let (s, a) = m.consume(3, "p-2").await;
    assert_eq!(s, StatusCode::OK, "{a}");
    assert_eq!(a["accepted"], true);
    assert_eq!(a["remaining_paid_tokens"], 6);
    let (_, again) = m.consume(3, "p-2").await;
    assert_eq!(again, a);
    assert_eq!(m.balance().await, 6);
    assert_eq!(m.spends().await, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rabbitmq_cut_mid_run_holds_events_in_the_outbox_and_publishes_each_once_after() {
    let m = market(4).await;
    eventually("the funding event is published", WAIT, || async {
        m.n("SELECT count(*) AS n FROM outbox WHERE published_at IS NULL")
            .await
            == 0
    })
    .await;

    // The outbox keeps writes safe: a broker outage degrades the instance, it stays ready.
    m.amqp.disable();
    m.degraded_but_ready("broker").await;
    // Spending down to zero emits tokens.low / tokens.depleted while the broker is gone: the
    // request succeeds, the events wait in the outbox.
    let (s, a) = m.consume(4, "q-1").await;
    assert_eq!(s, StatusCode::OK, "{a}");
    assert_eq!(a["accepted"], true);
    assert_eq!(a["remaining_paid_tokens"], 0);
    let pending = m
        .n("SELECT count(*) AS n FROM outbox WHERE published_at IS NULL")
        .await;
    assert!(pending >= 1, "events are held while the broker is down");

    m.amqp.enable();
    eventually(
        "the relay reconnects and drains the outbox",
        WAIT,
        || async {
            m.n("SELECT count(*) AS n FROM outbox WHERE published_at IS NULL")
                .await
                == 0
        },
    )
    .await;
    eventually("readyz is clean again with the broker", WAIT, || async {
        let (status, body) = m.readiness().await;
        status == StatusCode::OK && body["status"] == "ready"
    })
    .await;
    assert_eq!(
        m.n("SELECT count(*) AS n FROM outbox WHERE event_type = 'tokens.depleted'")
            .await,
        1,
        "one depletion event, not one per retry"
    );
    assert_eq!(m.balance().await, 0);
    assert_eq!(m.spends().await, 1);
}
