//! The panel's notification stream through the real nginx: an `EventSource` on
//! `/api/notifications/stream?token=<access token>` treats every default `message` event as
//! one notification, so across keep-alives and a new notification the stream must carry
//! exactly one data event, the notification's JSON, and nothing else but comments.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use reqwest::StatusCode;
use serde_json::{Value, json};
use zimmer_jwt::Role;
use zimmer_platform_tests::*;
use zimmer_testkit::Call;

/// Keep-alive period of the stream in this test (seconds; production default 15).
const KEEPALIVE_SECS: &str = "1";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stream_carries_one_data_event_per_notification_and_comments_between() {
    let stack = Stack::start(StackOptions {
        support_env: vec![("SSE_KEEPALIVE_SECS".into(), KEEPALIVE_SECS.into())],
        ..StackOptions::default()
    })
    .await;
    stack.run_showing_logs(scenario(&stack)).await;
}

/// A block as it was read, for the failure message.
fn describe(blocks: &[SseBlock]) -> String {
    blocks
        .iter()
        .map(|b| format!("{b:?}"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn is_ping(b: &SseBlock) -> bool {
    matches!(b, SseBlock::Comment(c) if c.iter().any(|l| l == "ping"))
}

async fn scenario(stack: &Stack) {
    let panel = stack.panel();
    // A customer as the panel makes one (the token the panel holds comes from auth).
    let email = "stream@example.com";
    let res = panel
        .post_anon(
            "/api/auth/signup",
            json!({ "email": email, "password": "a-long-password-1", "name": "نگار", "confirm_password": "a-long-password-1" }),
        )
        .await;
    let access = token_answer("signup", res.expect(201));
    let user_id = res.body["user"]["id"].as_i64().unwrap();
    // The welcome notification (user.registered, through the broker) exists before the
    // stream opens, so it must not come through it (no replay without Last-Event-ID).
    stack
        .wait_for_count(
            "the welcome notification",
            &format!("SELECT count(*) AS n FROM notifications WHERE user_id = {user_id}"),
            1,
        )
        .await;
    let res = panel
        .post(
            "/api/tickets",
            &access,
            json!({ "subject": "سؤال درباره صورتحساب", "message": "مبلغ دو بار کسر شد؟" }),
        )
        .await;
    let ticket = res.expect(201)["id"].as_i64().unwrap();

    let mut sse = stack.open_stream(&access).await;
    let mut blocks: Vec<SseBlock> = Vec::new();

    // Two keep-alives pass: nothing the browser would dispatch.
    while blocks.iter().filter(|b| is_ping(b)).count() < 2 {
        let block = sse
            .next(WAIT)
            .await
            .unwrap_or_else(|| panic!("keep-alives arrive; so far:\n{}", describe(&blocks)));
        blocks.push(block);
    }
    assert!(
        blocks.iter().all(|b| !matches!(b, SseBlock::Event { .. })),
        "no data event before a new notification:\n{}",
        describe(&blocks)
    );

    // Support answers the ticket: the customer gets one new notification.
    let (_, staff_token) = stack
        .ctx
        .user_with_token("agent@example.com", Role::SupportStaff)
        .await;
    let res = zimmer_testkit::client()
        .post(stack.gw.url(&format!("/api/tickets/{ticket}/messages")))
        .bearer_auth(&staff_token)
        .json(&json!({ "message": "خیر، فقط یک بار کسر شده است." }))
        .call()
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);

    // Read until it arrives, then across two more keep-alives (a duplicate would show).
    let arrived_at = loop {
        let block = sse
            .next(WAIT)
            .await
            .unwrap_or_else(|| panic!("the notification arrives; so far:\n{}", describe(&blocks)));
        let is_event = matches!(block, SseBlock::Event { .. });
        blocks.push(block);
        if is_event {
            break blocks.len();
        }
    };
    while blocks[arrived_at..].iter().filter(|b| is_ping(b)).count() < 2 {
        let block = sse.next(WAIT).await.unwrap_or_else(|| {
            panic!(
                "keep-alives go on after the event; so far:\n{}",
                describe(&blocks)
            )
        });
        blocks.push(block);
    }

    let events: Vec<&SseBlock> = blocks
        .iter()
        .filter(|b| matches!(b, SseBlock::Event { .. }))
        .collect();
    assert_eq!(
        events.len(),
        1,
        "exactly one data event:\n{}",
        describe(&blocks)
    );
    let SseBlock::Event { event, id, data } = events[0] else {
        unreachable!()
    };
    assert_eq!(
        event, &None,
        "a default (message) event, which the panel listens to"
    );
    let n: Value = serde_json::from_str(data)
        .unwrap_or_else(|e| panic!("the data is one JSON notification ({e}): {data}"));
    shape("streamed notification", &n, NOTIFICATION_FIELDS);
    assert_eq!(n["type"], "ticket");
    assert_eq!(n["data"]["ticket_id"], ticket);
    assert_eq!(n["is_read"], false);
    assert!(n["read_at"].is_null());
    assert_eq!(
        id.as_deref(),
        Some(n["id"].to_string().as_str()),
        "the event id is the notification's (for Last-Event-ID)"
    );
    // Everything else is a comment or a field-only block (`retry:`), never dispatched.
    assert!(
        blocks.iter().all(
            |b| matches!(b, SseBlock::Event { .. } | SseBlock::Comment(_))
                || matches!(b, SseBlock::Other(f) if f.iter().all(|l| l.starts_with("retry:")))
        ),
        "{}",
        describe(&blocks)
    );

    // The same notification as the list shows it, and nothing else was new.
    let res = panel
        .get("/api/notifications?limit=20&offset=0", &access)
        .await;
    let items = res.expect(200)["items"].as_array().unwrap().clone();
    assert_eq!(items.len(), 2, "the welcome and the reply: {items:?}");
    let listed = items
        .iter()
        .find(|i| i["id"] == n["id"])
        .expect("the streamed notification is in the list");
    assert_eq!(listed, &n);
}
