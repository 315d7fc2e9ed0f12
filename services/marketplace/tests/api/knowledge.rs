//! Knowledge base entries, KB templates and the fallback log (docs/panels.md "Knowledge base
//! entries", "KB templates", "Fallback log"): the internal API admin calls, and the vendor
//! routes, whose service token is checked as consumption checks it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use common::*;
use futures_util::future::join_all;
use reqwest::{Response, StatusCode};
use serde_json::{Value, json};

async fn post(app: &zimmer_testkit::TestApp, path: &str, body: &Value) -> Response {
    internal(app.post(path)).json(body).call().await
}

async fn get(app: &zimmer_testkit::TestApp, path: &str) -> Value {
    let res = internal(app.get(path)).call().await;
    assert_eq!(res.status(), StatusCode::OK, "GET {path}");
    json_of(res).await
}

fn field_errors(v: &Value) -> Vec<String> {
    v["errors"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|e| e["field"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

async fn vendor_get(app: &zimmer_testkit::TestApp, token: Option<&str>, query: &str) -> Response {
    let mut rb = app.get(&format!("/api/automation-usage/knowledge{query}"));
    if let Some(t) = token {
        rb = rb.header("X-Zimmer-Service-Token", t);
    }
    rb.call().await
}

async fn report(app: &zimmer_testkit::TestApp, token: Option<&str>, body: &Value) -> Response {
    let mut rb = app.post("/api/automation-usage/fallback").json(body);
    if let Some(t) = token {
        rb = rb.header("X-Zimmer-Service-Token", t);
    }
    rb.call().await
}

/// Two automations ("Bot A", "Bot B"), each with its service token.
async fn two_vendors(app: &zimmer_testkit::TestApp) -> ((i64, String), (i64, String)) {
    let a = automation_named(app, "Bot A").await;
    let b = automation_named(app, "Bot B").await;
    (
        (a, issue_token(app, a).await),
        (b, issue_token(app, b).await),
    )
}

/// The tokens a vendor call is refused with (401), as consumption refuses them, and the
/// `code` of each: none, an unknown one, `other_vendor`'s for a customer of another vendor.
fn refused_tokens(other_vendor: &str) -> [(Option<&str>, &'static str); 3] {
    [
        (None, "service_token_required"),
        (Some("zst_not-a-token"), "invalid_service_token"),
        (Some(other_vendor), "token_not_for_user_automation"),
    ]
}

/// POST of a knowledge entry through the internal API, which must answer `expected`; the body.
async fn post_entry(app: &zimmer_testkit::TestApp, body: Value, expected: StatusCode) -> Value {
    post_expecting(app, "/internal/knowledge", &body, expected).await
}

/// POST of a KB template through the internal API, which must answer `expected`; the body.
async fn post_template(app: &zimmer_testkit::TestApp, body: Value, expected: StatusCode) -> Value {
    post_expecting(app, "/internal/kb-templates", &body, expected).await
}

async fn post_expecting(
    app: &zimmer_testkit::TestApp,
    path: &str,
    body: &Value,
    expected: StatusCode,
) -> Value {
    let (status, v) = zimmer_testkit::json_of(post(app, path, body).await).await;
    assert_eq!(status, expected, "POST {path} {body}: {v}");
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn knowledge_routes_need_the_service_credential() {
    let (_ctx, app) = market().await;
    for (method, path) in [
        ("GET", "/internal/knowledge"),
        ("POST", "/internal/knowledge"),
        ("GET", "/internal/kb-templates"),
        ("POST", "/internal/kb-templates"),
        ("PUT", "/internal/kb-templates/1"),
        ("DELETE", "/internal/kb-templates/1"),
        ("GET", "/internal/fallbacks"),
        ("PUT", "/internal/fallbacks/1"),
    ] {
        for token in [None, Some("wrong-token")] {
            let mut rb = app
                .client
                .request(method.parse().unwrap(), app.url(path))
                .json(&json!({}));
            if let Some(t) = token {
                rb = rb.header("X-Internal-Token", t);
            }
            let res = rb.call().await;
            assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "{method} {path}");
            assert_eq!(json_of(res).await["code"], "unauthorized");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn knowledge_entries_are_validated_filtered_and_paged() {
    let (ctx, app) = market().await;
    let (ali, _) = customer(&ctx, "ali@example.com").await;
    let (sara, _) = customer(&ctx, "sara@example.com").await;
    let manager = staff(&ctx, "manager@example.com").await;

    // Persian kept exactly (ZWNJ), text trimmed; 201 with the customer's name.
    let e = post_entry(
        &app,
        json!({ "client_id": ali, "category": "  سوالات\u{200C}متداول ",
                 "answer": " ساعت کاری ۹ تا ۱۷\nشنبه تا چهارشنبه ", "created_by": manager }),
        StatusCode::CREATED,
    )
    .await;
    assert_eq!(e["category"], "سوالات\u{200C}متداول");
    assert_eq!(e["answer"], "ساعت کاری ۹ تا ۱۷\nشنبه تا چهارشنبه");
    assert_eq!(e["client_id"], ali);
    assert!(e["client_name"].is_string());
    assert_eq!(e["created_by"], manager);
    assert!(e["id"].is_i64() && e["created_at"].is_string() && e["updated_at"].is_string());
    for (client, category) in [(ali, "Billing"), (ali, "Shipping"), (sara, "billing FAQ")] {
        post_entry(
            &app,
            json!({ "client_id": client, "category": category, "answer": "yes" }),
            StatusCode::CREATED,
        )
        .await;
    }

    // Validation: 422 naming the field, nothing stored.
    let long = "ب".repeat(101);
    let long_answer = "a".repeat(5001);
    for (body, field) in [
        (
            json!({ "client_id": ali, "category": "", "answer": "x" }),
            "category",
        ),
        (
            json!({ "client_id": ali, "category": "   ", "answer": "x" }),
            "category",
        ),
        (
            json!({ "client_id": ali, "category": long, "answer": "x" }),
            "category",
        ),
        (
            json!({ "client_id": ali, "category": "c", "answer": "" }),
            "answer",
        ),
        (
            json!({ "client_id": ali, "category": "c", "answer": long_answer }),
            "answer",
        ),
        (
            json!({ "client_id": ali, "category": "c", "answer": "bell\u{0007}" }),
            "answer",
        ),
        (
            json!({ "client_id": ali, "category": "a\u{202E}b", "answer": "x" }),
            "category",
        ),
    ] {
        let err = post_entry(&app, body.clone(), StatusCode::UNPROCESSABLE_ENTITY).await;
        assert!(field_errors(&err).contains(&field.to_owned()), "{body}");
    }
    // 100 Persian characters (200 bytes) and 5,000 are within the limits.
    post_entry(
        &app,
        json!({ "client_id": sara, "category": "ب".repeat(100), "answer": "a".repeat(5000) }),
        StatusCode::CREATED,
    )
    .await;
    // Unknown or deleted account: 404.
    let err = post_entry(
        &app,
        json!({ "client_id": 999_999, "category": "c", "answer": "x" }),
        StatusCode::NOT_FOUND,
    )
    .await;
    assert!(err["detail"].is_string());
    let (gone, _) = customer(&ctx, "gone@example.com").await;
    let mut conn = ctx.db.connect().await;
    diesel_async::RunQueryDsl::execute(
        diesel::sql_query(format!(
            "UPDATE users SET is_active = false, deactivated_at = now(), deleted_at = now() WHERE id = {gone}"
        )),
        &mut conn,
    )
    .await
    .unwrap();
    post_entry(
        &app,
        json!({ "client_id": gone, "category": "c", "answer": "x" }),
        StatusCode::NOT_FOUND,
    )
    .await;
    assert_db_count(&ctx, "SELECT count(*) AS n FROM knowledge_entries", 5).await;

    // Lists: newest first, client exact, category case-insensitive anywhere, blank ignored.
    let all = get(&app, "/internal/knowledge").await;
    assert_eq!(all["total"], 5);
    let ids = zimmer_testkit::ids_in(&all["items"], "id");
    let mut sorted = ids.clone();
    sorted.sort_unstable_by(|a, b| b.cmp(a));
    assert_eq!(ids, sorted, "newest first");
    let mine = get(&app, &format!("/internal/knowledge?client_id={ali}")).await;
    assert_eq!(mine["total"], 3);
    let billing = get(&app, "/internal/knowledge?category=BILL").await;
    assert_eq!(billing["total"], 2);
    assert_eq!(get(&app, "/internal/knowledge?category=").await["total"], 5);
    let ali_billing = get(
        &app,
        &format!("/internal/knowledge?client_id={ali}&category=illin"),
    )
    .await;
    assert_eq!(ali_billing["total"], 1);
    assert_eq!(ali_billing["items"][0]["category"], "Billing");
    let persian = get(
        &app,
        "/internal/knowledge?category=%D9%85%D8%AA%D8%AF%D8%A7%D9%88%D9%84",
    )
    .await;
    assert_eq!(persian["total"], 1);
    // LIKE characters are literal.
    assert_eq!(
        get(&app, "/internal/knowledge?category=%25").await["total"],
        0
    );
    let page = get(&app, "/internal/knowledge?offset=1&limit=2").await;
    assert_eq!(page["total"], 5);
    assert_eq!(page["items"].as_array().unwrap().len(), 2);
    assert_eq!(page["items"][0]["id"], ids[1]);
    // The window and the filters are read from the same query string.
    let page = get(
        &app,
        &format!("/internal/knowledge?client_id={ali}&limit=1"),
    )
    .await;
    assert_eq!(page["total"], mine["total"]);
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
    // Out of range is clamped, not refused: offset < 0 is 0, limit < 1 is 1.
    let page = get(&app, "/internal/knowledge?offset=-3&limit=0").await;
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
    assert_eq!(page["items"][0]["id"], ids[0]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kb_templates_are_created_replaced_listed_and_deleted() {
    let (ctx, app) = market().await;
    let a = automation_named(&app, "FAQ bot").await;
    let b = automation_named(&app, "Other bot").await;

    let t = post_template(
        &app,
        json!({ "automation_id": a, "category": "", "question": " Hours? ", "answer": "9-17" }),
        StatusCode::CREATED,
    )
    .await;
    assert!(t["category"].is_null(), "\"\" is no category: {t}");
    assert_eq!(t["question"], "Hours?");
    let id = t["id"].as_i64().unwrap();
    for (auto, cat) in [(a, Some("Billing")), (b, None)] {
        post_template(
            &app,
            json!({ "automation_id": auto, "category": cat, "question": "q", "answer": "a" }),
            StatusCode::CREATED,
        )
        .await;
    }
    // Unknown automation: 404; bad fields: 422.
    post_template(
        &app,
        json!({ "automation_id": 999_999, "question": "q", "answer": "a" }),
        StatusCode::NOT_FOUND,
    )
    .await;
    for (body, field) in [
        (
            json!({ "automation_id": a, "question": "", "answer": "a" }),
            "question",
        ),
        (
            json!({ "automation_id": a, "question": "q".repeat(501), "answer": "a" }),
            "question",
        ),
        (
            json!({ "automation_id": a, "question": "q", "answer": "a".repeat(5001) }),
            "answer",
        ),
        (
            json!({ "automation_id": a, "category": "c".repeat(101), "question": "q", "answer": "a" }),
            "category",
        ),
    ] {
        let err = post_template(&app, body.clone(), StatusCode::UNPROCESSABLE_ENTITY).await;
        assert!(field_errors(&err).contains(&field.to_owned()), "{body}");
    }

    let list = get(&app, "/internal/kb-templates").await;
    assert_eq!(list["total"], 3);
    assert_eq!(
        get(&app, &format!("/internal/kb-templates?automation_id={a}")).await["total"],
        2
    );
    assert_eq!(
        get(&app, "/internal/kb-templates?category=bil").await["total"],
        1
    );
    let page = get(
        &app,
        &format!("/internal/kb-templates?automation_id={a}&limit=1"),
    )
    .await;
    assert_eq!(page["total"], 2);
    assert_eq!(page["items"].as_array().unwrap().len(), 1);

    // PUT replaces all four fields (a category not sent is none).
    let res = internal(
        app.client
            .put(app.url(&format!("/internal/kb-templates/{id}"))),
    )
    .json(&json!({ "automation_id": b, "question": "Opening hours?", "answer": "9 to 5" }))
    .call_expecting(StatusCode::OK)
    .await;
    let t2 = json_of(res).await;
    assert_eq!(t2["automation_id"], b);
    assert_eq!(t2["question"], "Opening hours?");
    assert!(t2["category"].is_null());
    assert_eq!(t2["created_at"], t["created_at"]);
    internal(app.client.put(app.url("/internal/kb-templates/999999")))
        .json(&json!({ "automation_id": b, "question": "q", "answer": "a" }))
        .expect_status(StatusCode::NOT_FOUND)
        .await;
    internal(
        app.client
            .put(app.url(&format!("/internal/kb-templates/{id}"))),
    )
    .json(&json!({ "automation_id": 999_999, "question": "q", "answer": "a" }))
    .expect_status(StatusCode::NOT_FOUND)
    .await;

    // DELETE: 204, then 404.
    for expected in [StatusCode::NO_CONTENT, StatusCode::NOT_FOUND] {
        let res = internal(
            app.client
                .delete(app.url(&format!("/internal/kb-templates/{id}"))),
        )
        .call()
        .await;
        assert_eq!(res.status(), expected);
    }
    // Deleting an automation nobody has takes its templates with it.
    let res = internal(
        app.client
            .delete(app.url(&format!("/internal/automations/{a}"))),
    )
    .call_expecting(StatusCode::OK)
    .await;
    assert_eq!(json_of(res).await["deleted"], true);
    assert_db_count(&ctx, "SELECT count(*) AS n FROM kb_templates", 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vendors_read_their_customers_knowledge_with_their_own_token() {
    let (ctx, app) = market().await;
    let ((a, token_a), (b, token_b)) = two_vendors(&app).await;
    let (ali, ali_access) = customer(&ctx, "ali@example.com").await;
    let (sara, _) = customer(&ctx, "sara@example.com").await;
    let ua = add(&app, &ali_access, a).await;
    for (client, cat) in [(ali, "Hours"), (ali, "Address"), (sara, "Secret")] {
        post_entry(
            &app,
            json!({ "client_id": client, "category": cat, "answer": format!("{cat} answer") }),
            StatusCode::CREATED,
        )
        .await;
    }
    for (auto, q) in [(a, "A question"), (b, "B question")] {
        post_template(
            &app,
            json!({ "automation_id": auto, "category": "General", "question": q, "answer": "ans" }),
            StatusCode::CREATED,
        )
        .await;
    }

    let res = vendor_get(&app, Some(&token_a), &format!("?user_automation_id={ua}")).await;
    assert_eq!(res.status(), StatusCode::OK);
    let k = json_of(res).await;
    let entries = k["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 2, "only the owner's entries: {k}");
    assert_eq!(entries[0]["category"], "Address");
    assert_eq!(entries[1]["answer"], "Hours answer");
    for e in entries {
        assert!(e["id"].is_i64() && e["updated_at"].is_string());
    }
    let templates = k["templates"].as_array().unwrap();
    assert_eq!(templates.len(), 1, "only this automation's templates: {k}");
    assert_eq!(templates[0]["question"], "A question");
    assert_eq!(templates[0]["category"], "General");

    // As consumption: no token, a wrong token, another automation's token → 401.
    for (token, code) in refused_tokens(&token_b) {
        let res = vendor_get(&app, token, &format!("?user_automation_id={ua}")).await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "{token:?}");
        assert_eq!(json_of(res).await["code"], code);
    }
    // Unknown user automation: the same 401 (nothing to probe); bad query: 422.
    let res = vendor_get(&app, Some(&token_a), "?user_automation_id=999999").await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    for q in ["", "?user_automation_id=", "?user_automation_id=abc"] {
        let res = vendor_get(&app, Some(&token_a), q).await;
        assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY, "{q}");
    }
    // The consumption route still answers the same way (its check is the shared one).
    let res = consume(&app, &token_b, &usage(ua, 1)).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(json_of(res).await["code"], "token_not_for_user_automation");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fallbacks_are_reported_once_per_key_listed_and_resolved() {
    let (ctx, app) = market().await;
    let ((a, token_a), (_, token_b)) = two_vendors(&app).await;
    let (ali, ali_access) = customer(&ctx, "ali@example.com").await;
    let (sara, sara_access) = customer(&ctx, "sara@example.com").await;
    let ua_ali = add(&app, &ali_access, a).await;
    let ua_sara = add(&app, &sara_access, a).await;
    let manager = staff(&ctx, "manager@example.com").await;

    // Authentication as consumption, before the body is looked at.
    let body = json!({ "user_automation_id": ua_ali, "message": "hi" });
    for (token, code) in refused_tokens(&token_b) {
        let res = report(&app, token, &body).await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "{token:?}");
        assert_eq!(json_of(res).await["code"], code);
    }
    let res = report(&app, None, &json!("not an object")).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_db_count(&ctx, "SELECT count(*) AS n FROM fallback_logs", 0).await;

    // Validation.
    for (body, field) in [
        (
            json!({ "user_automation_id": ua_ali, "message": "" }),
            "message",
        ),
        (
            json!({ "user_automation_id": ua_ali, "message": "m".repeat(4001) }),
            "message",
        ),
        (
            json!({ "user_automation_id": ua_ali, "message": "m", "error_type": "e".repeat(65) }),
            "error_type",
        ),
        (
            json!({ "user_automation_id": ua_ali, "message": "m", "idempotency_key": "has space" }),
            "idempotency_key",
        ),
        (
            json!({ "user_automation_id": 0, "message": "m" }),
            "user_automation_id",
        ),
    ] {
        let res = report(&app, Some(&token_a), &body).await;
        assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert!(
            field_errors(&json_of(res).await).contains(&field.to_owned()),
            "{body}"
        );
    }

    // The same key ten times at once: one row, every answer the same id.
    let keyed = json!({ "user_automation_id": ua_ali, "message": "ربات جواب نداد",
                        "error_type": "no_answer", "idempotency_key": "fb-1" });
    let answers = join_all((0..10).map(|_| report(&app, Some(&token_a), &keyed))).await;
    let mut ids = Vec::new();
    let mut created = 0;
    for res in answers {
        match res.status() {
            StatusCode::CREATED => created += 1,
            StatusCode::OK => assert_eq!(
                res.headers()
                    .get("idempotent-replayed")
                    .and_then(|v| v.to_str().ok()),
                Some("true")
            ),
            other => panic!("unexpected {other}"),
        }
        ids.push(json_of(res).await["id"].as_i64().unwrap());
    }
    assert_eq!(created, 1);
    ids.dedup();
    assert_eq!(ids.len(), 1, "one id for one key");
    let first = ids[0];
    // The key with another report: 409; the same key from another vendor is its own.
    let res = report(
        &app,
        Some(&token_a),
        &json!({ "user_automation_id": ua_ali, "message": "else", "idempotency_key": "fb-1" }),
    )
    .await;
    assert_eq!(res.status(), StatusCode::CONFLICT);
    assert_eq!(json_of(res).await["code"], "idempotency_conflict");
    // Without a key every report is stored; the header key works too.
    for _ in 0..2 {
        let res = report(
            &app,
            Some(&token_a),
            &json!({ "user_automation_id": ua_sara, "message": "?" }),
        )
        .await;
        assert_eq!(res.status(), StatusCode::CREATED);
    }
    let res = app
        .post("/api/automation-usage/fallback")
        .header("X-Zimmer-Service-Token", &token_a)
        .header("Idempotency-Key", "fb-1")
        .json(&json!({ "user_automation_id": ua_ali, "message": "ربات جواب نداد" }))
        .call_expecting(StatusCode::OK)
        .await;
    assert_eq!(json_of(res).await["id"], first);
    assert_db_count(&ctx, "SELECT count(*) AS n FROM fallback_logs", 3).await;

    // Internal list: newest first, by customer.
    let all = get(&app, "/internal/fallbacks").await;
    assert_eq!(all["total"], 3);
    assert_eq!(all["items"][2]["id"], first);
    let f = &all["items"][2];
    assert_eq!(f["user_id"], ali);
    assert_eq!(f["automation_id"], a);
    assert_eq!(f["user_automation_id"], ua_ali);
    assert_eq!(f["message"], "ربات جواب نداد");
    assert_eq!(f["error_type"], "no_answer");
    assert_eq!(f["status"], "open");
    let sara_list = get(&app, &format!("/internal/fallbacks?client_id={sara}")).await;
    assert_eq!(sara_list["total"], 2);
    let page = get(
        &app,
        &format!("/internal/fallbacks?client_id={sara}&offset=1&limit=1"),
    )
    .await;
    assert_eq!(page["total"], 2);
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
    assert_eq!(page["items"][0]["id"], sara_list["items"][1]["id"]);
    assert!(
        sara_list["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| f["user_id"] == sara)
    );

    // Resolve, resolve again (no change), reopen; bad status 422, unknown 404.
    let put = |status: &str, id: i64| {
        internal(
            app.client
                .put(app.url(&format!("/internal/fallbacks/{id}"))),
        )
        .json(&json!({ "status": status, "actor_id": manager }))
        .send()
    };
    let r = json_of(put("resolved", first).await.unwrap()).await;
    assert_eq!(r["status"], "resolved");
    assert_eq!(r["resolved_by"], manager);
    let at = r["resolved_at"].clone();
    assert!(at.is_string());
    let again = json_of(put("resolved", first).await.unwrap()).await;
    assert_eq!(again["resolved_at"], at);
    let reopened = json_of(put("open", first).await.unwrap()).await;
    assert_eq!(reopened["status"], "open");
    assert!(reopened["resolved_at"].is_null() && reopened["resolved_by"].is_null());
    assert_eq!(
        put("closed", first).await.unwrap().status(),
        StatusCode::UNPROCESSABLE_ENTITY
    );
    assert_eq!(
        put("resolved", 999_999).await.unwrap().status(),
        StatusCode::NOT_FOUND
    );
}
