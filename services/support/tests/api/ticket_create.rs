//! A new ticket is one statement (ticket, first message, attachment row, `ticket.created`
//! outbox row): what it answers equals the ticket read back, the event carries the new id and
//! is published without a `pg_notify` (the relay is woken in-process), and a refused
//! `user_automation_id` writes nothing at all.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use common::*;
use reqwest::StatusCode;
use serde_json::Value;
use zimmer_events::{Envelope, contracts::TicketCreated};
use zimmer_jwt::Role;

/// The `ticket.created` outbox rows: (payload, published).
async fn created_events(s: &Support) -> Vec<(Value, bool)> {
    #[derive(diesel::QueryableByName)]
    struct Row {
        #[diesel(sql_type = diesel::sql_types::Jsonb)]
        payload: Value,
        #[diesel(sql_type = diesel::sql_types::Bool)]
        published: bool,
    }
    use diesel_async::RunQueryDsl;
    let mut conn = s.ctx.db.connect().await;
    diesel::sql_query(
        "SELECT payload, published_at IS NOT NULL AS published FROM outbox \
         WHERE event_type = 'ticket.created' ORDER BY created_at",
    )
    .load::<Row>(&mut conn)
    .await
    .unwrap()
    .into_iter()
    .map(|r| (r.payload, r.published))
    .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_ticket_answers_what_is_stored_and_its_event_carries_its_id() {
    let s = Support::start().await;
    let (customer, ct) = s.user("nika@example.com", Role::Customer).await;
    s.set_name(customer, "نیکا").await;
    let ua = s.user_automation(customer, "ربات پشتیبانی").await;

    // The panel's multipart, with the customer's own automation and a file.
    let created = Form::new()
        .text("user_id", "999")
        .text("subject", "ربات جواب نمی‌دهد")
        .text("message", "از دیروز پاسخی نمی‌آید")
        .text("importance", "urgent")
        .text("category", "bots")
        .text("user_automation_id", &ua.to_string())
        .png("screen.png")
        .send(s.post("/api/tickets", &ct))
        .json_expecting(StatusCode::CREATED)
        .await;
    let id = created["id"].as_i64().unwrap();
    assert_eq!(created["user_id"], customer);
    assert_eq!(created["user_automation_id"], ua);
    assert_eq!(created["category"], "bots");
    assert_eq!(created["importance"], "urgent");
    assert_eq!(created["priority"], "urgent");
    assert_eq!(created["status"], "open");
    assert_eq!(created["message_count"], 1);
    let m = &created["messages"][0];
    assert_eq!(m["author_name"], "نیکا");
    assert_eq!(m["ticket_id"], id);
    assert_eq!(m["is_staff"], false);
    assert_eq!(m["attachment"]["filename"], "screen.png");
    assert_eq!(m["attachment"]["content_type"], "image/png");
    assert_eq!(
        m["attachment"]["size"],
        i64::try_from(png_bytes().len()).unwrap()
    );

    // The answer is the ticket as any later read shows it.
    let read = s.read(&format!("/api/tickets/{id}"), &ct).await;
    assert_eq!(read, created);
    let url = m["attachment"]["url"].as_str().unwrap();
    let file = s.get(url, &ct).call_expecting(StatusCode::OK).await;
    assert_eq!(file.bytes().await.unwrap().to_vec(), png_bytes());

    // One event, with the new ticket's id, and the relay publishes it.
    let events = created_events(&s).await;
    assert_eq!(events.len(), 1);
    let envelope: Envelope = serde_json::from_value(events[0].0.clone()).unwrap();
    let data: TicketCreated = envelope.decode().unwrap();
    assert_eq!(data.ticket_id, id);
    assert_eq!(data.user_id, customer);
    assert_eq!(data.priority, "urgent");
    let deadline = std::time::Instant::now() + WAIT;
    while !created_events(&s).await[0].1 {
        assert!(
            std::time::Instant::now() < deadline,
            "ticket.created was never published"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn someone_elses_automation_writes_nothing_not_even_the_file() {
    let s = Support::start().await;
    let (owner, _) = s.user("owner@example.com", Role::Customer).await;
    let (_other, ot) = s.user("other@example.com", Role::Customer).await;
    let ua = s.user_automation(owner, "ربات پشتیبانی").await;

    let e = Form::ticket("not mine", "someone else's bot")
        .text("user_automation_id", &ua.to_string())
        .png("a.png")
        .send(s.post("/api/tickets", &ot))
        .json_expecting(StatusCode::UNPROCESSABLE_ENTITY)
        .await;
    assert!(e["detail"].is_string(), "{e}");
    for table in ["tickets", "ticket_messages", "ticket_attachments"] {
        assert_eq!(
            s.count(&format!("SELECT count(*) AS n FROM {table}")).await,
            0,
            "{table}"
        );
    }
    assert!(created_events(&s).await.is_empty());
    assert_eq!(s.stored_files(), 0, "the stored file is removed again");
}
