//! The admin dashboard's knowledge base, KB templates and fallback log calls (docs/panels.md
//! "Knowledge base, KB templates, KB monitoring", "Fallback log and notifications"), sent as
//! the pages send them, through the admin app with the marketplace running: the shapes the
//! pages read, the roles of docs/rbac.md, and an audit entry for every change.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use common::{Call, With, World, body};
use reqwest::{Method, Response, StatusCode};
use serde_json::{Value, json};
use zimmer_jwt::Role;

const INTERNAL_TOKEN: &str = zimmer_config::DEV_INTERNAL_TOKEN;

async fn market_world() -> World {
    World::start(With::MARKETPLACE).await
}

fn rows<'a>(v: &'a Value, key: &str) -> &'a Vec<Value> {
    assert!(
        v["total"].is_i64() && v["total_count"].is_i64(),
        "{key}: totals in {v}"
    );
    v[key]
        .as_array()
        .unwrap_or_else(|| panic!("`{key}` is not an array in {v}"))
}

async fn audited(w: &World, action: &str) -> i64 {
    w.count(&format!(
        "SELECT count(*) AS n FROM admin_audit_log WHERE action = '{action}'"
    ))
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn knowledge_entries_as_the_knowledge_page_reads_and_writes_them() {
    let w = market_world().await;
    let [(_, manager), (tech_id, tech), (_, support)] = w
        .staff([Role::Manager, Role::TechnicalTeam, Role::SupportStaff])
        .await;
    let (ali, customer) = w.user("ali@example.com", Role::Customer).await;
    let (sara, _) = w.user("sara@example.com", Role::Customer).await;

    // The add form: `client_id` a number (a select's string value is accepted too).
    let payload =
        json!({ "client_id": ali, "category": " Billing ", "answer": "پرداخت با کارت شتاب" });
    let e = w
        .post("/api/admin/knowledge", &tech, &payload, StatusCode::CREATED)
        .await;
    assert_eq!(e["category"], "Billing");
    assert_eq!(e["answer"], "پرداخت با کارت شتاب");
    assert_eq!(e["client_id"], ali);
    assert!(e["client_name"].is_string(), "{e}");
    assert_eq!(e["created_by"], tech_id);
    let payload =
        json!({ "client_id": sara.to_string(), "category": "Shipping", "answer": "2 days" });
    w.post(
        "/api/admin/knowledge",
        &manager,
        &payload,
        StatusCode::CREATED,
    )
    .await;
    assert_eq!(audited(&w, "knowledge.create").await, 2);

    // Refusals carry `detail`: unknown customer 404, bad fields 422; nothing audited.
    for (body_json, expected) in [
        (
            json!({ "client_id": 999_999, "category": "c", "answer": "a" }),
            StatusCode::NOT_FOUND,
        ),
        (
            json!({ "client_id": ali, "category": "", "answer": "a" }),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({ "client_id": ali, "category": "c", "answer": "a".repeat(5001) }),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({ "client_id": "abc", "category": "c", "answer": "a" }),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({ "category": "c", "answer": "a" }),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
    ] {
        let res = w
            .send(Method::POST, "/api/admin/knowledge", &manager, &body_json)
            .await;
        let (status, v) = body(res).await;
        assert_eq!(status, expected, "{body_json}: {v}");
        assert!(v["detail"].is_string(), "{v}");
    }
    assert_eq!(audited(&w, "knowledge.create").await, 2);

    // The page's list (no query, then the filters; empty values are ignored).
    let all = w.json("/api/admin/knowledge", &tech).await;
    let entries = rows(&all, "knowledge_entries");
    assert_eq!(all["total"], 2);
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[0]["client_id"], sara, "newest first");
    for row in entries {
        assert!(row["id"].is_i64() && row["client_id"].is_i64(), "{row}");
        assert!(row["client_name"].is_string(), "{row}");
        for f in ["category", "answer", "created_at"] {
            assert!(row[f].is_string(), "{f} in {row}");
        }
    }
    assert_eq!(
        w.json("/api/admin/knowledge?client_id=&category=", &tech)
            .await["total"],
        2
    );
    assert_eq!(w.json("/api/admin/knowledge?", &tech).await["total"], 2);
    let one = w
        .json(&format!("/api/admin/knowledge?client_id={ali}"), &manager)
        .await;
    assert_eq!(rows(&one, "knowledge_entries").len(), 1);
    assert_eq!(one["knowledge_entries"][0]["client_id"], ali);
    let bill = w.json("/api/admin/knowledge?category=bIL", &manager).await;
    assert_eq!(bill["total_count"], 1);
    assert_eq!(bill["knowledge_entries"][0]["category"], "Billing");
    w.json_total(
        &format!("/api/admin/knowledge?client_id={sara}&category=bil"),
        &manager,
        0,
    )
    .await;
    let res = w.get("/api/admin/knowledge?client_id=abc", &manager).await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let paged = w
        .json_total("/api/admin/knowledge?page=2&page_size=1", &manager, 2)
        .await;
    assert_eq!(paged["knowledge_entries"][0]["client_id"], ali);

    // docs/rbac.md: knowledge base is manager and technical team only.
    for token in [&support, &customer] {
        let res = w.get("/api/admin/knowledge", token).await;
        let (status, v) = body(res).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert!(v["detail"].is_string());
        let payload = json!({ "client_id": ali, "category": "x", "answer": "y" });
        w.post(
            "/api/admin/knowledge",
            token,
            &payload,
            StatusCode::FORBIDDEN,
        )
        .await;
    }
    w.assert_count("SELECT count(*) AS n FROM knowledge_entries", 2)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kb_templates_as_the_templates_page_reads_and_writes_them() {
    let w = market_world().await;
    let [(_, manager), (_, tech), (_, support)] = w
        .staff([Role::Manager, Role::TechnicalTeam, Role::SupportStaff])
        .await;
    let (customer, _) = w.user("c@example.com", Role::Customer).await;
    let (automation, _) = w.automation_for(customer, "FAQ bot", 0).await;

    let payload = json!({ "automation_id": automation, "category": "", "question": "ساعت کاری؟", "answer": "۹ تا ۱۷" });
    let t = w
        .post(
            "/api/admin/kb-templates",
            &tech,
            &payload,
            StatusCode::CREATED,
        )
        .await;
    assert!(t["category"].is_null(), "\"\" is none: {t}");
    assert_eq!(t["automation_name"], "FAQ bot");
    let id = t["id"].as_i64().unwrap();
    let payload =
        json!({ "automation_id": 999_999, "category": "", "question": "q", "answer": "a" });
    let v = w
        .post(
            "/api/admin/kb-templates",
            &tech,
            &payload,
            StatusCode::NOT_FOUND,
        )
        .await;
    assert!(v["detail"].is_string());

    let list = w.json("/api/admin/kb-templates", &manager).await;
    let templates = rows(&list, "templates");
    assert_eq!(templates.len(), 1);
    let row = &templates[0];
    assert_eq!(row["id"], id);
    assert_eq!(row["automation_id"], automation);
    assert_eq!(row["automation_name"], "FAQ bot");
    for f in ["question", "answer", "created_at", "updated_at"] {
        assert!(row[f].is_string(), "{f} in {row}");
    }

    // The edit form sends the same four fields: a full replace.
    let payload = json!({ "automation_id": automation, "category": "Hours", "question": "Open?", "answer": "9-5" });
    let path = format!("/api/admin/kb-templates/{id}");
    let t2 = w.put(&path, &manager, &payload, StatusCode::OK).await;
    assert_eq!(t2["category"], "Hours");
    assert_eq!(t2["question"], "Open?");
    assert_eq!(t2["automation_name"], "FAQ bot");
    let payload = json!({});
    // Ids are digits only.
    w.put(
        "/api/admin/kb-templates/x1",
        &manager,
        &payload,
        StatusCode::NOT_FOUND,
    )
    .await;

    assert_eq!(
        w.bare(Method::GET, "/api/admin/kb-templates", &support)
            .await
            .status(),
        StatusCode::FORBIDDEN
    );
    // Support may not delete; the technical team may, once.
    let template = format!("/api/admin/kb-templates/{id}");
    for (who, token, expected) in [
        ("support", &support, StatusCode::FORBIDDEN),
        ("tech", &tech, StatusCode::NO_CONTENT),
        ("tech again", &tech, StatusCode::NOT_FOUND),
    ] {
        let res = w.bare(Method::DELETE, &template, token).await;
        assert_eq!(res.status(), expected, "{who}");
    }
    assert_eq!(
        w.json("/api/admin/kb-templates", &manager).await["total"],
        0
    );
    for action in [
        "kb_template.create",
        "kb_template.update",
        "kb_template.delete",
    ] {
        assert_eq!(audited(&w, action).await, 1, "{action}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_fallback_log_lists_what_vendors_reported_and_any_staff_resolves_it() {
    let w = market_world().await;
    let market = w.market.as_ref().unwrap();
    let [(_, manager), (_, tech), (support_id, support)] = w
        .staff([Role::Manager, Role::TechnicalTeam, Role::SupportStaff])
        .await;
    let (ali, customer) = w.user("ali@example.com", Role::Customer).await;
    let (sara, _) = w.user("sara@example.com", Role::Customer).await;
    let (automation, ua_ali) = w.automation_for(ali, "Chat bot", 0).await;
    let ua_sara = w
        .insert(&format!(
            "INSERT INTO user_automations (user_id, automation_id) VALUES ({sara}, {automation}) \
             RETURNING id"
        ))
        .await;
    let res = market
        .post(&format!("/internal/automations/{automation}/service-token"))
        .header("X-Internal-Token", INTERNAL_TOKEN)
        .call_expecting(StatusCode::CREATED)
        .await;
    let token = res.json::<Value>().await.unwrap()["service_token"]
        .as_str()
        .unwrap()
        .to_owned();
    // The vendor reports (the second one twice, with one key).
    for (ua, message, key) in [
        (ua_ali, "سفارشم کجاست؟", None),
        (ua_sara, "refund?", Some("k-1")),
        (ua_sara, "refund?", Some("k-1")),
    ] {
        let res = market
            .post("/api/automation-usage/fallback")
            .header("X-Zimmer-Service-Token", &token)
            .json(&json!({ "user_automation_id": ua, "message": message,
                           "error_type": "no_answer", "idempotency_key": key }))
            .call()
            .await;
        assert!(res.status().is_success(), "{}", res.status());
    }

    // Every staff role reads the log (the page sends `?client_id=` only when filtering).
    for token in [&manager, &tech, &support] {
        let all = w.json("/api/admin/fallbacks", token).await;
        assert_eq!(rows(&all, "fallbacks").len(), 2);
    }
    let all = w.json("/api/admin/fallbacks?client_id=", &support).await;
    let list = rows(&all, "fallbacks");
    assert_eq!(all["total"], 2);
    let newest = &list[0];
    assert_eq!(newest["client_id"], sara, "newest first: {all}");
    assert!(newest["client_name"].is_string());
    assert_eq!(newest["message"], "refund?");
    assert_eq!(newest["status"], "open");
    assert_eq!(newest["automation_id"], automation);
    assert_eq!(newest["automation_name"], "Chat bot");
    assert_eq!(newest["user_automation_id"], ua_sara);
    assert_eq!(newest["error_type"], "no_answer");
    assert!(newest["created_at"].is_string());
    assert_eq!(newest["timestamp"], newest["created_at"]);
    let mine = w
        .json(&format!("/api/admin/fallbacks?client_id={ali}"), &support)
        .await;
    assert_eq!(rows(&mine, "fallbacks").len(), 1);
    assert_eq!(mine["fallbacks"][0]["message"], "سفارشم کجاست؟");
    let id = mine["fallbacks"][0]["id"].as_i64().unwrap();

    // Resolve (support staff may), then reopen; bad status 422; unknown 404; customer 403.
    let path = format!("/api/admin/fallbacks/{id}");
    let payload = json!({ "status": "resolved" });
    let f = w.put(&path, &support, &payload, StatusCode::OK).await;
    assert_eq!(f["status"], "resolved");
    assert_eq!(f["resolved_by"], support_id);
    assert_eq!(f["client_name"], newest_name(&w, ali).await);
    let shown = w
        .json(&format!("/api/admin/fallbacks?client_id={ali}"), &manager)
        .await;
    assert_eq!(shown["fallbacks"][0]["status"], "resolved");
    let res = w
        .send(Method::PUT, &path, &tech, &json!({ "status": "open" }))
        .await;
    assert_eq!(body(res).await.1["status"], "open");
    w.put(
        &path,
        &tech,
        &json!({ "status": "done" }),
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    let payload = json!({ "status": "resolved" });
    w.put(
        "/api/admin/fallbacks/999999",
        &tech,
        &payload,
        StatusCode::NOT_FOUND,
    )
    .await;
    let payload = json!({ "status": "resolved" });
    w.put(&path, &customer, &payload, StatusCode::FORBIDDEN)
        .await;
    assert_eq!(
        w.get("/api/admin/fallbacks", &customer).await.status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(audited(&w, "fallback.resolve").await, 1);
    assert_eq!(audited(&w, "fallback.reopen").await, 1);
}

async fn newest_name(w: &World, user_id: i64) -> String {
    let mut conn = w.ctx.db.connect().await;
    use diesel::prelude::*;
    use diesel_async::RunQueryDsl;
    zimmer_db::schema::users::table
        .find(user_id)
        .select(zimmer_db::schema::users::name)
        .first(&mut conn)
        .await
        .unwrap()
}

/// The pages' calls through the real nginx gateway from the dashboard's origin (Bearer,
/// `Content-Type: application/json` even on GET and on the bodiless DELETE), and a vendor's
/// fallback report through the gateway's `/api/automation-usage/` route. Needs nginx.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_pages_calls_and_a_vendor_report_pass_the_gateway() {
    const ORIGIN: &str = "http://127.0.0.1:3001";
    let w = market_world().await;
    let market = w.market.as_ref().unwrap();
    let addr = |a: &zimmer_testkit::TestApp| a.address.trim_start_matches("http://").to_owned();
    let gw = zimmer_testkit::Gateway::start(
        &zimmer_testkit::Upstreams {
            admin: vec![addr(&w.admin)],
            marketplace: vec![addr(market)],
            ..Default::default()
        },
        &[ORIGIN],
    )
    .await;
    let http = zimmer_testkit::client();
    let (_, manager) = w.user("boss@example.com", Role::Manager).await;
    let (customer, _) = w.user("c@example.com", Role::Customer).await;
    let (automation, ua) = w.automation_for(customer, "Gateway bot", 0).await;
    let token = market
        .post(&format!("/internal/automations/{automation}/service-token"))
        .header("X-Internal-Token", INTERNAL_TOKEN)
        .call()
        .await
        .json::<Value>()
        .await
        .unwrap()["service_token"]
        .as_str()
        .unwrap()
        .to_owned();
    http.post(gw.url("/api/automation-usage/fallback"))
        .header("X-Zimmer-Service-Token", &token)
        .json(&json!({ "user_automation_id": ua, "message": "no answer" }))
        .expect_status(StatusCode::CREATED)
        .await;

    let call = |method: Method, path: &str, body: Option<Value>| {
        let req = http
            .request(method, gw.url(path))
            .bearer_auth(&manager)
            .header("Origin", ORIGIN)
            .header("Content-Type", "application/json");
        let req = match body {
            Some(b) => req.body(b.to_string()),
            None => req,
        };
        req.send()
    };
    let check = |res: &Response| {
        assert_eq!(
            res.headers()
                .get("access-control-allow-origin")
                .and_then(|v| v.to_str().ok()),
            Some(ORIGIN)
        );
    };
    let res = call(
        Method::POST,
        "/api/admin/knowledge",
        Some(json!({ "client_id": customer, "category": "FAQ", "answer": "yes" })),
    )
    .await
    .unwrap();
    check(&res);
    assert_eq!(res.status(), StatusCode::CREATED);
    let res = call(
        Method::POST,
        "/api/admin/kb-templates",
        Some(
            json!({ "automation_id": automation, "category": "", "question": "q", "answer": "a" }),
        ),
    )
    .await
    .unwrap();
    check(&res);
    assert_eq!(res.status(), StatusCode::CREATED);
    let template = res.json::<Value>().await.unwrap()["id"].as_i64().unwrap();
    for (path, key) in [
        ("/api/admin/knowledge", "knowledge_entries"),
        (
            "/api/admin/knowledge?client_id=&category=",
            "knowledge_entries",
        ),
        ("/api/admin/kb-templates", "templates"),
        ("/api/admin/fallbacks", "fallbacks"),
        ("/api/admin/fallbacks?client_id=", "fallbacks"),
    ] {
        let res = call(Method::GET, path, None).await.unwrap();
        check(&res);
        assert_eq!(res.status(), StatusCode::OK, "{path}");
        let v: Value = res.json().await.unwrap();
        assert_eq!(rows(&v, key).len(), 1, "{path}: {v}");
    }
    let res = call(
        Method::DELETE,
        &format!("/api/admin/kb-templates/{template}"),
        None,
    )
    .await
    .unwrap();
    check(&res);
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
}
