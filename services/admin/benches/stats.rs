//! How fast admin answers on a production-sized database (100k users, 300k payments, 1M
//! ledger rows): the dashboard statement alone (with the daily rollup, and with every figure
//! from the raw rows as before the rollup), the stats endpoint uncached and cached, the
//! analytics series and the busiest lists, with the dashboard's query plan.
//!
//! `bench/admin/run.sh` creates, migrates and seeds the database, then runs
//! `cargo bench -p zimmer-admin --bench stats`. Loopback only; a bounded number of requests.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use diesel::{QueryableByName, sql_types::Text};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;
use zimmer_admin::{ops::STATS_CACHE_KEY, queries::stats};
use zimmer_config::{Env, Settings};
use zimmer_jwt::{Claims, Role, Signer};

fn summary(name: &str, mut samples: Vec<Duration>) {
    samples.sort_unstable();
    let pick = |q: f64| samples[((samples.len() as f64 - 1.0) * q).round() as usize];
    println!(
        "{name:<44} n={:<4} min {:>9.2?}  median {:>9.2?}  p95 {:>9.2?}  max {:>9.2?}",
        samples.len(),
        samples[0],
        pick(0.5),
        pick(0.95),
        samples[samples.len() - 1]
    );
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

    // The service itself, on loopback, with its own Redis prefix and exchange.
    let key_pem = zimmer_jwt::generate_ed25519_pem().unwrap();
    let signer = Signer::from_pem(&key_pem).unwrap();
    let public = zimmer_jwt::public_pem_from_private_pem(&key_pem).unwrap();
    let id = Uuid::new_v4().simple().to_string();
    let env = Env::from_pairs([
        ("DATABASE_URL", url.clone()),
        ("DATABASE_POOL_SIZE", "4".to_owned()),
        ("HTTP_HOST", "127.0.0.1".to_owned()),
        ("HTTP_PORT", "0".to_owned()),
        ("HTTP_WORKERS", "2".to_owned()),
        ("JWT_PUBLIC_KEY", public),
        ("REDIS_PREFIX", format!("bench:{}:", &id[..12])),
        ("AMQP_EXCHANGE", format!("bench{}.events", &id[..12])),
        ("AMQP_TRANSIENT", "true".to_owned()),
        ("LOG_FORMAT", "pretty".to_owned()),
    ]);
    let settings = Settings::load("admin", env).unwrap();
    let app = zimmer_admin::build(settings).await.unwrap();
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
    // A fresh instance answers 503 until it has loaded the session revocations: wait for it.
    let mut tries = 0;
    loop {
        let first = get("/api/admin/dashboard/stats").await.unwrap();
        if first.status() == 200 || tries == 100 {
            let status = first.status();
            assert_eq!(status, 200, "{}", first.text().await.unwrap_or_default());
            break;
        }
        tries += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let mut samples = Vec::new();
    for _ in 0..20 {
        redis.delete(&[STATS_CACHE_KEY]).await;
        let t = Instant::now();
        let res = get("/api/admin/dashboard/stats").await.unwrap();
        let _ = res.bytes().await.unwrap();
        samples.push(t.elapsed());
    }
    summary("HTTP GET dashboard/stats (uncached)", samples);
    let mut samples = Vec::new();
    for _ in 0..200 {
        let t = Instant::now();
        let res = get("/api/admin/dashboard/stats").await.unwrap();
        let _ = res.bytes().await.unwrap();
        samples.push(t.elapsed());
    }
    summary("HTTP GET dashboard/stats (cached)", samples);

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
}
