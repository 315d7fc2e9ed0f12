//! The notification stream's bounds and endings: a user's newest stream replaces their oldest,
//! a client that goes away frees its slot promptly, an instance holds a bounded number of
//! streams, and a draining instance ends its streams so that a reconnect elsewhere with
//! `Last-Event-ID` loses nothing.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::time::{Duration, Instant};

use common::{Call, Sse, Support, WAIT, json, spawn_support, stream_path};
use reqwest::StatusCode;
use zimmer_jwt::Role;

/// A staff reply on the customer's ticket: one notification for the customer, at commit.
async fn reply(s: &Support, staff_token: &str, ticket: i64, text: &str) {
    assert_eq!(
        s.post_message(ticket, staff_token, text).await.0,
        StatusCode::CREATED
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_users_stream_beyond_the_cap_replaces_their_oldest() {
    let s = Support::start_with(&[("SSE_MAX_STREAMS_PER_USER", "2")]).await;
    let (_c, ct) = s.user("tabs@example.com", Role::Customer).await;
    let (_a, at) = s.user("agent@example.com", Role::SupportStaff).await;
    let ticket = s.ticket(&ct, "tabs", "many tabs").await;

    let mut oldest = s.open_stream(&ct).await;
    let mut middle = s.open_stream(&ct).await;
    // Today's panel, moving between pages: one more stream than the cap. It is served…
    let mut newest = s.open_stream(&ct).await;
    // …and the oldest ends, telling its client when to come back and from where.
    assert!(
        oldest.ends_within(WAIT).await,
        "the oldest stream ends when a newer one takes its place"
    );
    assert!(
        oldest.last_event_id.is_some(),
        "its last block sets Last-Event-ID"
    );

    reply(&s, &at, ticket, "answered").await;
    for (name, sse) in [("newest", &mut newest), ("middle", &mut middle)] {
        let (_, n) = sse
            .next_event(WAIT)
            .await
            .unwrap_or_else(|| panic!("the {name} stream gets the notification"));
        assert_eq!(n["data"]["ticket_id"], ticket);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_instance_is_bounded_and_a_client_that_goes_away_frees_its_slot_promptly() {
    // Keep-alive well above the bound asserted below: the slot must be freed by noticing the
    // connection's end, not by a keep-alive write failing.
    let s = Support::start_with(&[("SSE_MAX_STREAMS", "1"), ("SSE_KEEPALIVE_SECS", "30")]).await;
    let (_a, at) = s.user("first@example.com", Role::Customer).await;
    let (_b, bt) = s.user("second@example.com", Role::Customer).await;

    let first = s.open_stream(&at).await;
    // The instance is full: a clear JSON 503 with Retry-After, not a hanging connection.
    let res = s.app.get(&stream_path(&bt)).send().await.unwrap();
    assert!(res.headers().get("retry-after").is_some());
    let (status, body) = json(res).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["code"], "too_many_streams");

    // The first client goes away (as a closed tab does); its slot is free again at once.
    drop(first);
    let gone = Instant::now();
    loop {
        let res = s.app.get(&stream_path(&bt)).send().await.unwrap();
        if res.status() == StatusCode::OK {
            break;
        }
        assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(
            gone.elapsed() < Duration::from_secs(3),
            "a closed client still holds its stream slot"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!("slot freed {:?} after the client left", gone.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn draining_ends_every_stream_and_a_reconnect_elsewhere_loses_nothing() {
    let s = Support::start_with(&[("SSE_KEEPALIVE_SECS", "30")]).await;
    let (other, _) = spawn_support(
        &s.ctx,
        s.ctx.settings(
            "support",
            &[("ATTACHMENTS_DIR", s.files.path.to_str().unwrap())],
        ),
    )
    .await;
    let (c, ct) = s.user("drained@example.com", Role::Customer).await;
    let (_a, at) = s.user("agent@example.com", Role::SupportStaff).await;
    let ticket = s.ticket(&ct, "drain", "rolling restart").await;
    reply(&s, &at, ticket, "before any stream").await;

    // One stream that carries an event, and one opened after it that carries none.
    let mut busy = s.open_stream(&ct).await;
    reply(&s, &at, ticket, "while streaming").await;
    let live_id = s
        .count(&format!(
            "SELECT max(id) AS n FROM notifications WHERE user_id = {c}"
        ))
        .await;
    // (The earlier one may come through too if its signal reached this instance after the
    // stream subscribed: read up to the live one.)
    let seen_id = loop {
        let (id, n) = busy.next_event(WAIT).await.expect("the live notification");
        assert_eq!(n["data"]["ticket_id"], ticket);
        if n["id"] == live_id {
            break id;
        }
    };
    let mut quiet = s.open_stream(&ct).await;

    s.draining.start();
    for (name, sse) in [("busy", &mut busy), ("quiet", &mut quiet)] {
        assert!(
            sse.ends_within(Duration::from_secs(5)).await,
            "the {name} stream ends when the instance drains"
        );
        assert_eq!(
            sse.last_event_id, seen_id,
            "the {name} stream's reconnect resumes after what was already shown"
        );
    }
    // A stream opened on the draining instance is served and ended at once, so its client
    // reconnects (elsewhere) instead of failing.
    let res = s
        .app
        .get(&stream_path(&ct))
        .call_expecting(StatusCode::OK)
        .await;
    assert!(Sse::new(res).ends_within(Duration::from_secs(5)).await);

    // Written while no stream is open.
    reply(&s, &at, ticket, "while reconnecting").await;

    // Each client reconnects to the other instance with its Last-Event-ID.
    for name in ["busy", "quiet"] {
        let res = other
            .get(&stream_path(&ct))
            .header("Last-Event-ID", seen_id.clone().unwrap())
            .call_expecting(StatusCode::OK)
            .await;
        let mut again = Sse::new(res);
        let (_, missed) = again
            .next_event(WAIT)
            .await
            .unwrap_or_else(|| panic!("the {name} client gets what it missed"));
        assert_eq!(missed["data"]["ticket_id"], ticket);
        assert!(
            missed["id"].as_i64().unwrap() > seen_id.as_deref().unwrap().parse::<i64>().unwrap()
        );
        assert!(
            again
                .next_event(Duration::from_millis(1500))
                .await
                .is_none(),
            "the {name} client gets nothing twice"
        );
    }
}
