//! Auth's internal user API for admin (role and activation changes, staff creation) and the
//! user's own account deletion: the role rules, events, and revocation of the tokens; and
//! who may call it: only the admin service's own credential, acting with the staff member's
//! own verified access token.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::time::Duration;

use common::*;
use reqwest::StatusCode;
use serde_json::{Value, json};
use uuid::Uuid;
use zimmer_config::{DEV_INTERNAL_TOKEN, dev_internal_token};
use zimmer_jwt::{Claims, Role};
use zimmer_testkit::{TestApp, TestContext, assert_db_count, db_count, str_at};

/// A call with `credential` (a service's `X-Internal-Token`) and, if given, the acting staff
/// member's access token.
async fn call(
    app: &TestApp,
    credential: &str,
    acting: Option<&str>,
    method: reqwest::Method,
    path: &str,
    body: Value,
) -> (StatusCode, Value) {
    let mut req = app
        .client
        .request(method, app.url(path))
        .header("X-Internal-Token", credential)
        .json(&body);
    if let Some(token) = acting {
        req = req.header("X-Acting-User-Token", format!("Bearer {token}"));
    }
    json_of(req.call().await).await
}

/// `GET /internal/revocations` with `credential` (the list services load at start).
async fn revocations(app: &TestApp, credential: &str) -> (StatusCode, Value) {
    let get = reqwest::Method::GET;
    call(
        app,
        credential,
        None,
        get,
        "/internal/revocations",
        json!({}),
    )
    .await
}

/// What the admin service sends: its own credential, acting for the holder of `acting`.
async fn internal(
    app: &TestApp,
    acting: &str,
    method: reqwest::Method,
    path: &str,
    body: Value,
) -> (StatusCode, Value) {
    call(app, DEV_INTERNAL_TOKEN, Some(acting), method, path, body).await
}

/// A change of user `id` acting for the holder of `acting`, which must answer `expected`;
/// the body.
async fn put_user(
    app: &TestApp,
    acting: &str,
    id: i64,
    body: Value,
    expected: StatusCode,
) -> Value {
    let path = format!("/internal/users/{id}");
    let (status, v) = internal(app, acting, reqwest::Method::PUT, &path, body).await;
    assert_eq!(status, expected, "PUT {path}: {v}");
    v
}

/// How many `event_type` events the outbox holds that also match the SQL condition `and`
/// (`TRUE` for all of them).
async fn events(ctx: &TestContext, event_type: &str, and: &str) -> i64 {
    let sql =
        format!("SELECT count(*) AS n FROM outbox WHERE event_type = '{event_type}' AND {and}");
    db_count(ctx, &sql).await
}

/// A staff member's access token, as auth issues it (signed with the test's key).
fn token(ctx: &TestContext, id: i64, role: Role) -> String {
    ctx.mint_access_token(id, role, Uuid::new_v4())
}

