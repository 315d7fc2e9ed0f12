//! Notifications from the dashboard (docs/panels.md "Fallback log and notifications"): to chosen
//! users through support's internal API (exact `created`, skipped ids, the user's list and live
//! stream show it), and the broadcast's `type`, `data` and role rules.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use common::{Call, WAIT, With, World, body};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use zimmer_jwt::Role;
use zimmer_testkit::str_at;

fn with_support() -> With {
    With {
        support: true,
        ..With::NONE
    }
}

/// The user's own notifications, as the panel lists them (support).
async fn notifications_of(w: &World, token: &str) -> Vec<Value> {
    let support = w.support.as_ref().unwrap();
    let res = support
        .get("/api/notifications")
        .bearer_auth(token)
        .call()
        .await;
    let (status, v) = body(res).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let items = if v.is_array() { &v } else { &v["items"] };
    items.as_array().unwrap().clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn chosen_users_get_one_notification_each_and_the_count_is_exact() {
    let w = World::start(with_support()).await;
    let [(_, agent), (_, tech)] = w.staff([Role::SupportStaff, Role::TechnicalTeam]).await;
    let (sara, sara_token) = w.user("sara@example.com", Role::Customer).await;
    let (reza, reza_token) = w.user("reza@example.com", Role::Customer).await;
    let (gone, _) = w.user("gone@example.com", Role::Customer).await;
    let (bystander, bystander_token) = w.user("other@example.com", Role::Customer).await;
    w.update_user(gone, "is_active = false").await;

    // Sara's live stream is open before the call.
    let support = w.support.as_ref().unwrap();
    let stream = support
        .get("/api/notifications/stream")
        .bearer_auth(&sara_token)
        .call_expecting(StatusCode::OK)
        .await;
    let mut stream = stream;

    let payload = json!({
        "user_ids": [sara, reza, sara, gone, 999_999],
        "type": "payment",
        "title": "پرداخت شما بررسی شد",
        "body": "",
        "data": {"payment_id": 7}
    });
    let v = w
        .post("/api/admin/notifications", &agent, &payload, StatusCode::OK)
        .await;
    assert_eq!(
        v["created"], 2,
        "sara once, reza; the inactive and unknown skipped: {v}"
    );

    for token in [&sara_token, &reza_token] {
        let items = notifications_of(&w, token).await;
        let n = items
            .iter()
            .find(|n| n["title"] == "پرداخت شما بررسی شد")
            .unwrap_or_else(|| panic!("{items:?}"));
        assert_eq!(n["type"], "payment");
        assert_eq!(n["body"], "");
        assert_eq!(n["data"], json!({"payment_id": 7}));
        assert_eq!(
            items
                .iter()
                .filter(|n| n["title"] == "پرداخت شما بررسی شد")
                .count(),
            1
        );
    }
    assert!(
        notifications_of(&w, &bystander_token)
            .await
            .iter()
            .all(|n| n["title"] != "پرداخت شما بررسی شد")
    );
    let _ = bystander;
    w.assert_count(
        &format!("SELECT count(*) AS n FROM notifications WHERE user_id = {gone}"),
        0,
    )
    .await;

    // The open stream delivers it live.
    let mut seen = String::new();
    let delivered = tokio::time::timeout(WAIT, async {
        while let Ok(Some(chunk)) = stream.chunk().await {
            seen.push_str(&String::from_utf8_lossy(&chunk));
            if seen.contains("پرداخت شما بررسی شد") {
                return true;
            }
        }
        false
    })
    .await
    .unwrap_or(false);
    assert!(delivered, "not on the stream: {seen}");

    // Audited with the count, not the recipients' data.
    w.assert_count(
        "SELECT count(*) AS n FROM admin_audit_log WHERE action = 'notification.send' \
         AND (details ->> 'created')::int = 2",
        1,
    )
    .await;

    // Refusals: 422 with a detail; technical_team 403.
    let many: Vec<i64> = (1..=10_001).collect();
    for bad in [
        json!({"user_ids": [], "type": "system", "title": "t", "body": "b"}),
        json!({"user_ids": many, "type": "system", "title": "t", "body": "b"}),
        json!({"user_ids": [sara], "type": "urgent", "title": "t", "body": "b"}),
        json!({"user_ids": [sara], "type": "system", "title": "", "body": "b"}),
        json!({"user_ids": [sara], "type": "system", "title": "t".repeat(201), "body": "b"}),
        json!({"user_ids": [sara], "type": "system", "title": "t", "body": "b".repeat(2001)}),
        json!({"user_ids": [sara], "type": "system", "title": "t", "body": "b", "data": [1]}),
        json!({"user_ids": [sara], "type": "system", "title": "t", "body": "b",
               "data": {"big": "x".repeat(9000)}}),
    ] {
        let v = w
            .post(
                "/api/admin/notifications",
                &agent,
                &bad,
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await;
        assert!(v["detail"].is_string());
    }
    let payload = json!({"user_ids": [sara], "type": "system", "title": "t", "body": "b"});
    w.post(
        "/api/admin/notifications",
        &tech,
        &payload,
        StatusCode::FORBIDDEN,
    )
    .await;
    assert_eq!(
        w.count(&format!(
            "SELECT count(*) AS n FROM notifications WHERE user_id = {sara}"
        ))
        .await,
        1,
        "no refused call created anything"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_broadcast_carries_type_and_data_and_names_the_roles_it_accepts() {
    let w = World::start(with_support()).await;
    let (_, manager) = w.user("boss@example.com", Role::Manager).await;
    for i in 0..3 {
        w.user(&format!("c{i}@example.com"), Role::Customer).await;
    }
    let (off, _) = w.user("off@example.com", Role::Customer).await;
    w.update_user(off, "is_active = false").await;

    for role in ["admin", "everyone", "Customer"] {
        let res = w
            .send(
                Method::POST,
                "/api/admin/notifications/broadcast",
                &manager,
                &json!({"type": "system", "title": "t", "body": "b", "role": role}),
            )
            .await;
        let (status, v) = body(res).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{role}: {v}");
        let detail = str_at(&v, "detail");
        for name in ["customer", "support_staff", "technical_team", "manager"] {
            assert!(detail.contains(name), "{detail}");
        }
    }

    let v = w.post("/api/admin/notifications/broadcast", &manager, &json!({"type": "automation", "title": "نسخه جدید", "body": "", "role": "customer", "data": {"automation_id": 3}}), StatusCode::ACCEPTED).await;
    assert_eq!(v["created"], 3, "the active customers: {v}");
    assert!(v["event_id"].is_string());
    let event = w
        .count(
            "SELECT count(*) AS n FROM outbox WHERE event_type = 'notification.broadcast' \
             AND payload -> 'data' ->> 'type' = 'automation' \
             AND payload -> 'data' -> 'data' = '{\"automation_id\": 3}'::jsonb",
        )
        .await;
    assert_eq!(event, 1, "the event carries type and data");
    zimmer_testkit::eventually("support notifies every active customer", WAIT, || async {
        w.count(
            "SELECT count(*) AS n FROM notifications WHERE kind = 'automation' \
             AND title = 'نسخه جدید' AND data = '{\"automation_id\": 3}'::jsonb",
        )
        .await
            == 3
    })
    .await;

    // Without a role, everyone active (the manager included); without a type, `admin`.
    let payload = json!({"title": "همه", "body": "b"});
    let v = w
        .post(
            "/api/admin/notifications/broadcast",
            &manager,
            &payload,
            StatusCode::ACCEPTED,
        )
        .await;
    assert_eq!(v["created"], 4);
    zimmer_testkit::eventually("everyone active notified", WAIT, || async {
        w.count("SELECT count(*) AS n FROM notifications WHERE title = 'همه' AND kind = 'admin'")
            .await
            == 4
    })
    .await;
}
