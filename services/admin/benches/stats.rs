//! How fast admin answers on a production-sized database (100k users, 300k payments, 1M
//! ledger rows): the dashboard statement alone (with the daily rollup, and with every figure
//! from the raw rows as before the rollup), the stats endpoint uncached and cached, the
//! analytics series and the busiest lists, with the dashboard's query plan.
//!
//! Over HTTP it runs auth and admin in-process on the seeded database, as deployed: admin
//! loads the live revocations from auth (until then it answers 503 `revocations_unavailable`,
//! fail-closed), then answers signed manager tokens. Uncached means the dashboard's Redis key
//! is deleted before each call. It ends with a table for the README (p50/p99 of 50 uncached
//! calls against the 50 ms target, and a trivial route of the same server as the ceiling).
//!
//! `bench/admin/run.sh` creates, migrates and seeds the database, then runs
//! `cargo bench -p zimmer-admin --bench stats`. Loopback only; a bounded number of requests.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    sync::atomic::{AtomicU64, Ordering},
    time::{Duration, Instant},
};

use diesel::{
    QueryableByName,
    connection::{Instrumentation, InstrumentationEvent},
    sql_types::Text,
};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;
use zimmer_admin::{ops::STATS_CACHE_KEY, queries::stats};
use zimmer_config::{Env, Settings};
use zimmer_jwt::{Claims, Role, Signer};

/// Uncached calls per endpoint (and calls of the ceiling).
const UNCACHED: usize = 50;

/// Every SQL statement any connection of this process started (admin's pool included: the
/// instrumentation is the default of every connection established after it is set).
static STATEMENTS: AtomicU64 = AtomicU64::new(0);

fn count_statements() -> Option<Box<dyn Instrumentation>> {
    Some(Box::new(|event: InstrumentationEvent<'_>| {
        if let InstrumentationEvent::StartQuery { .. } = event {
            STATEMENTS.fetch_add(1, Ordering::SeqCst);
        }
    }))
}

#[derive(Debug, Clone, Copy)]
struct Picked {
    p99: Duration,
    /// Sequential calls per second (1 / mean).
    rate: f64,
}

fn summary(name: &str, mut samples: Vec<Duration>) -> Picked {
    samples.sort_unstable();
    let pick = |q: f64| samples[((samples.len() as f64 - 1.0) * q).round() as usize];
    println!(
        "{name:<44} n={:<4} min {:>9.2?}  median {:>9.2?}  p95 {:>9.2?}  p99 {:>9.2?}  max {:>9.2?}",
        samples.len(),
        samples[0],
        pick(0.5),
        pick(0.95),
        pick(0.99),
        samples[samples.len() - 1]
    );
    let total: Duration = samples.iter().sum();
    Picked {
        p99: pick(0.99),
        rate: samples.len() as f64 / total.as_secs_f64(),
    }
}

/// One line of the table (every call answered 200: the loops assert it).
fn row(name: &str, samples: &[Duration], ceiling: Picked, target: &str, verdict: &str) -> String {
    let mut sorted = samples.to_vec();
    sorted.sort_unstable();
    let pick = |q: f64| sorted[((sorted.len() as f64 - 1.0) * q).round() as usize];
    let rate = sorted.len() as f64 / sorted.iter().sum::<Duration>().as_secs_f64();
    let ms = |d: Duration| format!("{:.2}ms", d.as_secs_f64() * 1000.0);
    format!(
        "| {name} (n={}) | {rate:.0} | {} | {} | 0 | {:.1} % | {target} | {verdict} |",
        sorted.len(),
        ms(pick(0.5)),
        ms(pick(0.99)),
        100.0 * rate / ceiling.rate
    )
}

#[derive(QueryableByName)]
struct PlanLine {
    #[diesel(sql_type = Text)]
    #[diesel(column_name = "QUERY PLAN")]
    line: String,
}

