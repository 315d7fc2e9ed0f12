//! Write-through to the owners (marketplace automations, billing discounts and payments,
//! support tickets), broadcasts through the event bus, payments overview, system status and
//! the audit log.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use common::{WAIT, With, World, body};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use zimmer_jwt::Role;
use zimmer_testkit::str_at;

async fn audit_actions(w: &World, token: &str) -> Vec<String> {
    let v = w.json("/api/admin/audit-log?page_size=100", token).await;
    v["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| str_at(e, "action").to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn automations_are_managed_through_the_marketplace() {
    let w = World::start(With::MARKETPLACE).await;
    let [(tech_id, tech), (_, manager)] = w.staff([Role::TechnicalTeam, Role::Manager]).await;
    let (customer, _) = w.user("c@example.com", Role::Customer).await;

    let payload = json!({ "name": "دستیار تلگرام", "price_per_token": 1500, "demo_tokens": 7, "description": "x" });
    let created = w
        .post(
            "/api/admin/automations",
            &tech,
            &payload,
            StatusCode::CREATED,
        )
        .await;
    let id = created["id"].as_i64().unwrap();
    w.assert_count(
        &format!(
            "SELECT count(*) AS n FROM automations WHERE id = {id} AND name = 'دستیار تلگرام' \
             AND price_per_token = 1500"
        ),
        1,
    )
    .await;
    // Edit; the owner's validation reaches the caller as a 422 with its field errors.
    let path = format!("/api/admin/automations/{id}");
    for (edit, expected, field) in [
        (json!({ "price_per_token": 2000 }), StatusCode::OK, None),
        (
            json!({ "pricing_type": "free_for_all" }),
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("pricing_type"),
        ),
        (json!([1]), StatusCode::UNPROCESSABLE_ENTITY, None),
    ] {
        let (status, v) = body(w.send(Method::PUT, &path, &tech, &edit).await).await;
        assert_eq!(status, expected, "{edit}: {v}");
        if let Some(field) = field {
            assert_eq!(v["errors"][0]["field"], field, "{edit}");
        }
    }

    // A service token is shown once, never stored in plaintext, never logged.
    let payload = json!({});
    let path = format!("/api/admin/automations/{id}/service-token");
    let res = w.send(Method::POST, &path, &tech, &payload).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    assert_eq!(res.headers()["cache-control"], "no-store");
    let v: Value = res.json().await.unwrap();
    let token = str_at(&v, "service_token").to_owned();
    let v = w.json(&format!("/api/admin/automations/{id}"), &tech).await;
    assert_eq!(v["has_service_token"], true);
    assert_eq!(v["price_per_token"], 2000);
    assert!(!v.to_string().contains(&token));
    w.assert_count(
        &format!("SELECT count(*) AS n FROM admin_audit_log WHERE details::text LIKE '%{token}%'"),
        0,
    )
    .await;

    // Health check now: no URL configured is the owner's clear 409.
    let payload = json!({});
    let path = format!("/api/admin/automations/{id}/health-check");
    w.post(&path, &tech, &payload, StatusCode::CONFLICT).await;

    // Delete: with a customer it is only unlisted; without, gone.
    w.sql(&format!(
        "INSERT INTO user_automations (user_id, automation_id) VALUES ({customer}, {id})"
    ))
    .await;
    let v = w
        .delete_expecting(
            &format!("/api/admin/automations/{id}"),
            &tech,
            StatusCode::OK,
        )
        .await;
    assert_eq!(v["deleted"], false);
    let v = w.json(&format!("/api/admin/automations/{id}"), &tech).await;
    assert_eq!(v["is_listed"], false);
    assert_eq!(v["users_count"], 1);
    let payload = json!({ "name": "Short-lived", "price_per_token": 1 });
    let res = w
        .send(Method::POST, "/api/admin/automations", &tech, &payload)
        .await;
    let other = body(res).await.1["id"].as_i64().unwrap();
    let res = w
        .delete(&format!("/api/admin/automations/{other}"), &tech)
        .await;
    assert_eq!(body(res).await.1["deleted"], true);
    assert_eq!(
        w.get(&format!("/api/admin/automations/{other}"), &tech)
            .await
            .status(),
        StatusCode::NOT_FOUND
    );

    w.assert_totals(
        &tech,
        &[
            ("/api/admin/automations?is_listed=false", 1),
            ("/api/admin/automations?search=تلگرام", 1),
        ],
    )
    .await;

    let actions = audit_actions(&w, &manager).await;
    for a in [
        "automation.create",
        "automation.update",
        "automation.issue_service_token",
        "automation.unlist",
        "automation.delete",
    ] {
        assert!(actions.iter().any(|x| x == a), "{a} in {actions:?}");
    }
    // Refused changes are not logged.
    assert_eq!(
        actions.iter().filter(|a| *a == "automation.update").count(),
        1
    );
    let v = w
        .json_total(
            &format!("/api/admin/audit-log?actor_id={tech_id}&action=automation.create"),
            &manager,
            2,
        )
        .await;
    assert_eq!(v["items"][0]["actor_email"], "tech@example.com");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn discounts_and_payments_for_managers() {
    let w = World::start(With::BILLING).await;
    let (_, manager) = w.user("boss@example.com", Role::Manager).await;
    let (c1, _) = w.user("c1@example.com", Role::Customer).await;
    let (c2, _) = w.user("c2@example.com", Role::Customer).await;
    let (a1, ua1) = w.automation_for(c1, "Pay bot", 0).await;
    let ua2 = w
        .insert(&format!(
            "INSERT INTO user_automations (user_id, automation_id) VALUES ({c2}, {a1}) RETURNING id"
        ))
        .await;

    // Discounts through billing.
    let payload = json!({ "code": " NOROOZ1405 ", "percent_off": 20, "max_redemptions": 100 });
    let d = w
        .post(
            "/api/admin/discounts",
            &manager,
            &payload,
            StatusCode::CREATED,
        )
        .await;
    assert_eq!(d["code"], "norooz1405");
    let id = d["id"].as_i64().unwrap();
    for (refused, expected) in [
        (
            json!({ "code": "norooz1405", "percent_off": 10 }),
            StatusCode::CONFLICT,
        ),
        (
            json!({ "code": "bad", "percent_off": 101 }),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
    ] {
        let res = w.send(Method::POST, "/api/admin/discounts", &manager, &refused);
        assert_eq!(res.await.status(), expected, "{refused}");
    }
    let payload = json!({ "active": false, "max_redemptions": null });
    let path = format!("/api/admin/discounts/{id}");
    let v = w.put(&path, &manager, &payload, StatusCode::OK).await;
    assert_eq!(v["active"], false);
    w.json_total("/api/admin/discounts?search=norooz", &manager, 1)
        .await;
    let v = w
        .json(&format!("/api/admin/discounts/{id}"), &manager)
        .await;
    assert_eq!(v["max_redemptions"], Value::Null);

    // Payments: all users, filtered and paged; money as integers.
    w.sql(&format!(
        "INSERT INTO payments (user_id, automation_id, user_automation_id, amount, \
         tokens_purchased, status, verified_at, created_at, discount_code, discount_percent) VALUES \
         ({c1}, {a1}, {ua1}, 80000, 100, 'succeeded', now(), now(), 'norooz1405', 20), \
         ({c1}, {a1}, {ua1}, 100000, 100, 'failed', NULL, now() - interval '3 days', NULL, NULL), \
         ({c2}, {a1}, {ua2}, 50000, 50, 'pending', NULL, '2025-01-15T10:00:00Z', NULL, NULL)"
    ))
    .await;
    let pid = w
        .insert("SELECT id FROM payments WHERE status = 'succeeded'")
        .await;
    w.sql(&format!(
        "INSERT INTO discount_redemptions (discount_id, user_id, payment_id, status, \
         amount_before, amount_discount, amount_after) VALUES ({id}, {c1}, {pid}, 'confirmed', \
         100000, 20000, 80000)"
    ))
    .await;
    let v = w.json_total("/api/admin/payments", &manager, 3).await;
    assert_eq!(v["items"][0]["payment_status"], "succeeded", "newest first");
    // The dashboard's vocabulary in `status` (README.md, "admin dashboard").
    assert_eq!(v["items"][0]["status"], "completed");
    assert_eq!(v["items"][0]["user_email"], "c1@example.com");
    assert_eq!(v["items"][0]["automation_name"], "Pay bot");
    let of_c2 = format!("/api/admin/payments?user_id={c2}");
    w.assert_totals(
        &manager,
        &[
            ("/api/admin/payments?status=failed", 1),
            (&of_c2, 1),
            // `to` includes the whole day.
            ("/api/admin/payments?from=2025-01-15&to=2025-01-15", 1),
        ],
    )
    .await;
    let v = w
        .json_total(
            "/api/admin/payments?from=2025-01-16T00:00:00Z&page_size=1&page=2",
            &manager,
            2,
        )
        .await;
    assert_eq!(v["items"].as_array().unwrap().len(), 1);
    let bad = StatusCode::UNPROCESSABLE_ENTITY;
    w.assert_statuses(
        &manager,
        &[
            ("/api/admin/payments?status=paid", bad),
            ("/api/admin/payments?from=yesterday", bad),
            ("/api/admin/payments?from=2025-02-01&to=2025-01-01", bad),
        ],
    )
    .await;
    let v = w
        .json(&format!("/api/admin/payments/{pid}"), &manager)
        .await;
    assert_eq!(v["amount"], 80_000);
    assert_eq!(v["redemption"]["amount_discount"], 20_000);
    let v = w
        .json(&format!("/api/admin/discounts/{id}/redemptions"), &manager)
        .await;
    // A bare array, as the dashboard's redemptions page reads it (docs/panels.md).
    let rows = v.as_array().unwrap();
    assert_eq!(rows.len(), 1, "{v}");
    assert_eq!(rows[0]["amount_discount"], 20_000);
    assert_eq!(rows[0]["status"], "confirmed");

    // Reconciling a settled payment checks nothing (billing's rule) and is audited.
    let payload = json!({});
    let path = format!("/api/admin/payments/{pid}/reconcile");
    let v = w.post(&path, &manager, &payload, StatusCode::OK).await;
    assert_eq!(v["checked"], false);

    // A used code is deactivated, not deleted.
    let v = w
        .delete_expecting(
            &format!("/api/admin/discounts/{id}"),
            &manager,
            StatusCode::OK,
        )
        .await;
    assert_eq!(v["deleted"], false);

    let actions = audit_actions(&w, &manager).await;
    assert_eq!(
        actions,
        vec![
            "discount.delete",
            "payment.reconcile",
            "discount.update",
            "discount.create"
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tickets_are_overseen_and_answered_through_support() {
    let w = World::start(With::SUPPORT).await;
    let [(support_id, support), (_, manager)] = w.staff([Role::SupportStaff, Role::Manager]).await;
    let (c1, _) = w.user("c1@example.com", Role::Customer).await;
    let t1 = w
        .insert(&format!(
            "INSERT INTO tickets (user_id, title, description, priority) VALUES \
             ({c1}, 'ربات جواب نمی‌دهد', 'since yesterday', 'high') RETURNING id"
        ))
        .await;
    w.sql(&format!(
        "INSERT INTO ticket_messages (ticket_id, author_id, body) VALUES ({t1}, {c1}, 'since yesterday')"
    ))
    .await;
    w.sql(&format!(
        "INSERT INTO tickets (user_id, title, description, status, updated_at) VALUES \
         ({c1}, 'old', 'done', 'closed', now() - interval '9 days')"
    ))
    .await;

    let v = w.json_total("/api/admin/tickets", &support, 2).await;
    assert_eq!(v["items"][0]["id"], t1, "most recently active first");
    assert_eq!(v["items"][0]["messages_count"], 1);
    assert_eq!(v["items"][0]["user_email"], "c1@example.com");
    w.assert_totals(
        &support,
        &[
            ("/api/admin/tickets?status=closed", 1),
            ("/api/admin/tickets?assigned_to=none&priority=high", 1),
            ("/api/admin/tickets?search=نمی‌دهد", 1),
        ],
    )
    .await;
    w.assert_statuses(
        &support,
        &[(
            "/api/admin/tickets?assigned_to=me",
            StatusCode::UNPROCESSABLE_ENTITY,
        )],
    )
    .await;

    // Assign and change status, then reply, all as the staff member, through support.
    let payload = json!({ "status": "in_progress", "assigned_to": support_id, "actor_id": 1 });
    let path = format!("/api/admin/tickets/{t1}");
    w.put(&path, &support, &payload, StatusCode::OK).await;
    let payload = json!({ "message": "در حال بررسی هستیم" });
    let path = format!("/api/admin/tickets/{t1}/messages");
    w.post(&path, &support, &payload, StatusCode::CREATED).await;
    w.assert_count(
        &format!(
            "SELECT count(*) AS n FROM tickets WHERE id = {t1} AND status = 'in_progress' \
             AND assigned_to = {support_id}"
        ),
        1,
    )
    .await;
    let v = w.json(&format!("/api/admin/tickets/{t1}"), &support).await;
    assert_eq!(v["assigned_to_name"], "Test User");
    let thread = v["messages"].as_array().unwrap();
    assert_eq!(thread.len(), 2);
    assert_eq!(thread[1]["body"], "در حال بررسی هستیم");
    assert_eq!(thread[1]["is_staff"], true);
    assert_eq!(thread[1]["author_id"], support_id);
    // The customer was notified by support.
    assert!(
        w.count(&format!(
            "SELECT count(*) AS n FROM notifications WHERE user_id = {c1} AND kind = 'ticket'"
        ))
        .await
            >= 1
    );
    let actions = audit_actions(&w, &manager).await;
    assert_eq!(actions, vec!["ticket.reply", "ticket.update"]);
    assert_eq!(
        w.get("/api/admin/tickets/999999", &support).await.status(),
        StatusCode::NOT_FOUND
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_broadcast_reaches_every_matching_user_once() {
    let w = World::start(With::SUPPORT).await;
    let [(_, support), (_, manager)] = w.staff([Role::SupportStaff, Role::Manager]).await;
    for i in 0..3 {
        w.user(&format!("c{i}@example.com"), Role::Customer).await;
    }
    let payload = json!({ "title": "به‌روزرسانی", "body": "سرویس امشب ساعت ۲ به‌روز می‌شود", "role": "customer" });
    let v = w
        .post(
            "/api/admin/notifications/broadcast",
            &support,
            &payload,
            StatusCode::ACCEPTED,
        )
        .await;
    assert!(v["event_id"].is_string());
    zimmer_testkit::eventually("support notifies every customer", WAIT, || async {
        w.count("SELECT count(*) AS n FROM notifications WHERE kind = 'admin'")
            .await
            == 3
    })
    .await;
    w.assert_count(
        "SELECT count(*) AS n FROM notifications n JOIN users u ON u.id = n.user_id \
         WHERE n.kind = 'admin' AND u.role <> 'customer'",
        0,
    )
    .await;
    assert_eq!(
        w.count("SELECT count(*) AS n FROM notifications WHERE title = 'به‌روزرسانی'")
            .await,
        3,
        "Persian kept exactly"
    );
    let log = w
        .json_total(
            "/api/admin/audit-log?action=notification.broadcast",
            &manager,
            1,
        )
        .await;
    assert_eq!(log["items"][0]["details"]["role"], "customer");
    for bad in [
        json!({ "title": "", "body": "x" }),
        // The body may be empty (docs/panels.md); the type must be known.
        json!({ "title": "x", "body": "y", "type": "urgent" }),
        json!({ "title": "x", "body": "y", "role": "everyone" }),
        json!({ "title": "a\u{202E}b", "body": "y" }),
    ] {
        w.post(
            "/api/admin/notifications/broadcast",
            &support,
            &bad,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    }
    w.assert_count(
        "SELECT count(*) AS n FROM outbox WHERE producer = 'admin'",
        1,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn system_status_reports_each_service_and_the_queues() {
    let w = World::start(With::SUPPORT.and(With::MARKETPLACE)).await;
    let (_, tech) = w.user("tech@example.com", Role::TechnicalTeam).await;
    let v = w.json("/api/admin/system/status", &tech).await;
    assert_eq!(v["database"]["status"], "ok");
    assert_eq!(v["redis"]["status"], "ok");
    assert_eq!(v["services"]["support"]["status"], "ready", "{v}");
    assert_eq!(v["services"]["marketplace"]["status"], "ready", "{v}");
    // Auth and billing are not running in this test: the page says so instead of failing.
    assert_eq!(v["services"]["auth"]["status"], "unreachable");
    assert_eq!(v["services"]["billing"]["status"], "unreachable");
    assert_eq!(v["status"], "degraded");
    // Broker subscriptions start in the background; the support queue appears with its
    // consumer.
    zimmer_testkit::eventually("the support queue is reported", WAIT, || async {
        let v = w.json("/api/admin/system/status", &tech).await;
        v["broker"]["queues"].as_array().is_some_and(|qs| {
            qs.iter().any(|q| {
                q["name"]
                    .as_str()
                    .is_some_and(|n| n.ends_with(".support.notifications"))
                    && q["consumers"].as_u64() >= Some(1)
                    && q["dead_lettered"] == 0
            })
        })
    })
    .await;
    assert!(v["outbox"].is_array());
}
