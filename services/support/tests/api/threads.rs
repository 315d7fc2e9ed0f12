//! Ticket threads are bounded: messages per ticket and characters per thread are capped, the
//! staff list carries each ticket's last message and count instead of its thread, and the
//! ticket view pages its messages.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use common::*;
use reqwest::StatusCode;
use serde_json::{Value, json};
use zimmer_jwt::Role;
use zimmer_testkit::str_at;

/// `n` messages of `chars` characters each, written straight into the thread (as if posted
/// over weeks), alternating customer and staff.
async fn fill(s: &Support, ticket: i64, customer: i64, staff: i64, n: i64, chars: usize) {
    use diesel_async::RunQueryDsl;
    let mut conn = s.ctx.db.connect().await;
    diesel::sql_query(format!(
        "INSERT INTO ticket_messages (ticket_id, author_id, is_staff, body, created_at) \
         SELECT {ticket}, CASE WHEN g % 2 = 0 THEN {staff} ELSE {customer} END, g % 2 = 0, \
                left('m' || g || ':' || repeat('x', {chars}), {chars}), \
                now() + g * interval '1 millisecond' \
         FROM generate_series(1, {n}) AS g"
    ))
    .execute(&mut conn)
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thread_is_capped_in_messages_and_characters() {
    // No per-user message rate here: the caps must hold on their own.
    let s = Support::start_with(&[("MESSAGES_PER_10_MIN", "0")]).await;
    let (c, ct) = s.user("flood@example.com", Role::Customer).await;
    let (a, at) = s.user("agent@example.com", Role::SupportStaff).await;

    // 200 messages: the first, 198 more, and one last one through the API.
    let full = s.ticket(&ct, "many", "first").await;
    fill(&s, full, c, a, 198, 20).await;
    let (status, m) = s.post_message(full, &ct, "the 200th").await;
    assert_eq!(status, StatusCode::CREATED, "{m}");
    for (token, who) in [(&ct, "customer"), (&at, "staff")] {
        let (status, e) = s.post_message(full, token, "one more").await;
        assert_eq!(status, StatusCode::CONFLICT, "{who}: {e}");
        assert_eq!(e["code"], "ticket_thread_full");
        assert!(str_at(&e, "detail").contains("new ticket"), "{e}");
    }
    // The panel's PUT {message} is bounded the same way.
    let (status, e) = s
        .update_ticket(full, &ct, json!({"message": "and via PUT"}))
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{e}");
    assert_eq!(e["code"], "ticket_thread_full");
    assert_eq!(
        s.count(&format!(
            "SELECT count(*) AS n FROM ticket_messages WHERE ticket_id = {full}"
        ))
        .await,
        200
    );

    // 100,000 characters: 9 full messages plus the first leave 9,995 characters.
    let long = s.ticket(&ct, "long", "first").await;
    fill(&s, long, c, a, 9, 10_000).await;
    let (status, e) = s.post_message(long, &ct, &"y".repeat(10_000)).await;
    assert_eq!(status, StatusCode::CONFLICT, "{e}");
    assert_eq!(e["code"], "ticket_thread_too_long");
    assert!(str_at(&e, "detail").contains("9995"), "{e}");
    let (status, m) = s.post_message(long, &ct, &"y".repeat(9_995)).await;
    assert_eq!(status, StatusCode::CREATED, "{m}");
    let (status, e) = s.post_message(long, &at, "z").await;
    assert_eq!(status, StatusCode::CONFLICT, "{e}");
    assert_eq!(
        s.count(&format!(
            "SELECT COALESCE(SUM(char_length(body)), 0)::int8 AS n FROM ticket_messages WHERE ticket_id = {long}"
        ))
        .await,
        100_000
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_staff_list_summarises_and_the_ticket_view_pages_its_messages() {
    let s = Support::start().await;
    let (c, ct) = s.user("pages@example.com", Role::Customer).await;
    let (a, at) = s.user("agent@example.com", Role::SupportStaff).await;
    s.set_name(a, "رضا").await;

    let short = s.ticket(&ct, "short", "hello").await;
    let (status, _) = s.post_message(short, &at, "hi, looking").await;
    assert_eq!(status, StatusCode::CREATED);
    let long = s.ticket(&ct, "long", "first").await;
    fill(&s, long, c, a, 60, 30).await;

    // Staff: each ticket's last message and count, not its thread.
    let list = s.read("/api/tickets", &at).await;
    let item = |id: i64| -> Value {
        list["tickets"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["id"] == id)
            .unwrap()
            .clone()
    };
    let (sh, lo) = (item(short), item(long));
    assert_eq!(sh["message_count"], 2);
    assert_eq!(sh["message"], "hi, looking");
    assert_eq!(sh["last_message"]["author_name"], "رضا");
    assert_eq!(sh["last_message"]["is_staff"], true);
    assert_eq!(lo["message_count"], 61);
    assert!(str_at(&lo, "message").starts_with("m60:"), "{lo}");
    assert!(lo.get("messages").is_none());

    // The customer's own list still carries the whole conversation (the panel reads it).
    let mine = s.read("/api/tickets", &ct).await;
    let own_short = mine["tickets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == short)
        .unwrap();
    assert_eq!(
        own_short["message"],
        "hello\n\n--- Reply from رضا ---\nhi, looking"
    );
    assert_eq!(own_short["message_count"], 2);

    // A short thread's view is as before: every message, `message` the whole thread.
    let t = s.read(&format!("/api/tickets/{short}"), &ct).await;
    assert_eq!(t["messages"].as_array().unwrap().len(), 2);
    assert_eq!(t["message"], "hello\n\n--- Reply from رضا ---\nhi, looking");
    assert_eq!(t["messages_offset"], 0);

    // A long one opens at its end: the last 50 of 61.
    let t = s.read(&format!("/api/tickets/{long}"), &ct).await;
    let msgs = t["messages"].as_array().unwrap();
    assert_eq!(msgs.len(), 50);
    assert_eq!(t["message_count"], 61);
    assert_eq!(t["messages_offset"], 11);
    assert!(msgs[49]["message"].as_str().unwrap().starts_with("m60:"));
    // Earlier pages on request.
    let t = s
        .read(
            &format!("/api/tickets/{long}?messages_limit=20&messages_offset=0"),
            &at,
        )
        .await;
    let msgs = t["messages"].as_array().unwrap();
    assert_eq!(msgs.len(), 20);
    assert_eq!(msgs[0]["message"], "first");
    assert!(str_at(&t, "message").starts_with("first\n\n--- Reply from "));
    // Bad paging: JSON 422, never 500.
    for q in [
        "messages_limit=0",
        "messages_limit=201",
        "messages_offset=-1",
    ] {
        let (status, e) = s
            .get(&format!("/api/tickets/{long}?{q}"), &at)
            .json_or_text()
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{q}: {e}");
        assert_eq!(e["code"], "validation_error");
    }
    let res = s
        .get(&format!("/api/tickets/{long}?messages_limit=abc"), &at)
        .send()
        .await
        .unwrap();
    assert!(res.status().is_client_error(), "{}", res.status());
}
