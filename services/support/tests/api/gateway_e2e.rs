//! End to end: the real `zimmer-support` binary behind a real nginx running the repo's
//! gateway configuration: the panel's multipart ticket with an attachment, its download, and
//! a notification arriving on the SSE stream through the gateway (unbuffered), with the
//! `?token=` kept out of the access log. Needs `cargo build --workspace --bins` first (the
//! test command does it) and nginx.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use common::*;
use reqwest::StatusCode;
use serde_json::json;
use zimmer_jwt::Role;
use zimmer_testkit::{Gateway, Process, TempDir, TestContext, Upstreams, client};

/// The support binary (attachments in a folder of its own) behind the gateway; the folders
/// (its log and its files) live as long as the returned [`TempDir`]s, dropped last.
async fn behind_the_gateway(ctx: &TestContext) -> ([TempDir; 2], Process, Gateway) {
    let logs = TempDir::new("zimmer-e2e-logs");
    let files = TempDir::new("zimmer-e2e-files");
    let dir = files.path.to_string_lossy().into_owned();
    let env = ctx.process_env(&[], vec![("ATTACHMENTS_DIR".into(), dir)]);
    let support = Process::start("support", &env, &logs.path).await;
    let gw = Gateway::start(&Upstreams::of(&[&support]), &["http://localhost:3000"]).await;
    ([logs, files], support, gw)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tickets_attachments_and_the_stream_through_the_gateway() {
    let ctx = TestContext::new().await;
    let (_dirs, support, gw) = behind_the_gateway(&ctx).await;
    let http = client();
    let (customer, ct) = ctx
        .user_with_token("panel@example.com", Role::Customer)
        .await;
    let (_, st) = ctx
        .user_with_token("agent@example.com", Role::SupportStaff)
        .await;

    // The panel's call: multipart with user_id, subject, message, importance and a file.
    let (status, t) = Form::new()
        .text("user_id", &customer.to_string())
        .text("subject", "اسکرین‌شات خطا")
        .text("message", "تصویر پیوست شد")
        .text("importance", "urgent")
        .png("error.png")
        .send(http.post(gw.url("/api/tickets")).bearer_auth(&ct))
        .json_or_text()
        .await;
    assert_eq!(status, StatusCode::CREATED, "{t}\n{}", support.log());
    assert_eq!(t["importance"], "urgent");
    let id = t["id"].as_i64().unwrap();
    let url = t["messages"][0]["attachment"]["url"]
        .as_str()
        .unwrap()
        .to_owned();
    let res = http
        .get(gw.url(&url))
        .bearer_auth(&ct)
        .call_expecting(StatusCode::OK)
        .await;
    assert_eq!(res.headers()["content-type"], "image/png");
    assert!(
        res.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("attachment;")
    );
    assert_eq!(res.bytes().await.unwrap().to_vec(), png_bytes());

    // The stream through the gateway, authenticated by ?token= as EventSource does.
    let stream = format!("/api/notifications/stream?token={ct}");
    let res = gw
        .get_from_origin(&http, &stream, "http://localhost:3000")
        .await;
    let mut sse = Sse::new(res);
    sse.next(WAIT)
        .await
        .expect("the opening comment arrives unbuffered");
    assert_eq!(
        http.post(gw.url(&format!("/api/tickets/{id}/messages")))
            .bearer_auth(&st)
            .json(&json!({"message": "بررسی شد"}))
            .status()
            .await,
        StatusCode::CREATED
    );
    let (_, n) = sse
        .next_event(WAIT)
        .await
        .expect("the notification through the gateway");
    assert_eq!(n["type"], "ticket");
    assert_eq!(n["data"]["ticket_id"], id);

    // Another customer: 404 through the gateway too.
    let (_, ot) = ctx
        .user_with_token("other@example.com", Role::Customer)
        .await;
    assert_eq!(
        http.get(gw.url(&url)).bearer_auth(&ot).status().await,
        StatusCode::NOT_FOUND
    );

    // nginx logs the stream when it ends.
    drop(sse);
    zimmer_testkit::eventually("the stream is logged", WAIT, || async {
        gw.access_log().contains("/api/notifications/stream")
    })
    .await;
    let log = gw.access_log();
    assert!(
        !log.contains(&ct),
        "the access token must not reach the access log"
    );
}

/// The gateway holds at most 20 open streams per client address (`limit_conn`), whatever
/// the accounts: one more gets the API's JSON 429, and a closed one makes room again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_bounds_open_streams_per_client_address() {
    let ctx = TestContext::new().await;
    let (_dirs, _support, gw) = behind_the_gateway(&ctx).await;
    let http = client();
    let mut streams = Vec::new();
    for i in 0..20 {
        // A different account each time: the service's per-user cap plays no part.
        let (_, token) = ctx
            .user_with_token(&format!("s{i}@example.com"), Role::Customer)
            .await;
        let res = http
            .get(gw.url(&format!("/api/notifications/stream?token={token}")))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK, "stream {i}");
        let mut sse = Sse::new(res);
        sse.next(WAIT).await.expect("the opening block");
        streams.push(sse);
    }
    let (_, token) = ctx
        .user_with_token("one-more@example.com", Role::Customer)
        .await;
    let url = gw.url(&format!("/api/notifications/stream?token={token}"));
    let body = http
        .get(&url)
        .json_expecting(StatusCode::TOO_MANY_REQUESTS)
        .await;
    assert_eq!(body["code"], "rate_limited");

    streams.pop();
    zimmer_testkit::eventually("a closed stream makes room", WAIT, || async {
        http.get(&url).status().await == StatusCode::OK
    })
    .await;
}
