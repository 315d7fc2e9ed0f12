//! Tickets against real PostgreSQL, Redis and RabbitMQ: ownership, the panel's shapes, status
//! rules, attachments and their checks, assignment, and the internal API.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use common::*;
use reqwest::StatusCode;
use serde_json::json;
use zimmer_jwt::Role;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conversation_in_the_panels_shapes_with_status_rules() {
    let s = Support::start().await;
    let (customer, ct) = s.user("sara@example.com", Role::Customer).await;
    let (_staff, st) = s.user("reza@example.com", Role::SupportStaff).await;
    s.set_name(customer, "سارا").await;
    s.set_name(_staff, "رضا").await;

    // Persian subject kept exactly (ZWNJ included); docs/api.md's `priority` means importance.
    let subject = "مشکل در اتصال\u{200C}ها";
    let (status, t) =
        s.post("/api/tickets", &ct)
            .json(&json!({"subject": format!("  {subject} "), "message": "ربات پاسخ نمی‌دهد", "priority": "high", "user_id": 999})).json_or_text().await;
    assert_eq!(status, StatusCode::CREATED, "{t}");
    let id = t["id"].as_i64().unwrap();
    assert_eq!(t["subject"], subject);
    assert_eq!(t["status"], "open");
    assert_eq!(t["importance"], "high");
    assert_eq!(t["priority"], "high");
    assert_eq!(t["user_id"], customer, "user_id in the body is ignored");
    assert_eq!(t["message"], "ربات پاسخ نمی‌دهد");
    assert_eq!(t["messages"].as_array().unwrap().len(), 1);
    assert_eq!(
        s.count("SELECT count(*) AS n FROM outbox WHERE event_type = 'ticket.created'")
            .await,
        1
    );

    // A staff reply moves an open ticket to in_progress.
    let (status, m) = s
        .post_message(id, &st, "لطفاً توکن ربات را دوباره وارد کنید")
        .await;
    assert_eq!(status, StatusCode::CREATED, "{m}");
    assert_eq!(m["is_staff"], true);
    assert_eq!(m["author_name"], "رضا");

    // The panel replies with PUT {message}.
    let (status, t) = s
        .update_ticket(id, &ct, json!({"message": "درست شد، ممنون"}))
        .await;
    assert_eq!(status, StatusCode::OK, "{t}");
    assert_eq!(t["status"], "in_progress");

    // The list: `{tickets, total}`, `message` = the conversation as one string.
    let list = s.read("/api/tickets", &ct).await;
    assert_eq!(list["total"], 1);
    let item = &list["tickets"][0];
    for field in [
        "id",
        "subject",
        "status",
        "importance",
        "created_at",
        "updated_at",
        "message",
    ] {
        assert!(!item[field].is_null(), "{field} in {item}");
    }
    assert_eq!(
        item["message"],
        "ربات پاسخ نمی‌دهد\n\n--- Reply from رضا ---\nلطفاً توکن ربات را دوباره وارد کنید\n\n--- Reply from سارا ---\nدرست شد، ممنون"
    );

    // The owner may only close.
    for body in [
        json!({"status": "resolved"}),
        json!({"priority": "low"}),
        json!({"assigned_to": null}),
    ] {
        assert_eq!(
            s.update_ticket(id, &ct, body.clone()).await.0,
            StatusCode::FORBIDDEN,
            "{body}"
        );
    }
    // Staff resolve; a customer message reopens a resolved ticket.
    let (status, t) = s
        .update_ticket(id, &st, json!({"status": "resolved", "priority": "urgent"}))
        .await;
    assert_eq!(status, StatusCode::OK, "{t}");
    assert_eq!(
        (t["status"].as_str(), t["priority"].as_str()),
        (Some("resolved"), Some("urgent"))
    );
    assert_eq!(t["importance"], "high", "the customer's choice stays");
    let (_, t) = s
        .update_ticket(id, &ct, json!({"message": "دوباره خراب شد"}))
        .await;
    assert_eq!(t["status"], "open");

    // The owner closes; closed is final for everyone.
    let (status, t) = s.update_ticket(id, &ct, json!({"status": "closed"})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(t["status"], "closed");
    assert!(t["closed_at"].is_string());
    let messages_before = s.count("SELECT count(*) AS n FROM ticket_messages").await;
    for (token, body) in [
        (&ct, json!({"message": "سلام؟"})),
        (&st, json!({"message": "hello"})),
        (&st, json!({"status": "open"})),
        (&st, json!({"priority": "low"})),
    ] {
        let (status, e) = s.update_ticket(id, token, body.clone()).await;
        assert_eq!(status, StatusCode::CONFLICT, "{body}: {e}");
        assert_eq!(e["code"], "ticket_closed");
    }
    assert_eq!(
        s.post_message(id, &ct, "سلام؟").await.0,
        StatusCode::CONFLICT
    );
    assert_eq!(
        s.count("SELECT count(*) AS n FROM ticket_messages").await,
        messages_before
    );
    // Closing again is a harmless repeat.
    assert_eq!(
        s.update_ticket(id, &ct, json!({"status": "closed"}))
            .await
            .0,
        StatusCode::OK
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn customers_never_see_each_others_tickets() {
    let s = Support::start().await;
    let (_a, at) = s.user("a@example.com", Role::Customer).await;
    let (_b, bt) = s.user("b@example.com", Role::Customer).await;
    let (_tech, tt) = s.user("tech@example.com", Role::TechnicalTeam).await;
    let (_m, mt) = s.user("boss@example.com", Role::Manager).await;

    // A's ticket, with an attachment on its first message.
    let t = Form::ticket("Invoice", "see attached")
        .png("shot.png")
        .send(s.post("/api/tickets", &at))
        .json_expecting(StatusCode::CREATED)
        .await;
    let id = t["id"].as_i64().unwrap();
    let message_id = t["messages"][0]["id"].as_i64().unwrap();
    let file = format!("/api/tickets/{id}/messages/{message_id}/attachment");
    let b_ticket = s.ticket(&bt, "B's own", "mine").await;

    for token in [&bt, &tt] {
        let e = s
            .get(&format!("/api/tickets/{id}"), token)
            .json_expecting(StatusCode::NOT_FOUND)
            .await;
        assert_eq!(e["code"], "not_found");
        for (what, req) in [
            (
                "reply",
                s.post(&format!("/api/tickets/{id}/messages"), token)
                    .json(&json!({"message": "intrusion"})),
            ),
            (
                "put message",
                s.put(&format!("/api/tickets/{id}"), token)
                    .json(&json!({"message": "intrusion"})),
            ),
            (
                "put status",
                s.put(&format!("/api/tickets/{id}"), token)
                    .json(&json!({"status": "closed"})),
            ),
            ("attachment", s.get(&file, token)),
        ] {
            assert_eq!(req.status().await, StatusCode::NOT_FOUND, "{what}");
        }
        // Multipart replies with a file store nothing for someone else's ticket.
        assert_eq!(
            Form::new()
                .text("message", "x")
                .png("x.png")
                .send(s.post(&format!("/api/tickets/{id}/messages"), token))
                .status()
                .await,
            StatusCode::NOT_FOUND
        );
    }
    assert_eq!(
        s.count("SELECT count(*) AS n FROM ticket_messages WHERE body = 'intrusion' OR body = 'x'")
            .await,
        0
    );
    assert_eq!(s.stored_files(), 1);
    // The attachment id of A's message through B's ticket path: still 404.
    assert_eq!(
        s.get(
            &format!("/api/tickets/{b_ticket}/messages/{message_id}/attachment"),
            &bt,
        )
        .status()
        .await,
        StatusCode::NOT_FOUND
    );

    // Lists: own only for customers (and technical_team); all for managers.
    let list = s.read("/api/tickets", &bt).await;
    assert_eq!(list["total"], 1);
    assert_eq!(list["tickets"][0]["id"], b_ticket);
    let list = s.read("/api/tickets?user_id=0", &bt).await;
    assert_eq!(list["total"], 1, "a customer's user_id filter is ignored");
    let list = s.read("/api/tickets", &tt).await;
    assert_eq!(list["total"], 0);
    let list = s.read("/api/tickets", &mt).await;
    assert_eq!(list["total"], 2);

    // The owner and staff download it: the checked type and a safe attachment disposition.
    for token in [&at, &mt] {
        let res = s.get(&file, token).call_expecting(StatusCode::OK).await;
        assert_eq!(res.headers()["content-type"], "image/png");
        assert_eq!(res.headers()["x-content-type-options"], "nosniff");
        assert_eq!(
            res.headers()["content-disposition"],
            "attachment; filename=\"shot.png\"; filename*=UTF-8''shot.png"
        );
        assert_eq!(res.bytes().await.unwrap().to_vec(), png_bytes());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_attachments_are_refused_and_nothing_is_stored() {
    let s = Support::start().await;
    let (_a, at) = s.user("up@example.com", Role::Customer).await;
    let existing = s.ticket(&at, "existing", "first").await;
    let exe = {
        let mut b = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff".to_vec();
        b.extend(std::iter::repeat_n(0u8, 4000));
        b
    };
    let big = {
        let mut b = png_bytes();
        b.resize(6_000_000, 7);
        b
    };
    let cases: Vec<(&str, &str, Vec<u8>, StatusCode)> = vec![
        (
            "invoice.png",
            "image/png",
            exe.clone(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ),
        (
            "setup.exe",
            "application/octet-stream",
            exe,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ),
        ("big.png", "image/png", big, StatusCode::PAYLOAD_TOO_LARGE),
        (
            "../../etc/passwd.png",
            "image/png",
            png_bytes(),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "..\\..\\win.png",
            "image/png",
            png_bytes(),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "/tmp/abs.png",
            "image/png",
            png_bytes(),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "page.html",
            "text/html",
            b"<script>alert(1)</script>".to_vec(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ),
        (
            "shot.png",
            "application/pdf",
            png_bytes(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ),
        (
            "empty.txt",
            "text/plain",
            Vec::new(),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
    ];
    for (name, ctype, bytes, expected) in cases {
        // As a new ticket (the panel's multipart) and as a reply.
        let (status, e) = Form::new()
            .text("user_id", "1")
            .text("subject", "with a file")
            .text("message", "see file")
            .text("importance", "low")
            .file("attachment", name, ctype, &bytes)
            .send(s.post("/api/tickets", &at))
            .json_or_text()
            .await;
        assert_eq!(status, expected, "new ticket with {name}: {e}");
        assert!(e["detail"].is_string() && e["code"].is_string(), "{e}");
        assert_eq!(
            Form::new()
                .text("message", "see file")
                .file("file", name, ctype, &bytes)
                .send(s.post(&format!("/api/tickets/{existing}/messages"), &at))
                .status()
                .await,
            expected,
            "reply with {name}"
        );
    }
    assert_eq!(s.count("SELECT count(*) AS n FROM tickets").await, 1);
    assert_eq!(
        s.count("SELECT count(*) AS n FROM ticket_messages").await,
        1
    );
    assert_eq!(
        s.count("SELECT count(*) AS n FROM ticket_attachments")
            .await,
        0
    );
    assert_eq!(s.stored_files(), 0, "no bytes on disk either");

    // Two files in one message are refused too.
    assert_eq!(
        Form::ticket("two", "two files")
            .file("a", "a.png", "image/png", &png_bytes())
            .file("b", "b.png", "image/png", &png_bytes())
            .send(s.post("/api/tickets", &at))
            .status()
            .await,
        StatusCode::UNPROCESSABLE_ENTITY
    );

    // What is allowed goes through: a Persian-named text file, stored under a generated key.
    let text = "گزارش خطا: ربات متوقف شد\n".repeat(20);
    let m = Form::new()
        .text("message", "")
        .file("attachment", "گزارش.txt", "text/plain", text.as_bytes())
        .send(s.post(&format!("/api/tickets/{existing}/messages"), &at))
        .json_expecting(StatusCode::CREATED)
        .await;
    assert_eq!(m["attachment"]["filename"], "گزارش.txt");
    assert_eq!(m["attachment"]["content_type"], "text/plain; charset=utf-8");
    let key: String = {
        use diesel::prelude::*;
        use diesel_async::RunQueryDsl;
        use zimmer_db::schema::ticket_attachments;
        let mut conn = s.ctx.db.connect().await;
        ticket_attachments::table
            .select(ticket_attachments::storage_key)
            .first(&mut conn)
            .await
            .unwrap()
    };
    assert!(!key.contains("گزارش") && !key.contains(".txt"), "{key}");
    assert_eq!(s.stored_files(), 1);
    let res = s
        .get(m["attachment"]["url"].as_str().unwrap(), &at)
        .call_expecting(StatusCode::OK)
        .await;
    assert_eq!(
        res.headers()["content-disposition"],
        "attachment; filename=\"_____.txt\"; filename*=UTF-8''%DA%AF%D8%B2%D8%A7%D8%B1%D8%B4.txt"
    );
    assert_eq!(res.text().await.unwrap(), text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_answers_json_4xx() {
    let s = Support::start().await;
    let (_a, at) = s.user("input@example.com", Role::Customer).await;
    let id = s.ticket(&at, "ok", "ok").await;
    let cases = [
        (
            json!({"subject": "", "message": "x"}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (json!({"subject": "x"}), StatusCode::UNPROCESSABLE_ENTITY),
        (
            json!({"subject": "a\u{202E}b", "message": "x"}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"subject": "x".repeat(201), "message": "x"}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"subject": "x", "message": "x", "importance": "critical"}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"subject": "x", "message": "x", "user_automation_id": "abc"}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"subject": "x", "message": "x", "user_automation_id": 424242}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
    ];
    for (body, expected) in cases {
        let (status, e) = s.post("/api/tickets", &at).json(&body).json_or_text().await;
        assert_eq!(status, expected, "{body}: {e}");
        assert!(e["detail"].is_string(), "{e}");
    }
    for (content_type, body, expected) in [
        ("application/json", "{not json", StatusCode::BAD_REQUEST),
        ("text/xml", "<x/>", StatusCode::UNSUPPORTED_MEDIA_TYPE),
    ] {
        let req = s
            .post("/api/tickets", &at)
            .header("Content-Type", content_type);
        assert_eq!(req.body(body).status().await, expected, "{content_type}");
    }
    for (path, body) in [
        (format!("/api/tickets/{id}"), json!({})),
        (format!("/api/tickets/{id}"), json!({"status": "done"})),
        (
            format!("/api/tickets/{id}/messages"),
            json!({"message": "  "}),
        ),
    ] {
        let req = if path.ends_with("messages") {
            s.post(&path, &at)
        } else {
            s.put(&path, &at)
        };
        let res = req.json(&body).send().await.unwrap();
        assert_eq!(
            res.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "{path} {body}"
        );
    }
    assert_eq!(
        s.get("/api/tickets/not-a-number", &at).status().await,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        s.get("/api/tickets?status=bogus", &at).status().await,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    assert_eq!(
        s.app.get("/api/tickets").status().await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(s.count("SELECT count(*) AS n FROM tickets").await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staff_filter_assign_and_the_assignee_must_be_staff() {
    let s = Support::start().await;
    let (c1, c1t) = s.user("c1@example.com", Role::Customer).await;
    let (_c2, c2t) = s.user("c2@example.com", Role::Customer).await;
    let (agent, agent_t) = s.user("agent@example.com", Role::SupportStaff).await;
    let (tech, _) = s.user("tech@example.com", Role::TechnicalTeam).await;
    let (_m, mt) = s.user("manager@example.com", Role::Manager).await;
    let t1 = s.ticket(&c1t, "one", "1").await;
    let t2 = s.ticket(&c2t, "two", "2").await;

    for bad in [
        json!({"assigned_to": c1}),
        json!({"assigned_to": tech}),
        json!({"assigned_to": 987654}),
    ] {
        let (status, e) = s.update_ticket(t1, &mt, bad.clone()).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}: {e}");
        assert_eq!(e["errors"][0]["field"], "assigned_to");
    }
    let (status, t) = s
        .update_ticket(
            t1,
            &mt,
            json!({"assigned_to": agent, "status": "in_progress"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{t}");
    assert_eq!(t["assigned_to"], agent);
    // The assignee is told.
    assert_eq!(
        s.count(&format!(
            "SELECT count(*) AS n FROM notifications WHERE user_id = {agent} AND kind = 'ticket'"
        ))
        .await,
        1
    );

    let ids = |v: &serde_json::Value| -> Vec<i64> {
        v["tickets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["id"].as_i64().unwrap())
            .collect()
    };
    for (query, token, want) in [
        ("assigned_to=me".to_owned(), &agent_t, vec![t1]),
        ("assigned_to=none".to_owned(), &mt, vec![t2]),
        (format!("user_id={c1}"), &mt, vec![t1]),
        ("status=open,resolved".to_owned(), &mt, vec![t2]),
    ] {
        let l = s.read(&format!("/api/tickets?{query}"), token).await;
        assert_eq!(ids(&l), want, "{query}");
    }
    let l = s.read("/api/tickets?page=2&page_size=1", &mt).await;
    assert_eq!(
        (l["total"].as_i64(), l["page"].as_i64(), ids(&l)),
        (Some(2), Some(2), vec![t1])
    );

    // A customer writing on an assigned ticket notifies the assignee.
    assert_eq!(
        s.post_message(t1, &c1t, "any news?").await.0,
        StatusCode::CREATED
    );
    assert_eq!(
        s.count(&format!(
            "SELECT count(*) AS n FROM notifications WHERE user_id = {agent} AND kind = 'ticket'"
        ))
        .await,
        2
    );
    // Unassign.
    let (_, t) = s
        .update_ticket(t1, &agent_t, json!({"assigned_to": null}))
        .await;
    assert!(t["assigned_to"].is_null(), "{t}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_internal_api_acts_as_a_named_staff_member() {
    let s = Support::start().await;
    let (c, ct) = s.user("cust@example.com", Role::Customer).await;
    let (agent, _) = s.user("agent@example.com", Role::SupportStaff).await;
    let (tech, _) = s.user("tech@example.com", Role::TechnicalTeam).await;
    let id = s.ticket(&ct, "help", "please").await;
    let path = format!("/internal/tickets/{id}");
    let internal = |rb: reqwest::RequestBuilder| {
        rb.header("X-Internal-Token", zimmer_config::DEV_INTERNAL_TOKEN)
    };

    assert_eq!(s.app.get(&path).status().await, StatusCode::UNAUTHORIZED);
    assert_eq!(
        s.app
            .get(&path)
            .header("X-Internal-Token", "wrong")
            .status()
            .await,
        StatusCode::UNAUTHORIZED
    );
    let t = internal(s.app.get(&path))
        .json_expecting(StatusCode::OK)
        .await;
    assert_eq!(t["user_id"], c);

    for actor in [c, tech] {
        let change = json!({"actor_id": actor, "status": "resolved"});
        assert_eq!(
            internal(s.app.put(&path)).json(&change).status().await,
            StatusCode::FORBIDDEN
        );
    }
    let change = json!({"actor_id": agent, "assigned_to": agent, "priority": "urgent"});
    let t = internal(s.app.put(&path))
        .json(&change)
        .json_expecting(StatusCode::OK)
        .await;
    assert_eq!(
        (t["assigned_to"].as_i64(), t["priority"].as_str()),
        (Some(agent), Some("urgent"))
    );
    let reply = json!({"actor_id": agent, "message": "از داشبورد"});
    let m = internal(s.app.post(&format!("{path}/messages")))
        .json(&reply)
        .json_expecting(StatusCode::CREATED)
        .await;
    assert_eq!(
        (m["is_staff"].as_bool(), m["author_id"].as_i64()),
        (Some(true), Some(agent))
    );
    // The customer is notified of the staff reply, once.
    assert_eq!(
        s.count(&format!(
            "SELECT count(*) AS n FROM notifications WHERE user_id = {c}"
        ))
        .await,
        1
    );
}