/// The manager boss@example.com and one more staff member; their ids.
async fn manager_and(ctx: &TestContext, email: &str, role: Role) -> (i64, i64) {
    let manager = ctx.create_user("boss@example.com", Role::Manager).await;
    (manager, ctx.create_user(email, role).await)
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
            .call()
            .await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "{method} {path}");
    }
    assert_db_count(
        &ctx,
        "SELECT count(*) AS n FROM users WHERE NOT is_active",
        0,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_role_change_revokes_the_sessions_and_follows_rbac() {
    let (ctx, app) = auth().await;
    let (manager, support) = manager_and(&ctx, "helper@example.com", Role::SupportStaff).await;
    let r = register(&app, "promote@example.com", PASSWORD).await;
    let as_manager = token(&ctx, manager, Role::Manager);
    let as_support = token(&ctx, support, Role::SupportStaff);
    // A valid token of a user auth does not know.
    let as_unknown = token(&ctx, r.user_id + 1000, Role::Manager);

    // Support staff may not change roles, bad input is a 422, an unknown user a 404, an
    // unknown actor a 403; and nobody changes their own role.
    for (acting, id, role, expected) in [
        (&as_support, r.user_id, "technical_team", 403),
        (&as_manager, r.user_id, "emperor", 422),
        (&as_manager, 999_999, "manager", 404),
        (&as_unknown, r.user_id, "manager", 403),
    ] {
        let expected = StatusCode::from_u16(expected).unwrap();
        put_user(&app, acting, id, json!({ "role": role }), expected).await;
    }
    let own = json!({ "role": "customer" });
    let body = put_user(&app, &as_manager, manager, own, StatusCode::FORBIDDEN).await;
    assert_eq!(body["code"], "self_change");
    assert_eq!(me_status(&app, &r.access).await, StatusCode::OK);

    let promote = json!({ "role": "technical_team" });
    let body = put_user(
        &app,
        &as_manager,
        r.user_id,
        promote.clone(),
        StatusCode::OK,
    )
    .await;
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

    let promoted = format!(
        "payload->'data'->>'role' = 'technical_team' \
         AND (payload->'data'->>'user_id')::bigint = {}",
        r.user_id
    );
    assert_eq!(events(&ctx, "user.updated", &promoted).await, 1);
    // Repeating it changes nothing and emits nothing.
    put_user(&app, &as_manager, r.user_id, promote, StatusCode::OK).await;
    assert_eq!(events(&ctx, "user.updated", "TRUE").await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deactivation_blocks_login_and_tokens_everywhere_and_can_be_undone() {
    let (ctx, app, market) = auth_and_market().await;
    let support = ctx
        .create_user("helper@example.com", Role::SupportStaff)
        .await;
    let tech = ctx
        .create_user("tech@example.com", Role::TechnicalTeam)
        .await;
    let r = register(&app, "leaving@example.com", PASSWORD).await;
    let as_support = token(&ctx, support, Role::SupportStaff);
    zimmer_testkit::eventually(
        "marketplace accepts the token",
        Duration::from_secs(10),
        || async { market_status(&market, &r.access).await == StatusCode::OK },
    )
    .await;

    // Support staff may deactivate a customer, not a staff member, and not themselves.
    // Support staff (de)activating user `id`: `action` is `deactivate` or `activate`.
    let switch = |id: i64, action: &'static str| {
        let (app, acting) = (&app, &as_support);
        async move {
            let path = format!("/internal/users/{id}/{action}");
            internal(app, acting, reqwest::Method::POST, &path, json!({})).await
        }
    };
    for (who, id) in [("staff", tech), ("themselves", support)] {
        assert_eq!(
            switch(id, "deactivate").await.0,
            StatusCode::FORBIDDEN,
            "{who}"
        );
    }

    let (st, body) = switch(r.user_id, "deactivate").await;
    assert_eq!(st, StatusCode::OK, "{body}");
    assert_eq!(body["is_active"], false);
    assert!(body["deactivated_at"].is_string());

    assert_eq!(me_status(&app, &r.access).await, StatusCode::UNAUTHORIZED);
    zimmer_testkit::eventually(
        "marketplace rejects the deactivated user",
        Duration::from_secs(5),
        || async { market_status(&market, &r.access).await == StatusCode::UNAUTHORIZED },
    )
    .await;
    let (st, body) = json_of(login(&app, "leaving@example.com", PASSWORD).await).await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    assert_eq!(body["code"], "account_disabled");

    let of_the_user = format!(
        "(payload->'data'->>'user_id')::bigint = {} AND payload->'data' ? 'deactivated_at'",
        r.user_id
    );
    assert_eq!(events(&ctx, "user.deactivated", &of_the_user).await, 1);
    assert_eq!(events(&ctx, "session.revoked", "TRUE").await, 1);
    // The live list other services load at start has the user.
    let (st, list) = revocations(&app, &dev_internal_token("marketplace")).await;
    assert_eq!(st, StatusCode::OK);
    assert!(
        list["users"]
            .as_array()
            .unwrap()
            .iter()
            .any(|u| u["user_id"] == r.user_id)
    );

    // Deactivating again is a no-op.
    put_user(
        &app,
        &as_support,
        r.user_id,
        json!({ "is_active": false }),
        StatusCode::OK,
    )
    .await;
    assert_eq!(events(&ctx, "user.deactivated", "TRUE").await, 1);

    // Reactivated: a new login works everywhere; the old token stays dead.
    tokio::time::sleep(Duration::from_millis(1100)).await; // a new `iat` second
    let (st, body) = switch(r.user_id, "activate").await;
    assert_eq!(st, StatusCode::OK, "{body}");
    assert_eq!(body["is_active"], true);
    assert!(body["deactivated_at"].is_null());
    let fresh = login_access(&app, "leaving@example.com", PASSWORD).await;
    assert_eq!(me_status(&app, &fresh).await, StatusCode::OK);
    assert_eq!(market_status(&market, &fresh).await, StatusCode::OK);
    assert_eq!(me_status(&app, &r.access).await, StatusCode::UNAUTHORIZED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_a_manager_creates_staff_with_a_password_or_an_invitation() {
    let (ctx, app, mail) = auth_with(&[]).await;
    let (manager, tech) = manager_and(&ctx, "tech@example.com", Role::TechnicalTeam).await;
    let app = &app;
    let create = |actor: i64, body: Value| {
        let role = if actor == manager {
            Role::Manager
        } else {
            Role::TechnicalTeam
        };
        let acting = token(&ctx, actor, role);
        async move { internal(app, &acting, reqwest::Method::POST, "/internal/users", body).await }
    };

    let (st, _) = create(tech, json!({ "name": "X", "email": "x@example.com", "role": "support_staff", "password": PASSWORD })).await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    // Any role, customers included (docs/panels.md "Users"); a customer needs a password (the
    // invitation link is for staff), and an unknown role is refused.
    for (field, body) in [
        (
            "password",
            json!({ "name": "X", "email": "x@example.com", "role": "customer" }),
        ),
        (
            "role",
            json!({ "name": "X", "email": "x@example.com", "role": "admin", "password": PASSWORD }),
        ),
    ] {
        let (st, body) = create(manager, body).await;
        assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{field}");
        assert_eq!(body["errors"][0]["field"], field);
    }
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
    let token = login_access(app, "maryam@example.com", PASSWORD).await;
    assert_eq!(me_status(app, &token).await, StatusCode::OK);
    let (st, body) = create(manager, json!({ "name": "Dup", "email": "maryam@example.com", "role": "manager", "password": PASSWORD })).await;
    assert_eq!(st, StatusCode::CONFLICT);
    assert_eq!(body["code"], "email_taken");
    // Staff accounts follow the same email rule as sign-up: a full-width look-alike is the
    // same address (taken), another alphabet is refused.
    let (st, body) = create(manager, json!({ "name": "Dup", "email": "ｍａｒｙａｍ@example.com", "role": "manager", "password": PASSWORD })).await;
    assert_eq!(st, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["code"], "email_taken");
    let (st, body) = create(manager, json!({ "name": "Dup", "email": "mаryam@example.com", "role": "manager", "password": PASSWORD })).await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["errors"][0]["field"], "email");

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
    let (_, body) = json_of(login(app, "reza@example.com", chosen).await).await;
    assert_eq!(body["user"]["role"], "technical_team");

    let by_manager = format!("(payload->'data'->>'created_by')::bigint = {manager}");
    assert_eq!(events(&ctx, "user.registered", &by_manager).await, 2);
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
            .call()
            .await,
    )
    .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        str_at(&body, "detail").contains("password is required"),
        "{body}"
    );
    let (st, body) = json_of(
        app.delete("/api/auth/delete-account")
            .bearer_auth(&r.access)
            .json(&json!({ "password": "not the password" }))
            .call()
            .await,
    )
    .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["code"], "wrong_password");
    assert_eq!(me_status(&app, &r.access).await, StatusCode::OK);
    // Without a Bearer: 401.
    app.delete("/api/auth/delete-account")
        .json(&json!({ "password": PASSWORD }))
        .expect_status(StatusCode::UNAUTHORIZED)
        .await;

    let (st, body) = json_of(
        app.delete("/api/auth/delete-account")
            .bearer_auth(&r.access)
            .json(&json!({ "password": PASSWORD }))
            .call()
            .await,
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{body}");
    assert_eq!(me_status(&app, &r.access).await, StatusCode::UNAUTHORIZED);
    assert_eq!(
        login(&app, "bye@example.com", PASSWORD).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_db_count(
        &ctx,
        &format!(
            "SELECT count(*) AS n FROM users WHERE id = {} AND NOT is_active \
             AND email = 'deleted-{}@deleted.invalid' AND name = 'Deleted user' \
             AND phone_number IS NULL AND twofa_secret IS NULL AND NOT twofa_enabled \
             AND deactivated_at IS NOT NULL",
            r.user_id, r.user_id
        ),
        1,
    )
    .await;
    assert_db_count(&ctx, "SELECT count(*) AS n FROM twofa_recovery_codes", 0).await;
    assert_eq!(events(&ctx, "user.deactivated", "TRUE").await, 1);
    // The address is free for a new account.
    register(&app, "bye@example.com", PASSWORD).await;
}

/// Claims like auth's, for tokens a test must shape itself (expired, another key).
fn claims(user_id: i64, role: Role, exp_offset: i64) -> Claims {
    let now = chrono::Utc::now().timestamp();
    Claims {
        sub: user_id.to_string(),
        role,
        sid: Uuid::new_v4(),
        jti: Uuid::new_v4(),
        iat: now - 60,
        exp: now + exp_offset,
        iss: "zimmer-auth".to_owned(),
        aud: "zimmer".to_owned(),
        auth_time: Some(now - 60),
    }
}

async fn managers(ctx: &TestContext) -> i64 {
    db_count(
        ctx,
        "SELECT count(*) AS n FROM users WHERE role = 'manager'",
    )
    .await
}

/// Issue 7: any holder of the one shared internal token could create a manager by naming
/// one as `actor_id`. Now only the admin service's own credential may change users, and
/// only with a valid token of a staff member whose (stored) role allows the change.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_admin_acting_for_a_manager_creates_a_manager() {
    let (ctx, app) = auth().await;
    let (manager, support) = manager_and(&ctx, "helper@example.com", Role::SupportStaff).await;
    let as_manager = token(&ctx, manager, Role::Manager);
    let as_support = token(&ctx, support, Role::SupportStaff);
    let new_manager = json!({
        "name": "Mallory", "email": "mallory@example.com", "role": "manager",
        "password": PASSWORD,
        // Ignored: the actor comes from the verified token, never from the body.
        "actor_id": manager,
    });
    let create = |credential: String, acting: Option<String>| {
        let body = new_manager.clone();
        let app = &app;
        async move {
            call(
                app,
                &credential,
                acting.as_deref(),
                reqwest::Method::POST,
                "/internal/users",
                body,
            )
            .await
        }
    };
    let admin = DEV_INTERNAL_TOKEN.to_owned();

    // Another service's credential, even with a manager's token: not the admin service.
    for caller in ["marketplace", "billing", "support", "auth"] {
        let (st, body) = create(dev_internal_token(caller), Some(as_manager.clone())).await;
        assert_eq!(st, StatusCode::FORBIDDEN, "{caller}: {body}");
        assert_eq!(body["code"], "caller_not_allowed", "{caller}");
    }
    // Admin's credential alone (the old body `actor_id` no longer counts).
    let (st, body) = create(admin.clone(), None).await;
    assert_eq!(st, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["code"], "acting_token_required");
    // Acting for support staff: the stored role does not allow it.
    let (st, body) = create(admin.clone(), Some(as_support.clone())).await;
    assert_eq!(st, StatusCode::FORBIDDEN, "{body}");
    // A support staff member's token that claims the manager role: auth goes by the stored
    // role, not by the claim.
    let claimed = ctx
        .signer
        .sign(&claims(support, Role::Manager, 600))
        .unwrap();
    let (st, body) = create(admin.clone(), Some(claimed)).await;
    assert_eq!(st, StatusCode::FORBIDDEN, "{body}");
    // Forged (signed with another key), expired, garbage: not a token of anybody.
    let other_key = zimmer_jwt::generate_ed25519_pem().unwrap();
    let forged = zimmer_jwt::Signer::from_pem(&other_key)
        .unwrap()
        .sign(&claims(manager, Role::Manager, 600))
        .unwrap();
    let expired = ctx
        .signer
        .sign(&claims(manager, Role::Manager, -120))
        .unwrap();
    for (what, bad) in [
        ("forged", forged),
        ("expired", expired),
        ("garbage", "not-a-jwt".to_owned()),
    ] {
        let (st, body) = create(admin.clone(), Some(bad)).await;
        assert_eq!(st, StatusCode::FORBIDDEN, "{what}: {body}");
        assert_eq!(body["code"], "invalid_actor_token", "{what}");
    }
    // A manager who signed out: the token is revoked.
    let signed_out = login_access(&app, "boss@example.com", zimmer_testkit::TEST_PASSWORD).await;
    let res = app
        .post("/api/auth/logout")
        .bearer_auth(&signed_out)
        .call()
        .await;
    assert!(res.status().is_success());
    let (st, body) = create(admin.clone(), Some(signed_out)).await;
    assert_eq!(st, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["code"], "invalid_actor_token");
    assert_eq!(managers(&ctx).await, 1, "nobody was created so far");

    // Role changes and (de)activation follow the same rule.
    let r = register(&app, "climber@example.com", PASSWORD).await;
    let promote = json!({ "role": "manager", "actor_id": manager });
    let user = format!("/internal/users/{}", r.user_id);
    for (credential, acting, method, path, body) in [
        (
            dev_internal_token("billing"),
            Some(&as_manager),
            reqwest::Method::PUT,
            format!("{user}/role"),
            promote.clone(),
        ),
        (
            DEV_INTERNAL_TOKEN.to_owned(),
            None,
            reqwest::Method::PUT,
            user.clone(),
            promote,
        ),
        (
            dev_internal_token("support"),
            Some(&as_support),
            reqwest::Method::POST,
            format!("{user}/deactivate"),
            json!({}),
        ),
    ] {
        let acting = acting.map(String::as_str);
        let (st, body) = call(&app, &credential, acting, method.clone(), &path, body).await;
        assert_eq!(st, StatusCode::FORBIDDEN, "{method} {path}: {body}");
    }
    assert_eq!(me_status(&app, &r.access).await, StatusCode::OK);
    assert_eq!(managers(&ctx).await, 1);

    // The admin service acting for a manager: created, and recorded as created by them.
    let (st, body) = create(admin, Some(as_manager)).await;
    assert_eq!(st, StatusCode::CREATED, "{body}");
    assert_eq!(body["role"], "manager");
    assert_eq!(managers(&ctx).await, 2);
    let by_manager = format!("(payload->'data'->>'created_by')::bigint = {manager}");
    assert_eq!(events(&ctx, "user.registered", &by_manager).await, 1);
}

/// Services present their own credentials: auth tells them apart, and the read-only routes
/// stay open to every known caller.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_service_has_its_own_internal_credential() {
    let (ctx, app) = auth().await;
    let user = ctx.create_user("someone@example.com", Role::Customer).await;
    for caller in ["marketplace", "billing", "support", "admin"] {
        let (st, _) = revocations(&app, &dev_internal_token(caller)).await;
        assert_eq!(st, StatusCode::OK, "{caller}");
    }
    let (st, body) = call(
        &app,
        DEV_INTERNAL_TOKEN,
        None,
        reqwest::Method::GET,
        &format!("/internal/users/{user}"),
        json!({}),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{body}");
    // The old shared development token is nobody's credential any more.
    let (st, _) = revocations(&app, "dev-internal-token-change-me").await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);

    // With explicit INTERNAL_CALLERS, only the listed callers get in.
    let only_admin = zimmer_config::internal_caller_entry("admin", "admins-own-secret");
    let strict = ctx
        .spawn(
            ctx.settings("auth", &[("INTERNAL_CALLERS", only_admin.as_str())]),
            zimmer_auth::build,
        )
        .await;
    for (credential, expected) in [
        ("admins-own-secret", StatusCode::OK),
        (DEV_INTERNAL_TOKEN, StatusCode::UNAUTHORIZED),
        ("admins-own-secreT", StatusCode::UNAUTHORIZED),
    ] {
        let (st, _) = revocations(&strict, credential).await;
        assert_eq!(st, expected, "{credential}");
    }
}
