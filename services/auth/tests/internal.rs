//! Auth's internal user API for admin (role and activation changes, staff creation) and the
//! user's own account deletion: rules of rbac.md, events, and revocation of the tokens.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::*;
use reqwest::StatusCode;
use serde_json::{Value, json};
use zimmer_config::DEV_INTERNAL_TOKEN;
use zimmer_jwt::Role;
use zimmer_testkit::{TestApp, count};

async fn internal(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    body: Value,
) -> (StatusCode, Value) {
    json_of(
        app.client
            .request(method, app.url(path))
            .header("X-Internal-Token", DEV_INTERNAL_TOKEN)
            .json(&body)
            .send()
            .await
            .unwrap(),
    )
    .await
}

async fn put_user(app: &TestApp, id: i64, body: Value) -> (StatusCode, Value) {
    internal(
        app,
        reqwest::Method::PUT,
        &format!("/internal/users/{id}"),
        body,
    )
    .await
}

async fn token_of(app: &TestApp, email: &str, password: &str) -> String {
    let (st, body) = json_of(login(app, email, password).await).await;
    assert_eq!(st, StatusCode::OK, "{email}: {body}");
    body["access_token"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn internal_routes_need_the_service_credential() {
    let (ctx, app) = auth().await;
    let manager = ctx.create_user("boss@example.com", Role::Manager).await;
    for (method, path) in [
        (reqwest::Method::GET, "/internal/users/1".to_owned()),
        (reqwest::Method::PUT, "/internal/users/1".to_owned()),
        (reqwest::Method::POST, "/internal/users".to_owned()),
        (
            reqwest::Method::POST,
            "/internal/users/1/deactivate".to_owned(),
        ),
    ] {
        let res = app
            .client
            .request(method.clone(), app.url(&path))
            .header("X-Internal-Token", "guess")
            .json(&json!({ "actor_id": manager, "is_active": false }))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "{method} {path}");
    }
    let mut conn = ctx.db.connect().await;
    assert_eq!(
        count(
            &mut conn,
            "SELECT count(*) AS n FROM users WHERE NOT is_active"
        )
        .await,
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_role_change_revokes_the_sessions_and_follows_rbac() {
    let (ctx, app) = auth().await;
    let manager = ctx.create_user("boss@example.com", Role::Manager).await;
    let support = ctx
        .create_user("helper@example.com", Role::SupportStaff)
        .await;
    let r = register(&app, "promote@example.com", PASSWORD).await;

    // Support staff may not change roles; nobody changes their own.
    let (st, _) = put_user(
        &app,
        r.user_id,
        json!({ "actor_id": support, "role": "technical_team" }),
    )
    .await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    let (st, body) = put_user(
        &app,
        manager,
        json!({ "actor_id": manager, "role": "customer" }),
    )
    .await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    assert_eq!(body["code"], "self_change");
    let (st, _) = put_user(
        &app,
        r.user_id,
        json!({ "actor_id": manager, "role": "emperor" }),
    )
    .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY);
    let (st, _) = put_user(
        &app,
        999_999,
        json!({ "actor_id": manager, "role": "manager" }),
    )
    .await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    let (st, _) = put_user(
        &app,
        r.user_id,
        json!({ "actor_id": r.user_id + 1000, "role": "manager" }),
    )
    .await;
    assert_eq!(st, StatusCode::FORBIDDEN, "an unknown actor");
    assert_eq!(me_status(&app, &r.access).await, StatusCode::OK);

    let (st, body) = put_user(
        &app,
        r.user_id,
        json!({ "actor_id": manager, "role": "technical_team" }),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{body}");
    assert_eq!(body["role"], "technical_team");
    assert_eq!(body["is_admin"], true);
    // The customer-role token is dead; a new login carries the new role.
    assert_eq!(me_status(&app, &r.access).await, StatusCode::UNAUTHORIZED);
    assert_eq!(
        refresh_with_cookie(&app, &r.refresh).await.status(),
        StatusCode::UNAUTHORIZED
    );
    let (_, fresh) = json_of(login(&app, "promote@example.com", PASSWORD).await).await;
    assert_eq!(fresh["user"]["role"], "technical_team");

    let mut conn = ctx.db.connect().await;
    assert_eq!(
        count(
            &mut conn,
            &format!(
                "SELECT count(*) AS n FROM outbox WHERE event_type = 'user.updated' \
                 AND payload->'data'->>'role' = 'technical_team' \
                 AND (payload->'data'->>'user_id')::bigint = {}",
                r.user_id
            )
        )
        .await,
        1
    );
    // Repeating it changes nothing and emits nothing.
    let (st, _) = put_user(
        &app,
        r.user_id,
        json!({ "actor_id": manager, "role": "technical_team" }),
    )
    .await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(
        count(
            &mut conn,
            "SELECT count(*) AS n FROM outbox WHERE event_type = 'user.updated'"
        )
        .await,
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deactivation_blocks_login_and_tokens_everywhere_and_can_be_undone() {
    let (ctx, app) = auth().await;
    let market = ctx
        .spawn(ctx.settings("marketplace", &[]), zimmer_marketplace::build)
        .await;
    let support = ctx
        .create_user("helper@example.com", Role::SupportStaff)
        .await;
    let tech = ctx
        .create_user("tech@example.com", Role::TechnicalTeam)
        .await;
    let r = register(&app, "leaving@example.com", PASSWORD).await;
    let market_status = async || {
        market
            .get("/api/user/automations")
            .bearer_auth(&r.access)
            .send()
            .await
            .unwrap()
            .status()
    };
    zimmer_testkit::eventually(
        "marketplace accepts the token",
        Duration::from_secs(10),
        || async { market_status().await == StatusCode::OK },
    )
    .await;

    // Support staff may deactivate a customer, not a staff member, and not themselves.
    let (st, _) = internal(
        &app,
        reqwest::Method::POST,
        &format!("/internal/users/{tech}/deactivate"),
        json!({ "actor_id": support }),
    )
    .await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    let (st, _) = internal(
        &app,
        reqwest::Method::POST,
        &format!("/internal/users/{support}/deactivate"),
        json!({ "actor_id": support }),
    )
    .await;
    assert_eq!(st, StatusCode::FORBIDDEN);

    let (st, body) = internal(
        &app,
        reqwest::Method::POST,
        &format!("/internal/users/{}/deactivate", r.user_id),
        json!({ "actor_id": support }),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{body}");
    assert_eq!(body["is_active"], false);
    assert!(body["deactivated_at"].is_string());

    assert_eq!(me_status(&app, &r.access).await, StatusCode::UNAUTHORIZED);
    zimmer_testkit::eventually(
        "marketplace rejects the deactivated user",
        Duration::from_secs(5),
        || async { market_status().await == StatusCode::UNAUTHORIZED },
    )
    .await;
    let (st, body) = json_of(login(&app, "leaving@example.com", PASSWORD).await).await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    assert_eq!(body["code"], "account_disabled");

    let mut conn = ctx.db.connect().await;
    assert_eq!(
        count(
            &mut conn,
            &format!(
                "SELECT count(*) AS n FROM outbox WHERE event_type = 'user.deactivated' \
                 AND (payload->'data'->>'user_id')::bigint = {} \
                 AND payload->'data' ? 'deactivated_at'",
                r.user_id
            )
        )
        .await,
        1
    );
    assert_eq!(
        count(
            &mut conn,
            "SELECT count(*) AS n FROM outbox WHERE event_type = 'session.revoked'"
        )
        .await,
        1
    );
    // The live list other services load at start has the user.
    let (st, list) = internal(
        &app,
        reqwest::Method::GET,
        "/internal/revocations",
        json!({}),
    )
    .await;
    assert_eq!(st, StatusCode::OK);
    assert!(
        list["users"]
            .as_array()
            .unwrap()
            .iter()
            .any(|u| u["user_id"] == r.user_id)
    );

    // Deactivating again is a no-op.
    let (st, _) = put_user(
        &app,
        r.user_id,
        json!({ "actor_id": support, "is_active": false }),
    )
    .await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(
        count(
            &mut conn,
            "SELECT count(*) AS n FROM outbox WHERE event_type = 'user.deactivated'"
        )
        .await,
        1
    );

    // Reactivated: a new login works everywhere; the old token stays dead.
    tokio::time::sleep(Duration::from_millis(1100)).await; // a new `iat` second
    let (st, body) = internal(
        &app,
        reqwest::Method::POST,
        &format!("/internal/users/{}/activate", r.user_id),
        json!({ "actor_id": support }),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{body}");
    assert_eq!(body["is_active"], true);
    assert!(body["deactivated_at"].is_null());
    let fresh = token_of(&app, "leaving@example.com", PASSWORD).await;
    assert_eq!(me_status(&app, &fresh).await, StatusCode::OK);
    assert_eq!(
        market
            .get("/api/user/automations")
            .bearer_auth(&fresh)
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    assert_eq!(me_status(&app, &r.access).await, StatusCode::UNAUTHORIZED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_a_manager_creates_staff_with_a_password_or_an_invitation() {
    let (ctx, app, mail) = auth_with(&[]).await;
    let manager = ctx.create_user("boss@example.com", Role::Manager).await;
    let tech = ctx
        .create_user("tech@example.com", Role::TechnicalTeam)
        .await;
    let create = |actor: i64, body: Value| {
        let mut b = body;
        b["actor_id"] = json!(actor);
        internal(&app, reqwest::Method::POST, "/internal/users", b)
    };

    let (st, _) = create(tech, json!({ "name": "X", "email": "x@example.com", "role": "support_staff", "password": PASSWORD })).await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    let (st, body) = create(
        manager,
        json!({ "name": "X", "email": "x@example.com", "role": "customer", "password": PASSWORD }),
    )
    .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["errors"][0]["field"], "role");
    let (st, body) = create(
        manager,
        json!({ "name": "", "email": "bad", "role": "manager", "password": "short" }),
    )
    .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["errors"].as_array().unwrap().len(), 3, "{body}");

    let (st, body) = create(
        manager,
        json!({ "name": "مریم پشتیبان", "email": "Maryam@Example.com", "role": "support_staff", "password": PASSWORD }),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{body}");
    assert_eq!(body["role"], "support_staff");
    assert_eq!(body["email"], "maryam@example.com");
    assert_eq!(body["name"], "مریم پشتیبان");
    let token = token_of(&app, "maryam@example.com", PASSWORD).await;
    assert_eq!(me_status(&app, &token).await, StatusCode::OK);
    let (st, body) = create(manager, json!({ "name": "Dup", "email": "maryam@example.com", "role": "manager", "password": PASSWORD })).await;
    assert_eq!(st, StatusCode::CONFLICT);
    assert_eq!(body["code"], "email_taken");

    // No password: an invitation link sets the first one.
    let (st, body) = create(
        manager,
        json!({ "name": "Reza", "email": "reza@example.com", "role": "technical_team" }),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{body}");
    let m = mail.wait_for("reza@example.com", 1).await;
    let invite = link_token(&m, "/reset-password");
    let chosen = "reza's own passphrase";
    let res = app
        .post_json(
            "/api/reset-password",
            &json!({ "token": invite, "new_password": chosen }),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let (_, body) = json_of(login(&app, "reza@example.com", chosen).await).await;
    assert_eq!(body["user"]["role"], "technical_team");

    let mut conn = ctx.db.connect().await;
    assert_eq!(
        count(
            &mut conn,
            &format!(
                "SELECT count(*) AS n FROM outbox WHERE event_type = 'user.registered' \
                 AND (payload->'data'->>'created_by')::bigint = {manager}"
            )
        )
        .await,
        2
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_an_account_needs_the_password_and_anonymises_it() {
    let (ctx, app) = auth().await;
    let r = register(&app, "bye@example.com", PASSWORD).await;
    enable_2fa(&app, &r.access).await;

    // The panel sends a Bearer only: 422 saying the password is needed.
    let (st, body) = json_of(
        app.delete("/api/auth/delete-account")
            .bearer_auth(&r.access)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("password is required"),
        "{body}"
    );
    let (st, body) = json_of(
        app.delete("/api/auth/delete-account")
            .bearer_auth(&r.access)
            .json(&json!({ "password": "not the password" }))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["code"], "wrong_password");
    assert_eq!(me_status(&app, &r.access).await, StatusCode::OK);
    // Without a Bearer: 401.
    let res = app
        .delete("/api/auth/delete-account")
        .json(&json!({ "password": PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);

    let (st, body) = json_of(
        app.delete("/api/auth/delete-account")
            .bearer_auth(&r.access)
            .json(&json!({ "password": PASSWORD }))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{body}");
    assert_eq!(me_status(&app, &r.access).await, StatusCode::UNAUTHORIZED);
    assert_eq!(
        login(&app, "bye@example.com", PASSWORD).await.status(),
        StatusCode::UNAUTHORIZED
    );
    let mut conn = ctx.db.connect().await;
    assert_eq!(
        count(
            &mut conn,
            &format!(
                "SELECT count(*) AS n FROM users WHERE id = {} AND NOT is_active \
                 AND email = 'deleted-{}@deleted.invalid' AND name = 'Deleted user' \
                 AND phone_number IS NULL AND twofa_secret IS NULL AND NOT twofa_enabled \
                 AND deactivated_at IS NOT NULL",
                r.user_id, r.user_id
            )
        )
        .await,
        1
    );
    assert_eq!(
        count(&mut conn, "SELECT count(*) AS n FROM twofa_recovery_codes").await,
        0
    );
    assert_eq!(
        count(
            &mut conn,
            "SELECT count(*) AS n FROM outbox WHERE event_type = 'user.deactivated'"
        )
        .await,
        1
    );
    // The address is free for a new account.
    register(&app, "bye@example.com", PASSWORD).await;
}
