//! Email verification and password reset against real PostgreSQL/Redis/RabbitMQ, with the
//! mail read back from the file sink.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use common::*;
use reqwest::StatusCode;
use serde_json::{Value, json};
use zimmer_testkit::{assert_db_count, db_count, retry_after, str_at};

async fn request_verification(
    app: &zimmer_testkit::TestApp,
    access: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut req = app
        .post("/api/auth/send-email-verification")
        .bearer_auth(access);
    if let Some(b) = body {
        req = req.json(&b);
    }
    req.json_of().await
}

/// The verification link used without signing in: its status and JSON answer.
async fn verify_link(app: &zimmer_testkit::TestApp, token: &str) -> (StatusCode, Value) {
    json_of(
        app.post_json("/api/auth/verify-email", &json!({ "token": token }))
            .await,
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verification_by_link_is_single_use_and_stored_hashed() {
    let (ctx, app, mail) = auth_with(&[]).await;
    let r = register(&app, "verify@example.com", PASSWORD).await;
    assert!(
        mail.to("verify@example.com").is_empty(),
        "no mail at signup"
    );

    // Without a Bearer: 401.
    app.post("/api/auth/request-email-verify")
        .expect_status(StatusCode::UNAUTHORIZED)
        .await;

    let (status, body) = request_verification(&app, &r.access, None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let m = mail.wait_for("verify@example.com", 1).await;
    assert_eq!(m["subject"], "تأیید ایمیل حساب زیمر");
    assert!(
        str_at(&m, "text").contains("http://localhost:3000/verify-email?token="),
        "{m}"
    );
    let token = link_token(&m, "/verify-email");
    let code = mailed_code(&m);

    // Neither the token nor the code is stored in the clear.
    assert_db_count(
        &ctx,
        "SELECT count(*) AS n FROM email_verification_tokens \
         WHERE length(token_hash) = 32 AND length(code_hash) = 32 AND used_at IS NULL",
        1,
    )
    .await;
    let hex = |b: Vec<u8>| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    let token_sha = hex(zimmer_auth::domain::tokens::token_hash(&token));
    let code_sha = hex(zimmer_auth::domain::tokens::token_hash(&code));
    assert_eq!(
        db_count(
            &ctx,
            &format!(
                "SELECT count(*) AS n FROM email_verification_tokens \
                 WHERE token_hash = decode('{token_sha}', 'hex') \
                   AND code_hash <> decode('{code_sha}', 'hex')"
            ),
        )
        .await,
        1,
        "the link token is stored as its SHA-256, the code as a keyed hash"
    );

    // The link works without signing in, once.
    let (status, body) = verify_link(&app, &token).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["user"]["email_verified"], true);
    assert!(body["user"]["email_verified_at"].is_string());
    let (status, body) = verify_link(&app, &token).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["code"], "invalid_token");
    assert!(body["detail"].is_string());

    let me: Value = app.get("/api/me").bearer_auth(&r.access).json_body().await;
    assert!(me["email_verified_at"].is_string());

    // Verified already: asking again sends nothing more.
    let (status, body) = request_verification(&app, &r.access, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["email_verified"], true);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(mail.to("verify@example.com").len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verification_by_code_needs_the_bearer_and_allows_five_attempts() {
    let (_ctx, app, mail) = auth_with(&[]).await;
    let r = register(&app, "code@example.com", PASSWORD).await;

    // The panel's alias with someone else's address is refused.
    let (status, body) = request_verification(
        &app,
        &r.access,
        Some(json!({ "email": "other@example.com" })),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["errors"][0]["field"], "email");

    let (status, _) = request_verification(
        &app,
        &r.access,
        Some(json!({ "email": " CODE@example.com " })),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let m = mail.wait_for("code@example.com", 1).await;
    let code = mailed_code(&m);
    let wrong = if code == "000000" { "000001" } else { "000000" };

    // A code without a Bearer: 401.
    let res = app
        .post_json(
            "/api/auth/verify-email",
            &json!({ "email": "code@example.com", "verification_code": code }),
        )
        .await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    // Nothing usable: 422 with a clear detail.
    let body = app
        .post("/api/auth/verify-email")
        .bearer_auth(&r.access)
        .json_expecting(StatusCode::UNPROCESSABLE_ENTITY)
        .await;
    assert!(str_at(&body, "detail").contains("verification_code"));

    let attempt = |c: String| {
        app.post("/api/auth/verify-email")
            .bearer_auth(&r.access)
            .json(&json!({ "email": "code@example.com", "verification_code": c }))
            .send()
    };
    for left in (1..=4).rev() {
        let (status, body) = json_of(attempt(wrong.to_owned()).await.unwrap()).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(body["code"], "invalid_code");
        assert!(
            str_at(&body, "detail").contains(&format!("{left} attempt")),
            "{body}"
        );
    }
    // The fifth wrong one uses up the code: even the right one no longer works.
    let (status, body) = json_of(attempt(wrong.to_owned()).await.unwrap()).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["code"], "code_expired");
    let (status, body) = json_of(attempt(code.clone()).await.unwrap()).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["code"], "code_expired");

    // A new mail, a new code; the old one stays dead and the new one works.
    let (status, _) = request_verification(&app, &r.access, None).await;
    assert_eq!(status, StatusCode::OK);
    let m2 = mail.wait_for("code@example.com", 2).await;
    let code2 = mailed_code(&m2);
    let old_link = link_token(&m, "/verify-email");
    let (status, _) = verify_link(&app, &old_link).await;
    assert_eq!(
        status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "the earlier link expired"
    );
    let (status, body) = json_of(attempt(code2).await.unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["user"]["email_verified"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_verification_links_are_refused() {
    let (ctx, app, mail) = auth_with(&[]).await;
    let r = register(&app, "late@example.com", PASSWORD).await;
    request_verification(&app, &r.access, None).await;
    let token = link_token(&mail.wait_for("late@example.com", 1).await, "/verify-email");
    db_count(
        &ctx,
        "WITH u AS (UPDATE email_verification_tokens SET expires_at = now() - interval '1 second' RETURNING 1) \
         SELECT count(*) AS n FROM u",
    )
    .await;
    let (status, body) = verify_link(&app, &token).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["code"], "invalid_token");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forgot_password_never_reveals_whether_an_account_exists() {
    let (ctx, app, mail) = auth_with(&[]).await;
    register(&app, "known@example.com", PASSWORD).await;
    let known = app
        .post_json(
            "/api/forgot-password",
            &json!({ "email": "Known@Example.com" }),
        )
        .await;
    let unknown = app
        .post_json(
            "/api/forgot-password",
            &json!({ "email": "nobody@example.com" }),
        )
        .await;
    assert_eq!(known.status(), StatusCode::OK);
    assert_eq!(unknown.status(), StatusCode::OK);
    assert_eq!(
        known.json::<Value>().await.unwrap(),
        unknown.json::<Value>().await.unwrap()
    );
    mail.wait_for("known@example.com", 1).await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(mail.all().len(), 1, "no mail for an unknown address");
    assert_db_count(&ctx, "SELECT count(*) AS n FROM password_reset_tokens", 1).await;

    // Malformed input is a 422 (it says nothing about accounts), never a 500.
    let res = app
        .post_json("/api/forgot-password", &json!({ "email": "not-an-email" }))
        .await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_sets_the_password_once_and_revokes_every_session() {
    let (ctx, app, mail) = auth_with(&[]).await;
    let r = register(&app, "reset@example.com", PASSWORD).await;
    let second_access = login_access(&app, "reset@example.com", PASSWORD).await;

    app.post_json(
        "/api/forgot-password",
        &json!({ "email": "reset@example.com" }),
    )
    .await;
    let m = mail.wait_for("reset@example.com", 1).await;
    assert_eq!(m["subject"], "بازیابی رمز عبور زیمر");
    let token = link_token(&m, "/reset-password");

    let reset =
        async |body: Value| json_of(app.post_json("/api/reset-password", &body).await).await;
    // Password rules apply; a bad token is refused without touching anything.
    let (status, body) = reset(json!({ "token": token, "new_password": "short" })).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["errors"][0]["field"], "new_password");
    let (status, body) =
        reset(json!({ "token": "made-up", "new_password": "a brand new passphrase" })).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["code"], "invalid_token");

    let new_password = "a brand new passphrase";
    let (status, body) = reset(
        json!({ "token": token, "new_password": new_password, "confirm_password": new_password }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["revoked_sessions"], 2);

    // Every session is gone: both access tokens and the refresh token.
    assert_eq!(me_status(&app, &r.access).await, StatusCode::UNAUTHORIZED);
    assert_eq!(
        me_status(&app, &second_access).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        refresh_with_cookie(&app, &r.refresh).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_db_count(
        &ctx,
        "SELECT count(*) AS n FROM outbox WHERE event_type = 'session.revoked'",
        2,
    )
    .await;

    // The old password is dead, the new one works, and the link was single use.
    assert_eq!(
        login(&app, "reset@example.com", PASSWORD).await.status(),
        StatusCode::UNAUTHORIZED
    );
    let ok = login(&app, "reset@example.com", new_password).await;
    assert_eq!(ok.status(), StatusCode::OK);
    // The link reached the inbox: the address counts as verified.
    assert!(ok.json::<Value>().await.unwrap()["user"]["email_verified_at"].is_string());
    let (status, _) =
        reset(json!({ "token": token, "new_password": "yet another passphrase" })).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_latest_reset_link_works_and_expired_ones_do_not() {
    let (ctx, app, mail) = auth_with(&[]).await;
    register(&app, "twice@example.com", PASSWORD).await;
    // The n-th reset link asked for.
    let new_link = async |n: usize| {
        app.post_json(
            "/api/forgot-password",
            &json!({ "email": "twice@example.com" }),
        )
        .await;
        link_token(
            &mail.wait_for("twice@example.com", n).await,
            "/reset-password",
        )
    };
    let first = new_link(1).await;
    let second = new_link(2).await;
    assert_ne!(first, second);
    let reset = async |token: String| {
        app.post_json(
            "/api/reset-password",
            &json!({ "token": token, "new_password": "another good passphrase" }),
        )
        .await
    };
    assert_eq!(
        reset(first).await.status(),
        StatusCode::UNPROCESSABLE_ENTITY
    );
    db_count(
        &ctx,
        "WITH u AS (UPDATE password_reset_tokens SET expires_at = now() - interval '1 second' \
         WHERE used_at IS NULL RETURNING 1) SELECT count(*) AS n FROM u",
    )
    .await;
    assert_eq!(
        reset(second).await.status(),
        StatusCode::UNPROCESSABLE_ENTITY
    );
    assert_eq!(
        login(&app, "twice@example.com", PASSWORD).await.status(),
        StatusCode::OK,
        "the password is unchanged"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forgot_password_is_throttled_per_email_known_or_not() {
    let (_ctx, app, mail) = auth_with(&[("THROTTLE_FORGOT_EMAIL", "2/3600")]).await;
    register(&app, "bomb@example.com", PASSWORD).await;
    for email in ["bomb@example.com", "ghost@example.com"] {
        for _ in 0..2 {
            let res = app
                .post_json("/api/forgot-password", &json!({ "email": email }))
                .await;
            assert_eq!(res.status(), StatusCode::OK);
        }
        let res = app
            .post_json("/api/forgot-password", &json!({ "email": email }))
            .await;
        assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS, "{email}");
        assert!((1..=3600).contains(&retry_after(&res)));
        assert_eq!(res.json::<Value>().await.unwrap()["code"], "rate_limited");
    }
    mail.wait_for("bomb@example.com", 2).await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(mail.to("bomb@example.com").len(), 2);
}
