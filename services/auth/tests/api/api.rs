//! Auth's HTTP API against real PostgreSQL, Redis and RabbitMQ, one database per test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use common::*;
use reqwest::StatusCode;
use serde_json::{Value, json};
use zimmer_testkit::{assert_db_count, str_at};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_answers_user_tokens_and_a_safe_cookie() {
    let (ctx, app) = auth().await;
    let sara = json!({ "name": "Sara", "email": "  Sara@Example.com ", "password": PASSWORD, "phone_number": "+98 912 345 6789" });
    let res = register_raw(&app, sara).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let cookie = res
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|c| c.starts_with("zimmer_refresh="))
        .expect("refresh cookie");
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(cookie.contains("SameSite=Strict"), "{cookie}");
    assert!(cookie.contains("Path=/api/auth"), "{cookie}");
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["token_type"], "bearer");
    assert_eq!(body["expires_in"], 900);
    assert!(str_at(&body, "access_token").split('.').count() == 3);
    let user = &body["user"];
    assert_eq!(user["email"], "sara@example.com");
    assert_eq!(user["role"], "customer");
    assert_eq!(user["is_admin"], false);
    assert_eq!(user["is_active"], true);
    assert_eq!(user["email_verified"], false);
    assert!(user["email_verified_at"].is_null());
    assert_eq!(user["twofa_enabled"], false);
    assert_eq!(user["phone_number"], "+989123456789");
    assert!(user["created_at"].is_string());
    assert!(user.get("password_hash").is_none());
    // A non-browser client (no Origin) also gets the refresh token in the body.
    assert!(body["refresh_token"].is_string());

    // user.registered went to the outbox in the same transaction.
    let mut conn = ctx.db.connect().await;
    assert_db_count(
        &ctx,
        "SELECT count(*) AS n FROM outbox WHERE event_type = 'user.registered'",
        1,
    )
    .await;
    let stored: String = {
        use diesel::prelude::*;
        use diesel_async::RunQueryDsl;
        use zimmer_db::schema::users;
        users::table
            .select(users::password_hash)
            .first(&mut conn)
            .await
            .unwrap()
    };
    assert!(
        stored.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
        "{stored}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_clients_get_the_refresh_token_only_in_the_cookie() {
    let (_ctx, app) = auth().await;
    let res = app
        .post("/api/auth/signup")
        .header("Origin", "http://localhost:3000")
        .json(&json!({ "name": "Ali", "email": "ali@example.com", "password": PASSWORD, "confirm_password": PASSWORD, "user_id": 999 }))
        .call_expecting(StatusCode::CREATED)
        .await;
    assert!(refresh_cookie(&res).is_some());
    let body: Value = res.json().await.unwrap();
    assert!(body.get("refresh_token").is_none());
    assert_ne!(body["user"]["id"], 999, "a user_id in the body is ignored");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signup_checks_confirmation_and_password_rules() {
    let (_ctx, app) = auth().await;
    for (body, field) in [
        (
            json!({ "name": "A", "email": "a@example.com", "password": PASSWORD, "confirm_password": "other-password" }),
            "confirm_password",
        ),
        (
            json!({ "name": "A", "email": "a@example.com", "password": "short" }),
            "password",
        ),
        (
            json!({ "name": "A", "email": "a@example.com", "password": "password123" }),
            "password",
        ),
        (
            json!({ "name": "A", "email": "a@example.com", "password": "x".repeat(129) }),
            "password",
        ),
        (
            json!({ "name": "A", "email": "not-an-email", "password": PASSWORD }),
            "email",
        ),
        (
            json!({ "name": "  ", "email": "a@example.com", "password": PASSWORD }),
            "name",
        ),
        (
            json!({ "name": "evil\u{202E}txt", "email": "a@example.com", "password": PASSWORD }),
            "name",
        ),
    ] {
        let res = app.post_json("/api/auth/signup", &body).await;
        assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        let err: Value = res.json().await.unwrap();
        assert_eq!(err["code"], "validation_error");
        assert!(err["detail"].is_string());
        assert!(zimmer_testkit::has_field_error(&err, field), "{err}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicate_email_in_any_case_is_a_conflict() {
    let (_ctx, app) = auth().await;
    register(&app, "dup@example.com", PASSWORD).await;
    for email in ["dup@example.com", "DUP@Example.COM", "  dup@example.com  "] {
        let res = register_raw(
            &app,
            json!({ "name": "X", "email": email, "password": PASSWORD }),
        )
        .await;
        assert_eq!(res.status(), StatusCode::CONFLICT, "{email}");
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["code"], "email_taken");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_password_and_unknown_email_answer_the_same() {
    let (_ctx, app) = auth().await;
    register(&app, "known@example.com", PASSWORD).await;
    let wrong = login(&app, "known@example.com", "not-the-password").await;
    let unknown = login(&app, "nobody@example.com", "not-the-password").await;
    let garbage = login(&app, "not an email", "x").await;
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(unknown.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(garbage.status(), StatusCode::UNAUTHORIZED);
    let a: Value = wrong.json().await.unwrap();
    let b: Value = unknown.json().await.unwrap();
    let c: Value = garbage.json().await.unwrap();
    assert_eq!(a, b);
    assert_eq!(a, c);

    let ok = login(&app, " KNOWN@example.com", PASSWORD).await;
    assert_eq!(ok.status(), StatusCode::OK);
    let body: Value = ok.json().await.unwrap();
    assert_eq!(body["user"]["email"], "known@example.com");
    assert!(body["access_token"].is_string());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deactivated_accounts_cannot_log_in() {
    let (ctx, app) = auth().await;
    let r = register(&app, "gone@example.com", PASSWORD).await;
    let mut conn = ctx.db.connect().await;
    {
        use diesel::prelude::*;
        use diesel_async::RunQueryDsl;
        use zimmer_db::schema::users;
        diesel::update(users::table.find(r.user_id))
            .set(users::is_active.eq(false))
            .execute(&mut conn)
            .await
            .unwrap();
    }
    let res = login(&app, "gone@example.com", PASSWORD).await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    // And refreshing the old session no longer gives tokens.
    assert_eq!(
        refresh_with_cookie(&app, &r.refresh).await.status(),
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn me_and_a_persian_name_round_trip() {
    let (_ctx, app) = auth().await;
    let name = "زهرا\u{200C}سادات كريمي"; // ZWNJ, Arabic kaf and yeh: kept as sent
    let res = register_raw(
        &app,
        json!({ "name": name, "email": "z@example.com", "password": PASSWORD }),
    )
    .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let access = res.json::<Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let me: Value = app.get("/api/me").bearer_auth(&access).json_body().await;
    assert_eq!(me["name"], name);
    for field in [
        "id",
        "name",
        "email",
        "phone_number",
        "role",
        "is_admin",
        "is_active",
        "email_verified",
        "email_verified_at",
        "twofa_enabled",
        "created_at",
    ] {
        assert!(me.get(field).is_some(), "missing {field}: {me}");
    }
    assert_eq!(app.get("/api/me").status().await, StatusCode::UNAUTHORIZED);

    // Profile update keeps Persian exactly too, and refuses bidi controls.
    let new_name = "علی‌رضا";
    let res = app
        .put("/api/user/profile")
        .bearer_auth(&access)
        .json(&json!({ "name": new_name, "phone_number": "۰۹۱۲۳۴۵۶۷۸۹" }))
        .call_expecting(StatusCode::OK)
        .await;
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["name"], new_name);
    assert_eq!(body["phone_number"], "09123456789");
    app.put("/api/user/profile")
        .bearer_auth(&access)
        .json(&json!({ "name": "a\u{2067}b" }))
        .expect_status(StatusCode::UNPROCESSABLE_ENTITY)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_bodies_are_4xx_never_500() {
    let (_ctx, app) = auth().await;
    let send = |body: &'static str, ct: &'static str| {
        app.post("/api/auth/register")
            .header("Content-Type", ct)
            .body(body)
            .send()
    };
    let malformed = send("{\"name\": ", "application/json").await.unwrap();
    assert_eq!(malformed.status(), StatusCode::BAD_REQUEST);
    let wrong_types = send(
        "{\"name\": 5, \"email\": [], \"password\": true}",
        "application/json",
    )
    .await
    .unwrap();
    assert_eq!(wrong_types.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let missing = send("{}", "application/json").await.unwrap();
    assert_eq!(missing.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let not_json = send("name=x", "application/x-www-form-urlencoded")
        .await
        .unwrap();
    assert_eq!(not_json.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let huge = register_raw(
        &app,
        json!({ "name": "n".repeat(1024 * 1024), "email": "h@example.com", "password": PASSWORD }),
    )
    .await;
    assert_eq!(huge.status(), StatusCode::PAYLOAD_TOO_LARGE);
    for res in [malformed, wrong_types, missing, not_json, huge] {
        let body: Value = res.json().await.unwrap();
        assert!(
            body["detail"].is_string() && body["code"].is_string(),
            "{body}"
        );
    }
    let unknown = app
        .get("/api/auth/nothing-here")
        .call_expecting(StatusCode::NOT_FOUND)
        .await;
    assert_eq!(unknown.json::<Value>().await.unwrap()["code"], "not_found");
    let wrong_method = app.get("/api/auth/login").call().await;
    assert!(wrong_method.status().is_client_error());
    assert!(wrong_method.json::<Value>().await.unwrap()["detail"].is_string());
    // The refresh body is optional, but when sent it follows the same 400/422 rule.
    for (body, status) in [
        ("{\"refresh_token\": ", StatusCode::BAD_REQUEST),
        ("{\"refresh_token\": 5}", StatusCode::UNPROCESSABLE_ENTITY),
        ("  ", StatusCode::UNAUTHORIZED),
    ] {
        let res = app
            .post("/api/auth/refresh")
            .header("Content-Type", "application/json")
            .body(body)
            .call_expecting(status)
            .await;
        assert!(
            res.json::<Value>().await.unwrap()["detail"].is_string(),
            "{body}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_rotates_and_reuse_revokes_the_session() {
    let (_ctx, app) = auth().await;
    let r = register(&app, "rot@example.com", PASSWORD).await;

    let first = refresh_with_cookie(&app, &r.refresh).await;
    assert_eq!(first.status(), StatusCode::OK);
    let second_refresh = refresh_cookie(&first).expect("rotated cookie");
    assert_ne!(second_refresh, r.refresh);
    let body: Value = first.json().await.unwrap();
    let new_access = str_at(&body, "access_token").to_owned();
    assert_eq!(me_status(&app, &new_access).await, StatusCode::OK);

    // The old token again: reuse. The whole session ends.
    let replay = refresh_with_cookie(&app, &r.refresh).await;
    assert_eq!(replay.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        replay.json::<Value>().await.unwrap()["code"],
        "refresh_reuse"
    );
    assert_eq!(
        refresh_with_cookie(&app, &second_refresh).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(me_status(&app, &new_access).await, StatusCode::UNAUTHORIZED);
    assert_eq!(me_status(&app, &r.access).await, StatusCode::UNAUTHORIZED);

    // A made-up token matches nothing and revokes nothing.
    let r2 = register(&app, "rot2@example.com", PASSWORD).await;
    assert_eq!(
        refresh_with_cookie(&app, "made-up").await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(me_status(&app, &r2.access).await, StatusCode::OK);

    // Native clients send the token in the body.
    let res = app
        .post_json("/api/auth/refresh", &json!({ "refresh_token": r2.refresh }))
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.json::<Value>().await.unwrap()["refresh_token"].is_string());
    app.post("/api/auth/refresh")
        .expect_status(StatusCode::UNAUTHORIZED)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_refreshes_of_one_token_rotate_once() {
    let (_ctx, app) = auth().await;
    let r = register(&app, "race@example.com", PASSWORD).await;
    let results =
        futures_util::future::join_all((0..8).map(|_| refresh_with_cookie(&app, &r.refresh))).await;
    let ok = results
        .iter()
        .filter(|r| r.status() == StatusCode::OK)
        .count();
    assert_eq!(ok, 1, "exactly one rotation wins");
    assert!(
        results
            .iter()
            .all(|r| r.status() == StatusCode::OK || r.status() == StatusCode::UNAUTHORIZED)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cookie_requests_from_other_origins_are_refused_and_change_nothing() {
    let (_ctx, app) = auth().await;
    let r = register(&app, "origin@example.com", PASSWORD).await;
    for path in ["/api/auth/refresh", "/api/auth/logout"] {
        assert_eq!(
            app.post(path)
                .header("Cookie", format!("zimmer_refresh={}", r.refresh))
                .header("Origin", "https://evil.example")
                .status()
                .await,
            StatusCode::FORBIDDEN,
            "{path}"
        );
    }
    assert_eq!(me_status(&app, &r.access).await, StatusCode::OK);
    let res = app
        .post("/api/auth/refresh")
        .header("Cookie", format!("zimmer_refresh={}", r.refresh))
        .header("Origin", "http://localhost:3000")
        .call()
        .await;
    assert_eq!(
        res.status(),
        StatusCode::OK,
        "the token was not rotated by the refused call"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_by_bearer_or_by_cookie_alone() {
    let (_ctx, app) = auth().await;
    let a = register(&app, "out@example.com", PASSWORD).await;
    app.post("/api/auth/logout")
        .bearer_auth(&a.access)
        .expect_status(StatusCode::NO_CONTENT)
        .await;
    assert_eq!(me_status(&app, &a.access).await, StatusCode::UNAUTHORIZED);
    assert_eq!(
        refresh_with_cookie(&app, &a.refresh).await.status(),
        StatusCode::UNAUTHORIZED
    );

    // The panel logs out with the cookie only.
    let login_res = login(&app, "out@example.com", PASSWORD).await;
    let cookie = refresh_cookie(&login_res).unwrap();
    let access = login_res.json::<Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let res = app
        .post("/api/auth/logout")
        .header("Cookie", format!("zimmer_refresh={cookie}"))
        .header("Origin", "http://localhost:3000")
        .call_expecting(StatusCode::NO_CONTENT)
        .await;
    let cleared = res
        .headers()
        .get("set-cookie")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    assert!(cleared.starts_with("zimmer_refresh=;"), "{cleared}");
    assert_eq!(me_status(&app, &access).await, StatusCode::UNAUTHORIZED);
    app.post("/api/auth/logout")
        .expect_status(StatusCode::UNAUTHORIZED)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_list_revoke_and_logout_all() {
    let (_ctx, app) = auth().await;
    let a = register(&app, "many@example.com", PASSWORD).await;
    let second_access = login_access(&app, "many@example.com", PASSWORD).await;
    let list: Value = app
        .get("/api/auth/sessions")
        .bearer_auth(&a.access)
        .json_body()
        .await;
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!(list.iter().filter(|s| s["current"] == true).count(), 1);
    for s in list {
        for f in [
            "id",
            "user_agent",
            "ip",
            "created_at",
            "last_used_at",
            "current",
        ] {
            assert!(s.get(f).is_some(), "{f}");
        }
    }
    let other_id = list.iter().find(|s| s["current"] == false).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();

    // Another user cannot revoke it: 404, not 403.
    let b = register(&app, "intruder@example.com", PASSWORD).await;
    app.delete(&format!("/api/auth/sessions/{other_id}"))
        .bearer_auth(&b.access)
        .expect_status(StatusCode::NOT_FOUND)
        .await;
    assert_eq!(me_status(&app, &second_access).await, StatusCode::OK);
    app.delete("/api/auth/sessions/not-a-uuid")
        .bearer_auth(&a.access)
        .expect_status(StatusCode::NOT_FOUND)
        .await;

    app.delete(&format!("/api/auth/sessions/{other_id}"))
        .bearer_auth(&a.access)
        .expect_status(StatusCode::NO_CONTENT)
        .await;
    assert_eq!(
        me_status(&app, &second_access).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(me_status(&app, &a.access).await, StatusCode::OK);

    login(&app, "many@example.com", PASSWORD).await;
    let res = app
        .post("/api/auth/logout-all")
        .bearer_auth(&a.access)
        .call_expecting(StatusCode::OK)
        .await;
    assert_eq!(res.json::<Value>().await.unwrap()["revoked_sessions"], 2);
    assert_eq!(me_status(&app, &a.access).await, StatusCode::UNAUTHORIZED);
    assert_eq!(me_status(&app, &b.access).await, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn change_password_revokes_the_other_sessions() {
    let (_ctx, app) = auth().await;
    let a = register(&app, "pw@example.com", PASSWORD).await;
    let other_access = login_access(&app, "pw@example.com", PASSWORD).await;

    assert_eq!(app
        .post("/api/user/change-password")
        .bearer_auth(&a.access)
        .json(
            &json!({ "current_password": "wrong-password", "new_password": "a-new-long-password" }),
        ).status().await, StatusCode::UNPROCESSABLE_ENTITY);
    // The panel's code-based variant is refused with words it can show.
    let res = app.post("/api/user/password").bearer_auth(&a.access)
        .json(&json!({ "new_password": "a-new-long-password", "confirm_password": "a-new-long-password", "verification_code": "123456" }))
        .call_expecting(StatusCode::UNPROCESSABLE_ENTITY)
        .await;
    assert!(
        res.json::<Value>().await.unwrap()["detail"]
            .as_str()
            .unwrap()
            .contains("current password")
    );

    assert_eq!(app.post("/api/user/password").bearer_auth(&a.access)
        .json(&json!({ "current_password": PASSWORD, "new_password": "a-new-long-password", "confirm_password": "a-new-long-password" })).status().await, StatusCode::OK);
    assert_eq!(me_status(&app, &a.access).await, StatusCode::OK);
    assert_eq!(
        me_status(&app, &other_access).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        login(&app, "pw@example.com", PASSWORD).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        login(&app, "pw@example.com", "a-new-long-password")
            .await
            .status(),
        StatusCode::OK
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn csrf_jwks_and_internal_revocations() {
    let (ctx, app) = auth().await;
    let res = app
        .get("/api/auth/csrf")
        .call_expecting(StatusCode::OK)
        .await;
    assert!(
        res.headers()
            .get("set-cookie")
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with("csrf_token=")
    );
    assert!(
        res.json::<Value>().await.unwrap()["csrf_token"]
            .as_str()
            .unwrap()
            .len()
            >= 32
    );

    let jwks: Value = app.get("/.well-known/jwks.json").json_body().await;
    let key = &jwks["keys"][0];
    assert_eq!(key["kty"], "OKP");
    assert_eq!(key["crv"], "Ed25519");
    assert_eq!(key["alg"], "EdDSA");
    assert_eq!(str_at(key, "kid"), ctx.signer.jwk().kid);
    assert!(key.get("d").is_none(), "no private part");

    let a = register(&app, "rev@example.com", PASSWORD).await;
    app.post("/api/auth/logout")
        .bearer_auth(&a.access)
        .call()
        .await;
    app.get("/internal/revocations")
        .expect_status(StatusCode::UNAUTHORIZED)
        .await;
    let list: Value = app
        .get("/internal/revocations")
        .header("X-Internal-Token", zimmer_config::DEV_INTERNAL_TOKEN)
        .json_body()
        .await;
    assert_eq!(list["sessions"].as_array().unwrap().len(), 1);
    assert_eq!(list["sessions"][0]["user_id"], a.user_id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probes_and_metrics() {
    let (_ctx, app) = auth().await;
    assert_eq!(app.get("/healthz").status().await, StatusCode::OK);
    let ready = app.get("/readyz").call_expecting(StatusCode::OK).await;
    let body: Value = ready.json().await.unwrap();
    assert_eq!(body["checks"]["database"], "ok");
    assert_eq!(body["checks"]["redis"], "ok");
    let res = app
        .get("/api/me")
        .header("X-Request-ID", "req-abc-123")
        .call()
        .await;
    assert_eq!(res.headers().get("x-request-id").unwrap(), "req-abc-123");
    let metrics = app.get("/metrics").call().await.text().await.unwrap();
    assert!(metrics.contains("zimmer_http_requests_total"), "{metrics}");
    assert!(metrics.contains("route=\"/api/me\""), "{metrics}");
    assert!(metrics.contains("zimmer_db_pool_connections"), "{metrics}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_lists_every_public_route() {
    let (_ctx, app) = auth().await;
    let res = app
        .get("/api/auth/openapi.json")
        .call_expecting(StatusCode::OK)
        .await;
    let doc: Value = res.json().await.unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    for path in [
        "/api/auth/register",
        "/api/auth/login",
        "/api/auth/2fa/verify",
        "/api/auth/refresh",
        "/api/auth/logout",
        "/api/me",
        "/api/auth/verify-email",
        "/api/forgot-password",
        "/api/reset-password",
        "/api/auth/2fa/initiate",
        "/api/auth/2fa/recovery-codes/regenerate",
        "/api/auth/delete-account",
    ] {
        assert!(doc["paths"].get(path).is_some(), "{path}");
    }
}