#[tokio::main]
async fn main() {
    let url = std::env::var("BENCH_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/zimmer_bench_admin".to_owned());
    let mut conn = AsyncPgConnection::establish(&url)
        .await
        .expect("bench database (run bench/admin/run.sh)");
    // The rollup as the worker keeps it (the first run after seeding computes every day).
    let t = Instant::now();
    let run = zimmer_admin::workers::rollup::run_on(&mut conn)
        .await
        .expect("dashboard rollup");
    println!("rollup run: {run:?} in {:.2?}", t.elapsed());
    let t = Instant::now();
    zimmer_admin::workers::rollup::run_on(&mut conn)
        .await
        .expect("dashboard rollup");
    println!("rollup run again (steady state): {:.2?}", t.elapsed());
    let state = stats::rollup_state(&mut conn).await.unwrap();
    let seeded = stats::dashboard(&mut conn).await.expect("dashboard query");
    println!(
        "database: {} users, {} payments, {} user automations",
        seeded.users_total, seeded.payments_total, seeded.user_automations_total
    );
    assert!(
        seeded.users_total >= 100_000 && seeded.payments_total >= 300_000,
        "the database is not seeded: run bench/admin/run.sh"
    );

    // The dashboard statement alone, warm.
    let mut samples = Vec::new();
    for _ in 0..20 {
        let t = Instant::now();
        stats::dashboard(&mut conn).await.unwrap();
        samples.push(t.elapsed());
    }
    summary("SQL  dashboard statement (rollup)", samples);
    // The same statement with the rollup ignored: every figure from the raw rows.
    let mut samples = Vec::new();
    for _ in 0..20 {
        let t = Instant::now();
        let raw: stats::DashboardRow = stats::dashboard_query("", &stats::RollupState::default())
            .get_result(&mut conn)
            .await
            .unwrap();
        samples.push(t.elapsed());
        assert_eq!(raw.revenue_total, seeded.revenue_total);
        assert_eq!(raw.payments_by_status, seeded.payments_by_status);
    }
    summary("SQL  dashboard statement (no rollup)", samples);
    for (name, series, days) in [
        ("SQL  revenue series, 30 days", stats::Series::Revenue, 30),
        ("SQL  revenue series, 365 days", stats::Series::Revenue, 365),
        ("SQL  usage series, 30 days", stats::Series::Usage, 30),
        ("SQL  usage series, 365 days", stats::Series::Usage, 365),
        ("SQL  signups series, 365 days", stats::Series::Signups, 365),
    ] {
        let mut samples = Vec::new();
        for _ in 0..10 {
            let t = Instant::now();
            stats::series(&mut conn, series, days).await.unwrap();
            samples.push(t.elapsed());
        }
        summary(name, samples);
    }

    // The services themselves, on loopback, with their own Redis prefix and exchange: auth
    // (the signing key, and the live revocations admin loads from its internal API at start,
    // as in production: admin keeps refusing tokens with 503 until that load succeeded) and
    // admin. Admin's upstreams all point at auth, so the dashboard's readiness probes get real
    // `/readyz` answers. Every statement of admin's pool is counted (diesel's instrumentation).
    diesel::connection::set_default_instrumentation(count_statements).expect("statement counter");
    let key_pem = zimmer_jwt::generate_ed25519_pem().unwrap();
    let signer = Signer::from_pem(&key_pem).unwrap();
    let public = zimmer_jwt::public_pem_from_private_pem(&key_pem).unwrap();
    let id = Uuid::new_v4().simple().to_string();
    let base = vec![
        ("APP_ENV", "development".to_owned()),
        ("DATABASE_URL", url.clone()),
        ("DATABASE_POOL_SIZE", "4".to_owned()),
        ("HTTP_HOST", "127.0.0.1".to_owned()),
        ("HTTP_PORT", "0".to_owned()),
        ("HTTP_WORKERS", "2".to_owned()),
        ("REDIS_PREFIX", format!("bench:{}:", &id[..12])),
        ("AMQP_EXCHANGE", format!("bench{}.events", &id[..12])),
        ("AMQP_TRANSIENT", "true".to_owned()),
        ("LOG_FORMAT", "pretty".to_owned()),
    ];
    let with = |extra: Vec<(&'static str, String)>| {
        Env::from_pairs(base.iter().cloned().chain(extra).collect::<Vec<_>>())
    };
    let auth = zimmer_auth::build(
        Settings::load("auth", with(vec![("JWT_PRIVATE_KEY", key_pem.clone())])).unwrap(),
    )
    .await
    .expect("auth");
    let auth_url = format!("http://127.0.0.1:{}", auth.port());
    let auth_server = auth.into_server();
    let auth_handle = auth_server.handle();
    tokio::spawn(auth_server);
    let admin_env = with(vec![
        ("JWT_PUBLIC_KEY", public),
        ("AUTH_INTERNAL_URL", auth_url.clone()),
        ("MARKETPLACE_INTERNAL_URL", auth_url.clone()),
        ("BILLING_INTERNAL_URL", auth_url.clone()),
        ("SUPPORT_INTERNAL_URL", auth_url.clone()),
    ]);
    let app = zimmer_admin::build(Settings::load("admin", admin_env).unwrap())
        .await
        .unwrap();
    let redis = app.platform.redis.clone();
    let base = format!("http://127.0.0.1:{}", app.port());
    let server = app.into_server();
    let handle = server.handle();
    tokio::spawn(server);
    let now = chrono::Utc::now().timestamp();
    let token = signer
        .sign(&Claims {
            sub: "5000".to_owned(),
            role: Role::Manager,
            sid: Uuid::new_v4(),
            jti: Uuid::new_v4(),
            iat: now,
            exp: now + 3600,
            iss: "zimmer-auth".to_owned(),
            aud: "zimmer".to_owned(),
            auth_time: None,
        })
        .unwrap();
    let client = reqwest::Client::new();
    let get = |path: &str| {
        client
            .get(format!("{base}{path}"))
            .bearer_auth(&token)
            .send()
    };
    // Ready = the revocations are loaded from auth (bounded: 20 s).
    let mut tries = 0;
    loop {
        let ready = client.get(format!("{base}/readyz")).send().await.unwrap();
        if ready.status() == 200 {
            break;
        }
        tries += 1;
        assert!(
            tries < 200,
            "admin not ready: {}",
            ready.text().await.unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let first = get("/api/admin/dashboard/stats").await.unwrap();
    assert_eq!(
        first.status(),
        200,
        "{}",
        first.text().await.unwrap_or_default()
    );

    let mut table = Vec::new();
    // The ceiling: a trivial route of the same server (no token, no database), same client.
    let mut samples = Vec::new();
    for _ in 0..UNCACHED {
        let t = Instant::now();
        let res = client.get(format!("{base}/healthz")).send().await.unwrap();
        assert_eq!(res.status(), 200);
        let _ = res.bytes().await.unwrap();
        samples.push(t.elapsed());
    }
    let ceiling = summary("HTTP GET /healthz (ceiling)", samples.clone());
    table.push(row(
        "ceiling: GET /healthz (trivial route)",
        &samples,
        ceiling,
        "",
        "",
    ));

    // Uncached: the dashboard's cache key is deleted before each call (not timed), so every
    // answer is computed; each answer's `generated_at` differs from the one before (checked).
    // `/dashboard/stats` is the stats panel; `/dashboard` the admin page's cards (the same
    // cached computation, plus a readiness probe of each upstream).
    for (name, path, field) in [
        (
            "GET /api/admin/dashboard/stats, uncached",
            "/api/admin/dashboard/stats",
            "/generated_at",
        ),
        (
            "GET /api/admin/dashboard, uncached",
            "/api/admin/dashboard",
            "/data/generated_at",
        ),
    ] {
        let mut samples = Vec::new();
        let mut statements = Vec::new();
        let mut generated = std::collections::HashSet::new();
        for _ in 0..UNCACHED {
            redis.delete(&[STATS_CACHE_KEY]).await;
            let before = AtomicU64::load(&STATEMENTS, Ordering::SeqCst);
            let t = Instant::now();
            let res = get(path).await.unwrap();
            assert_eq!(res.status(), 200, "{path}");
            let body = res.bytes().await.unwrap();
            samples.push(t.elapsed());
            statements.push(AtomicU64::load(&STATEMENTS, Ordering::SeqCst) - before);
            let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
            generated.insert(v.pointer(field).unwrap().to_string());
        }
        assert_eq!(
            generated.len(),
            UNCACHED,
            "{path}: an answer came from the cache"
        );
        statements.sort_unstable();
        println!(
            "{name}: SQL statements per request: {}..{}",
            statements[0],
            statements[statements.len() - 1]
        );
        let p = summary(&format!("HTTP {name}"), samples.clone());
        table.push(row(name, &samples, ceiling, "p50 and p99 < 50 ms", {
            if p.p99 < Duration::from_millis(50) {
                "met"
            } else {
                "NOT met"
            }
        }));
    }
    let mut samples = Vec::new();
    for _ in 0..200 {
        let t = Instant::now();
        let res = get("/api/admin/dashboard/stats").await.unwrap();
        let _ = res.bytes().await.unwrap();
        samples.push(t.elapsed());
    }
    let name = "GET /api/admin/dashboard/stats, cached";
    summary(&format!("HTTP {name}"), samples.clone());
    table.push(row(name, &samples, ceiling, "", ""));
    for (name, path, cache_key) in [
        (
            "HTTP GET analytics/revenue?days=30 (uncached)",
            "/api/admin/analytics/revenue?days=30",
            Some("admin:analytics:revenue:30:v1"),
        ),
        (
            "HTTP GET analytics/usage?days=365 (uncached)",
            "/api/admin/analytics/usage?days=365",
            Some("admin:analytics:usage:365:v1"),
        ),
        ("HTTP GET users?page=1", "/api/admin/users", None),
        (
            "HTTP GET users?search=user4242",
            "/api/admin/users?search=user4242",
            None,
        ),
        (
            "HTTP GET users?role=customer&is_active=false",
            "/api/admin/users?role=customer&is_active=false",
            None,
        ),
        ("HTTP GET payments?page=1", "/api/admin/payments", None),
        (
            "HTTP GET payments?status=succeeded&page=50",
            "/api/admin/payments?status=succeeded&page=50",
            None,
        ),
        (
            "HTTP GET payments?user_id=4242",
            "/api/admin/payments?user_id=4242",
            None,
        ),
        ("HTTP GET tokens/history", "/api/admin/tokens/history", None),
        (
            "HTTP GET tickets?status=open",
            "/api/admin/tickets?status=open",
            None,
        ),
        (
            "HTTP GET user-automations?automation_id=7",
            "/api/admin/user-automations?automation_id=7",
            None,
        ),
    ] {
        let mut samples = Vec::new();
        for _ in 0..10 {
            if let Some(k) = cache_key {
                redis.delete(&[k]).await;
            }
            let t = Instant::now();
            let res = get(path).await.unwrap();
            assert_eq!(res.status(), 200, "{path}");
            let _ = res.bytes().await.unwrap();
            samples.push(t.elapsed());
        }
        summary(name, samples);
    }

    println!("\nEXPLAIN (ANALYZE, BUFFERS) of the dashboard statement:");
    let plan: Vec<PlanLine> = stats::dashboard_query("EXPLAIN (ANALYZE, BUFFERS) ", &state)
        .load(&mut conn)
        .await
        .unwrap();
    for l in plan {
        println!("  {}", l.line);
    }
    handle.stop(true).await;
    auth_handle.stop(true).await;

    // Rows for the README's performance table (bench/load/run.sh's columns; one client,
    // sequential calls, so req/s is 1 / mean latency; share = of the ceiling's req/s).
    println!("\n| scenario | req/s | p50 | p99 | non-2xx | share | target | |");
    println!("| --- | --- | --- | --- | --- | --- | --- | --- |");
    for r in table {
        println!("{r}");
    }
}
