//! Graceful shutdown: SIGTERM to a real `zimmer-marketplace` process while a spend is in
//! flight. The server stops accepting, lets the in-flight request finish (it drains for up to
//! 30 s), then exits 0; the spend is recorded exactly once.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    process::{Command, Stdio},
    time::Duration,
};

use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};
use zimmer_jwt::Role;
use zimmer_testkit::{TestContext, binary_path, eventually, free_port};

const INTERNAL_TOKEN: &str = zimmer_config::DEV_INTERNAL_TOKEN;

/// Kills the child if the test fails before it exits on its own.
struct Reaper(std::process::Child);

impl Drop for Reaper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_an_in_flight_spend_and_exits_cleanly() {
    let ctx = TestContext::new().await;
    let port = free_port();
    let child = Command::new(binary_path("zimmer-marketplace"))
        .envs(ctx.env_pairs())
        .env("HTTP_PORT", port.to_string())
        .env("HEALTH_CHECK_ENABLED", "false")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut child = Reaper(child);
    let base = format!("http://127.0.0.1:{port}");
    let http = zimmer_testkit::client();
    eventually("marketplace ready", Duration::from_secs(30), || async {
        http.get(format!("{base}/readyz"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
    })
    .await;

    let res = http
        .post(format!("{base}/internal/automations"))
        .header("X-Internal-Token", INTERNAL_TOKEN)
        .json(&json!({
            "name": "Drain Bot", "description": "shutdown test", "pricing_type": "token_per_session",
            "price_per_token": 10_000, "demo_tokens": 0,
        }))
        .send()
        .await
        .unwrap();
    let automation_id = res.json::<Value>().await.unwrap()["id"].as_i64().unwrap();
    let token = http
        .post(format!(
            "{base}/internal/automations/{automation_id}/service-token"
        ))
        .header("X-Internal-Token", INTERNAL_TOKEN)
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap()["service_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let customer = ctx.create_user("drain@example.com", Role::Customer).await;
    let manager = ctx
        .create_user("drain-mgr@example.com", Role::Manager)
        .await;
    let access = ctx.mint_access_token(customer, Role::Customer, uuid::Uuid::new_v4());
    let res = http
        .post(format!("{base}/api/user/automations/{automation_id}"))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    let ua = res.json::<Value>().await.unwrap()["user_automation"]["id"]
        .as_i64()
        .unwrap();
    let res = http
        .post(format!("{base}/internal/tokens/adjust"))
        .header("X-Internal-Token", INTERNAL_TOKEN)
        .json(&json!({ "user_automation_id": ua, "delta": 5, "reason": "t", "idempotency_key": "f", "actor_id": manager }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);

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
    let killed = Command::new("kill")
        .args(["-TERM", &child.0.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    // The listener closes: new connections are refused while the old one drains.
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
    let status = tokio::task::spawn_blocking(move || child.0.wait())
        .await
        .unwrap()
        .unwrap();
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
