//! KB monitoring on the admin dashboard (docs/panels.md "Knowledge base, KB templates, KB
//! monitoring"): status through the marketplace and its vendor, resets by the row position of
//! the staff member's own last listing (never another customer), the direct reset path, the
//! history shapes, and who may call them.

use crate::common::{self, With, World};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use zimmer_fake_vendor::KbAnswer;
use zimmer_jwt::Role;
use zimmer_testkit::str_at;

/// A customer with a user automation of `automation`; returns the user automation id.
async fn subscribe(w: &World, email: &str, name: &str, automation: i64) -> i64 {
    let (user, _) = w.user(email, Role::Customer).await;
    w.update_user(user, &format!("name = '{name}'")).await;
    w.insert(&format!(
        "INSERT INTO user_automations (user_id, automation_id) VALUES ({user}, {automation}) \
         RETURNING id"
    ))
    .await
}

async fn post(w: &World, path: &str, token: &str) -> (StatusCode, Value) {
    common::body(w.send(Method::POST, path, token, &json!({})).await).await
}

/// The direct reset path of user automation `ua` (no listing position involved).
async fn reset_directly(w: &World, ua: i64, token: &str) -> (StatusCode, Value) {
    post(
        w,
        &format!("/api/admin/user-automations/{ua}/kb-reset"),
        token,
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kb_reset_by_position_resets_exactly_the_row_this_staff_member_was_shown() {
    let w = World::start(With::MARKETPLACE).await;
    let kb = common::kb_vendor().await;
    let (manager, m_token) = w.user("m@example.com", Role::Manager).await;
    let (_, t_token) = w.user("t@example.com", Role::TechnicalTeam).await;

    // Decoys first: their user automations have the small ids a row number would hit.
    let (decoy_user, _) = w.user("decoy@example.com", Role::Customer).await;
    let (decoy_automation, decoy1) = w.automation_for(decoy_user, "Decoy", 0).await;
    let decoy2 = w
        .insert(&format!(
            "INSERT INTO user_automations (user_id, automation_id) VALUES ({manager}, \
             {decoy_automation}) RETURNING id"
        ))
        .await;
    let automation = w.kb_automation(&kb).await;
    let first = subscribe(&w, "ann@example.com", "Ann", automation).await;
    let second = subscribe(&w, "bob@example.com", "Bob", automation).await;
    assert!(decoy1 <= 2 && decoy2 <= 2 && first > 2 && second > 2);
    kb.set_kb_status_for(second, KbAnswer::status("warning"));

    // Without a listing: 409, and nobody is reset.
    let (status, body) = post(&w, "/api/admin/kb-reset/2", &m_token).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(str_at(&body, "detail").contains("reload"), "{body}");

    let report = w
        .json(
            &format!("/api/admin/kb-status?automation_id={automation}"),
            &m_token,
        )
        .await;
    assert_eq!(report["automation_name"], "KB Bot");
    assert_eq!(report["total_users"], 2);
    let rows = report["kb_statuses"].as_array().unwrap();
    assert_eq!(rows[0]["user_automation_id"], first);
    assert_eq!(rows[0]["name"], "Ann");
    assert_eq!(rows[0]["kb_health"], "healthy");
    assert_eq!(rows[1]["user_automation_id"], second);
    assert_eq!(rows[1]["kb_health"], "warning");
    assert!(rows[1]["error_logs"].is_array() && rows[1]["last_updated"].is_string());
    assert!(rows[1]["supports_reset"].is_boolean() && rows[1]["backup_status"].is_boolean());

    // Row 2 of the listing is Bob's, not user automation 2.
    let (status, body) = post(&w, "/api/admin/kb-reset/2", &m_token).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body,
        json!({
            "message": body["message"],
            "user_automation_id": second,
            "automation_name": "KB Bot",
            "reset_status": "reset_started",
        })
    );
    assert!(body["message"].is_string());
    let (status, body) = post(&w, "/api/admin/kb-reset/1", &m_token).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["user_automation_id"], first);
    let reset: Vec<i64> = kb
        .kb_resets()
        .iter()
        .map(|c| c.user_automation_id)
        .collect();
    assert_eq!(reset, vec![second, first]);

    // Audited with the real user automation id.
    w.assert_count(
        &format!(
            "SELECT count(*) AS n FROM admin_audit_log WHERE action = 'kb.reset' \
             AND target_type = 'user_automation' AND target_id = '{second}' \
             AND actor_id = {manager} AND details->>'position' = '2'"
        ),
        1,
    )
    .await;

    // Outside the listing, or another staff member's (who loaded none): 409.
    for path in ["/api/admin/kb-reset/3", "/api/admin/kb-reset/0"] {
        let (status, body) = post(&w, path, &m_token).await;
        assert_eq!(status, StatusCode::CONFLICT, "{path}: {body}");
    }
    let (status, _) = post(&w, "/api/admin/kb-reset/1", &t_token).await;
    assert_eq!(status, StatusCode::CONFLICT);
    // Not digits: not a row.
    for path in ["/api/admin/kb-reset/abc", "/api/admin/kb-reset/-1"] {
        let (status, _) = post(&w, path, &m_token).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
    }
    assert_eq!(kb.kb_resets().len(), 2, "nothing else was reset");

    // The direct path.
    let (status, body) = reset_directly(&w, first, &t_token).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["user_automation_id"], first);
    assert_eq!(kb.kb_resets().last().unwrap().user_automation_id, first);
    let (status, _) = reset_directly(&w, 999999, &t_token).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, body) = reset_directly(&w, decoy1, &t_token).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "no KB reset URL: {body}");
    kb.set_kb_reset(KbAnswer::body(json!({ "detail": "busy" })).http(500));
    let (status, body) = reset_directly(&w, first, &t_token).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
    assert!(str_at(&body, "detail").contains("500"), "{body}");

    // kb-status errors as the marketplace gives them.
    let res = w
        .get(
            &format!("/api/admin/kb-status?automation_id={decoy_automation}"),
            &m_token,
        )
        .await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let res = w
        .get("/api/admin/kb-status?automation_id=999999", &m_token)
        .await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kb_history_stats_and_chart_have_the_dashboard_shapes() {
    let w = World::start(With::MARKETPLACE).await;
    let kb = common::kb_vendor().await;
    let (_, token) = w.user("tech@example.com", Role::TechnicalTeam).await;
    let automation = w
        .insert(&format!(
            "INSERT INTO automations (name, description, price_per_token, api_kb_status_url) \
             VALUES ('Hist Bot', 'kb', 1000, '{}') RETURNING id",
            kb.kb_status_url()
        ))
        .await;
    let ua = subscribe(&w, "cy@example.com", "Cy", automation).await;
    kb.set_kb_status(KbAnswer::body(json!({
        "status": "problematic", "backup_status": true, "error_logs": ["x"],
    })));
    for _ in 0..2 {
        w.json(
            &format!("/api/admin/kb-status?automation_id={automation}"),
            &token,
        )
        .await;
    }

    let list = w
        .json(
            &format!("/api/admin/kb-history?automation_id={automation}&page=1&limit=20"),
            &token,
        )
        .await;
    let list = list.as_array().expect("a bare array");
    assert_eq!(list.len(), 2);
    let keys: Vec<&str> = list[0]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    for k in [
        "id",
        "user_id",
        "user_name",
        "user_automation_id",
        "automation_id",
        "automation_name",
        "kb_health",
        "backup_status",
        "error_logs",
        "timestamp",
    ] {
        assert!(keys.contains(&k), "{k} in {keys:?}");
    }
    assert_eq!(list[0]["user_automation_id"], ua);
    assert_eq!(list[0]["user_name"], "Cy");
    assert_eq!(list[0]["kb_health"], "problematic");
    assert_eq!(list[0]["error_logs"], json!(["x"]));

    let today = chrono::Utc::now().format("%Y-%m-%d").to_string();
    let stats = w
        .json(
            &format!(
                "/api/admin/kb-history/stats?automation_id={automation}&from_date={today}&to_date={today}"
            ),
            &token,
        )
        .await;
    assert_eq!(
        stats,
        json!({ "total_records": 2, "healthy_count": 0, "warning_count": 0,
                "problematic_count": 2, "backup_count": 2 })
    );
    let chart = w
        .json(
            &format!("/api/admin/kb-history/chart-data?automation_id={automation}&days=7"),
            &token,
        )
        .await;
    let points = chart["chart_data"].as_array().unwrap();
    assert_eq!(points.len(), 7);
    assert_eq!(
        points[6],
        json!({ "date": today, "healthy": 0, "warning": 0, "problematic": 2, "total": 2 })
    );
    assert_eq!(chart["date_range"]["end_date"], today);

    // A malformed date names the format; literal segments are never ids.
    let res = w
        .get("/api/admin/kb-history?from_date=12/03/2026", &token)
        .await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let (_, body) = common::body(res).await;
    assert!(str_at(&body, "detail").contains("YYYY-MM-DD"), "{body}");
    let res = w.get("/api/admin/kb-history/abc", &token).await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn support_staff_may_not_use_kb_monitoring() {
    let w = World::start(With::MARKETPLACE).await;
    let (_, s_token) = w.user("s@example.com", Role::SupportStaff).await;
    let (_, c_token) = w.user("c@example.com", Role::Customer).await;
    for token in [&s_token, &c_token] {
        for path in [
            "/api/admin/kb-status?automation_id=1",
            "/api/admin/kb-history",
            "/api/admin/kb-history/stats",
            "/api/admin/kb-history/chart-data",
        ] {
            assert_eq!(
                w.get(path, token).await.status(),
                StatusCode::FORBIDDEN,
                "{path}"
            );
        }
        for path in [
            "/api/admin/kb-reset/1",
            "/api/admin/user-automations/1/kb-reset",
        ] {
            let (status, _) = post(&w, path, token).await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{path}");
        }
    }
}
