//! Graceful shutdown: SIGTERM to a real `zimmer-marketplace` process while a spend is in
//! flight. The instance turns unready at once but keeps serving for the drain period
//! (`SHUTDOWN_DRAIN_SECS`), closing keep-alive connections after their next response; then it
//! stops accepting, lets the in-flight request finish (for up to `SHUTDOWN_TIMEOUT_SECS`), and
//! exits 0; the spend is recorded exactly once.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};
use zimmer_testkit::{Process, TempDir, TestContext, eventually};

use crate::fixtures::funded_automation;

/// One HTTP/1.1 response read off a raw connection (headers, then `Content-Length` bytes).
async fn read_response(stream: &mut TcpStream) -> String {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        assert_eq!(
            stream.read(&mut byte).await.unwrap(),
            1,
            "connection closed early"
        );
        buf.push(byte[0]);
    }
    let head = String::from_utf8(buf).unwrap();
    let length: usize = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length:")
                .map(|v| v.trim().parse().unwrap())
        })
        .unwrap_or(0);
    let mut body = vec![0u8; length];
    stream.read_exact(&mut body).await.unwrap();
    head + &String::from_utf8_lossy(&body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_turns_unready_keeps_serving_through_the_drain_then_finishes_in_flight_and_exits_0()
{
    let ctx = TestContext::new().await;
    let logs = TempDir::new("zimmer-shutdown");
    let mut env = ctx.env_pairs();
    env.extend(
        [
            ("HEALTH_CHECK_ENABLED", "false"),
            ("SHUTDOWN_DRAIN_SECS", "3"),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned())),
    );
    let mut market = Process::start("marketplace", &env, &logs.path).await;
    let (port, base) = (market.port, market.url());
    let http = zimmer_testkit::client();

    let f = funded_automation(&ctx, &http, &base, &base, "drain", 5).await;
    let (ua, token, access) = (f.user_automation_id, &f.service_token, &f.access);

    // A spend whose body is still arriving when SIGTERM lands: the request is in flight.
    let body =
        json!({ "user_automation_id": ua, "units": 2, "idempotency_key": "drain-1" }).to_string();
    let (first, rest) = body.split_at(10);
    let mut stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    stream
        .write_all(
            format!(
                "POST /api/automation-usage/consume HTTP/1.1\r\nHost: 127.0.0.1\r\n\
                 X-Zimmer-Service-Token: {token}\r\nContent-Type: application/json\r\n\
                 Content-Length: {}\r\nConnection: close\r\n\r\n{first}",
                body.len()
            )
            .as_bytes(),
        )
        .await
        .unwrap();
    stream.flush().await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    // A keep-alive connection, as the gateway's upstream pool holds them.
    let mut kept = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let probe = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    kept.write_all(probe).await.unwrap();
    let first = read_response(&mut kept).await;
    assert!(first.starts_with("HTTP/1.1 200"), "{first}");
    assert!(
        !first.to_ascii_lowercase().contains("connection: close"),
        "{first}"
    );

    assert!(market.sigterm());
    let signalled = std::time::Instant::now();

    // Draining: not ready any more, at once…
    eventually("readyz fails at once", Duration::from_secs(1), || async {
        let Ok(res) = http.get(format!("{base}/readyz")).send().await else {
            return false;
        };
        res.status() == StatusCode::SERVICE_UNAVAILABLE
            && res.json::<Value>().await.unwrap()["checks"]["draining"] == "shutting down"
    })
    .await;
    // …but normal requests still answer during the drain period…
    let res = http
        .get(format!("{base}/api/user/automations"))
        .bearer_auth(access)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let res = http
        .get(format!("{base}/api/automations"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    // …and a keep-alive connection gets its answer and is then closed cleanly.
    kept.write_all(probe).await.unwrap();
    let second = read_response(&mut kept).await;
    assert!(second.starts_with("HTTP/1.1 200"), "{second}");
    assert!(
        second.to_ascii_lowercase().contains("connection: close"),
        "{second}"
    );
    let mut rest_of_it = Vec::new();
    kept.read_to_end(&mut rest_of_it).await.unwrap();
    assert!(rest_of_it.is_empty(), "the server closes the connection");
    assert!(
        signalled.elapsed() < Duration::from_secs(3),
        "all of the above happened within the drain period"
    );
    // After the drain period the listener closes: new connections are refused while the
    // in-flight request finishes.
    eventually(
        "the listener stops accepting",
        Duration::from_secs(30),
        || async { TcpStream::connect(("127.0.0.1", port)).await.is_err() },
    )
    .await;
    stream.write_all(rest.as_bytes()).await.unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("\"accepted\":true"), "{answer}");
    assert!(answer.contains("\"remaining_paid_tokens\":3"), "{answer}");

    // The process exits by itself, cleanly.
    let status = market
        .wait_exit(Duration::from_secs(60))
        .await
        .expect("the process exits by itself");
    assert!(status.success(), "{status}");
    let mut conn = ctx.db.connect().await;
    assert_eq!(
        zimmer_testkit::count(&mut conn, &format!("SELECT count(*) AS n FROM token_ledger WHERE kind = 'consumption' AND user_automation_id = {ua}")).await,
        1
    );
    assert_eq!(
        zimmer_testkit::count(
            &mut conn,
            &format!("SELECT tokens_remaining AS n FROM user_automations WHERE id = {ua}")
        )
        .await,
        3
    );
}
