//! Scale-out: two real `zimmer-marketplace` processes behind the real nginx gateway share one
//! database; token consumption stays exact and idempotency keys hold across instances.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use diesel_async::AsyncPgConnection;
use futures_util::future::join_all;
use reqwest::StatusCode;
use serde_json::{Value, json};
use zimmer_testkit::{Gateway, Process, TempDir, TestContext, Upstreams};

use crate::fixtures::{adjust, funded_automation};

/// Background loops kept quiet: this test is about the request path.
const QUIET: &[(&str, &str)] = &[
    ("HEALTH_CHECK_ENABLED", "false"),
    ("PROVISION_POLL_MS", "100"),
    ("PROVISION_ATTEMPTS", "1"),
    ("PROVISION_BACKOFF_MS", "20"),
    ("PROVISION_TIMEOUT_MS", "2000"),
];

fn base(p: &Process) -> String {
    format!("http://127.0.0.1:{}", p.port)
}

/// `zimmer_marketplace_consume_total` summed per outcome, as one instance counted it.
async fn consumed(client: &reqwest::Client, p: &Process, outcome: &str) -> u64 {
    let text = zimmer_testkit::scrape_metrics(client, &base(p)).await;
    zimmer_testkit::metric_sum(
        &text,
        "zimmer_marketplace_consume_total",
        &[("outcome", outcome)],
    )
}

/// One spend posted to `url` with the service token: 200 and its answer.
async fn spend(client: &reqwest::Client, url: &str, token: &str, body: &Value) -> Value {
    let res = client
        .post(url)
        .header("X-Zimmer-Service-Token", token)
        .json(body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    res.json().await.unwrap()
}

/// The customer automation's paid balance.
async fn balance(conn: &mut AsyncPgConnection, ua: i64) -> i64 {
    let sql = format!("SELECT tokens_remaining AS n FROM user_automations WHERE id = {ua}");
    zimmer_testkit::count(conn, &sql).await
}

/// Its consumption entries in the ledger.
async fn consumptions(conn: &mut AsyncPgConnection, ua: i64) -> i64 {
    let sql = format!(
        "SELECT count(*) AS n FROM token_ledger WHERE kind = 'consumption' AND user_automation_id = {ua}"
    );
    zimmer_testkit::count(conn, &sql).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_marketplace_instances_behind_nginx_consume_exactly_the_balance() {
    let ctx = TestContext::new().await;
    let mut env = ctx.env_pairs();
    for (k, v) in QUIET {
        env.push(((*k).to_owned(), (*v).to_owned()));
    }
    // Separate log dirs: both processes are "marketplace".
    let (logs_a, logs_b) = (TempDir::new("zimmer-so-a"), TempDir::new("zimmer-so-b"));
    let a = Process::start_service("zimmer-marketplace", "marketplace", &env, &logs_a.path).await;
    let b = Process::start_service("zimmer-marketplace", "marketplace", &env, &logs_b.path).await;
    let gw = Gateway::start(
        &Upstreams {
            marketplace: vec![
                format!("127.0.0.1:{}", a.port),
                format!("127.0.0.1:{}", b.port),
            ],
            ..Upstreams::default()
        },
        &["http://localhost:3000"],
    )
    .await;
    let client = zimmer_testkit::client();

    // Set-up through the internal API of instance A (not reachable through the gateway).
    let f = funded_automation(&ctx, &client, &base(&a), &gw.url(""), "scale", 0).await;
    let (ua, token) = (f.user_automation_id, f.service_token.clone());
    let adjust = |delta: i64, key: &'static str, at: String| {
        let (client, f) = (client.clone(), &f);
        async move { adjust(&client, &at, f, delta, key).await }
    };
    assert_eq!(adjust(40, "fund-40", base(&a)).await, StatusCode::CREATED);

    // 60 concurrent 1-token calls through the gateway (under its burst of 100 per IP); nginx
    // spreads them over both instances.
    let consume = gw.url("/api/automation-usage/consume");
    let body = json!({ "user_automation_id": ua, "units": 1 });
    let calls = (0..60).map(|_| spend(&client, &consume, &token, &body));
    let answers = join_all(calls).await;
    let accepted = answers.iter().filter(|x| x["accepted"] == true).count();
    assert_eq!(accepted, 40, "exactly the balance is accepted: {answers:?}");
    assert!(
        answers
            .iter()
            .filter(|x| x["accepted"] == false)
            .all(|x| x["reason"] == "insufficient_tokens")
    );
    let mut conn = ctx.db.connect().await;
    assert_eq!(balance(&mut conn, ua).await, 0);
    assert_eq!(consumptions(&mut conn, ua).await, 40);
    assert_eq!(
        zimmer_testkit::count(&mut conn, &format!("SELECT COALESCE(SUM(delta), 0)::bigint AS n FROM token_ledger WHERE user_automation_id = {ua}")).await,
        0,
        "ledger and balance agree"
    );
    // Both instances really served: their own counters add up to the totals.
    let (acc_a, acc_b) = (
        consumed(&client, &a, "accepted").await,
        consumed(&client, &b, "accepted").await,
    );
    let (ref_a, ref_b) = (
        consumed(&client, &a, "refused").await,
        consumed(&client, &b, "refused").await,
    );
    assert_eq!(acc_a + acc_b, 40);
    assert_eq!(ref_a + ref_b, 20);
    assert!(
        acc_a + ref_a > 0 && acc_b + ref_b > 0,
        "nginx used both instances: a={acc_a}+{ref_a} b={acc_b}+{ref_b}"
    );

    // One idempotency key sent 10 times to each instance at once: charged once, same answer.
    assert_eq!(adjust(5, "fund-5", base(&b)).await, StatusCode::CREATED);
    let body = json!({ "user_automation_id": ua, "units": 3, "idempotency_key": "scale-key-1" });
    let (consume_a, consume_b) = (
        format!("{}/api/automation-usage/consume", base(&a)),
        format!("{}/api/automation-usage/consume", base(&b)),
    );
    let calls = (0..20).map(|i| {
        let at = if i % 2 == 0 { &consume_a } else { &consume_b };
        spend(&client, at, &token, &body)
    });
    let answers = join_all(calls).await;
    assert_eq!(answers[0]["accepted"], true, "{answers:?}");
    assert_eq!(answers[0]["remaining_paid_tokens"], 2);
    assert!(answers.iter().all(|x| x == &answers[0]), "{answers:?}");
    assert_eq!(balance(&mut conn, ua).await, 2);
    assert_eq!(consumptions(&mut conn, ua).await, 41);
    // Replaying the funding key on the other instance credits nothing more.
    let again = adjust(5, "fund-5", base(&a)).await;
    assert!(again.is_success(), "{again}");
    assert_eq!(balance(&mut conn, ua).await, 2);
    drop(gw);
    drop((a, b));
}
