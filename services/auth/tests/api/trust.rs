//! Trust holes closed in auth: the recent sign-in rule of two-factor changes (and the other
//! sessions ended when 2FA is turned on or off), look-alike emails, login attempts counted
//! before the password is checked, the demo manager in production, and no mail sink in
//! production.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::process::Command;

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use common::*;
use diesel_async::RunQueryDsl;
use reqwest::StatusCode;
use serde_json::{Value, json};
use zimmer_testkit::{TestApp, TestContext, assert_db_count, binary_path, db_count, str_at};

/// The claims of an access token (the signature is auth's business; here only the content).
fn claims(access: &str) -> Value {
    let payload = access.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

/// Moves every sign-in of a user `minutes` into the past, as if the session were that old.
async fn age_sessions(ctx: &TestContext, user_id: i64, minutes: i64) {
    let mut conn = ctx.db.connect().await;
    diesel::sql_query(format!(
        "UPDATE sessions SET created_at = created_at - interval '{minutes} minutes' \
         WHERE user_id = {user_id}"
    ))
    .execute(&mut conn)
    .await
    .unwrap();
}

async fn post(app: &TestApp, path: &str, access: &str, body: Option<Value>) -> (StatusCode, Value) {
    let req = app.post(path).bearer_auth(access);
    let req = match body {
        Some(b) => req.json(&b),
        None => req,
    };
    req.json_of().await
}

/// [`post`] that must answer `expected`; the body.
async fn post_expecting(
    app: &TestApp,
    path: &str,
    access: &str,
    body: Option<Value>,
    expected: StatusCode,
) -> Value {
    let (status, v) = post(app, path, access, body).await;
    assert_eq!(status, expected, "POST {path}: {v}");
    v
}

fn assert_reauth_required(status: StatusCode, body: &Value) {
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["code"], "reauth_required", "{body}");
    assert!(str_at(body, "detail").contains("sign in again"), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_session_cannot_set_up_two_factor_without_the_password() {
    let (ctx, app) = auth().await;
    let r = register(&app, "stale@example.com", PASSWORD).await;
    age_sessions(&ctx, r.user_id, 11).await;

    // A token alone (a thief's, say) cannot start binding an authenticator.
    let (st, body) = post(&app, "/api/auth/2fa/initiate", &r.access, None).await;
    assert_reauth_required(st, &body);
    post_expecting(
        &app,
        "/api/auth/2fa/initiate",
        &r.access,
        Some(json!({ "password": "not the password at all" })),
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    // With the password it goes ahead.
    let init = post_expecting(
        &app,
        "/api/auth/2fa/initiate",
        &r.access,
        Some(json!({ "password": PASSWORD })),
        StatusCode::OK,
    )
    .await;
    let secret = str_at(&init, "secret").to_owned();

    // Activation is held to the same rule: the code of the new secret is no proof.
    let code = totp_code(&secret, now_unix());
    let (st, body) = post(
        &app,
        "/api/auth/2fa/activate",
        &r.access,
        Some(json!({ "otp_code": code })),
    )
    .await;
    assert_reauth_required(st, &body);
    let body = post_expecting(
        &app,
        "/api/auth/2fa/activate",
        &r.access,
        Some(json!({ "otp_code": code, "password": PASSWORD })),
        StatusCode::OK,
    )
    .await;
    assert_eq!(body["recovery_codes"].as_array().unwrap().len(), 10);

    // Regenerate and disable carry a current code (or the password): proof enough at any age.
    post_expecting(
        &app,
        "/api/auth/2fa/recovery-codes/regenerate",
        &r.access,
        None,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    post_expecting(
        &app,
        "/api/auth/2fa/recovery-codes/regenerate",
        &r.access,
        Some(json!({ "otp_code": totp_code(&secret, now_unix() + 30) })),
        StatusCode::OK,
    )
    .await;
    post_expecting(
        &app,
        "/api/auth/2fa/disable",
        &r.access,
        Some(json!({ "otp_code": totp_code(&secret, now_unix() - 30) })),
        StatusCode::OK,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_keeps_the_sign_in_time_and_a_fresh_login_keeps_the_panel_flow() {
    let (ctx, app) = auth().await;
    let r = register(&app, "refresh-age@example.com", PASSWORD).await;
    let first = claims(&r.access);
    let signed_in = first["auth_time"].as_i64().expect("auth_time claim");
    assert!(
        (first["iat"].as_i64().unwrap() - signed_in).abs() <= 5,
        "{first}"
    );

    age_sessions(&ctx, r.user_id, 11).await;
    let res = refresh_with_cookie(&app, &r.refresh).await;
    assert_eq!(res.status(), StatusCode::OK);
    let refreshed: Value = res.json().await.unwrap();
    let access = str_at(&refreshed, "access_token");
    // A refresh is not a sign-in: the token says when the session's sign-in was.
    let after = claims(access);
    assert_eq!(after["sid"], first["sid"]);
    let kept = after["auth_time"].as_i64().unwrap();
    assert!((signed_in - 660 - kept).abs() <= 1, "{kept} vs {signed_in}");
    let (st, body) = post(&app, "/api/auth/2fa/initiate", access, None).await;
    assert_reauth_required(st, &body);

    // The panel right after a login: initiate with no body, activate with {otp_code}.
    let fresh = login_access(&app, "refresh-age@example.com", PASSWORD).await;
    let (secret, codes) = enable_2fa(&app, &fresh).await;
    assert!(!secret.is_empty());
    assert_eq!(codes.len(), 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn turning_two_factor_on_and_off_signs_out_other_sessions_and_mails_the_owner() {
    let (ctx, app, mail) = auth_with(&[]).await;
    let email = "onoff@example.com";
    let r = register(&app, email, PASSWORD).await;
    let other = login_access(&app, email, PASSWORD).await;
    let other_sid = claims(&other)["sid"].as_str().unwrap().to_owned();

    let (secret, _) = enable_2fa(&app, &r.access).await;
    assert_eq!(me_status(&app, &other).await, StatusCode::UNAUTHORIZED);
    assert_eq!(me_status(&app, &r.access).await, StatusCode::OK);
    assert_db_count(
        &ctx,
        &format!(
            "SELECT count(*) AS n FROM outbox WHERE event_type = 'session.revoked' \
             AND payload->'data'->>'session_id' = '{other_sid}'"
        ),
        1,
    )
    .await;
    let on = mail.wait_for(email, 1).await;
    assert!(str_at(&on, "subject").contains("فعال شد"), "{on}");
    assert!(str_at(&on, "text").contains("خارج شدید"), "{on}");

    // A new device signs in with a code; turning 2FA off from the first one ends it.
    let challenge = login_challenge(&app, email, PASSWORD).await;
    let (st, body) = json_of(
        app.post_json(
            "/api/auth/2fa/verify",
            &json!({ "challenge_token": challenge, "otp_code": totp_code(&secret, now_unix() + 30) }),
        )
        .await,
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{body}");
    let third = str_at(&body, "access_token").to_owned();
    post_expecting(
        &app,
        "/api/auth/2fa/disable",
        &r.access,
        Some(json!({ "password": PASSWORD })),
        StatusCode::OK,
    )
    .await;
    assert_eq!(me_status(&app, &third).await, StatusCode::UNAUTHORIZED);
    assert_eq!(me_status(&app, &r.access).await, StatusCode::OK);
    let off = mail.wait_for(email, 2).await;
    assert!(str_at(&off, "subject").contains("غیرفعال"), "{off}");
    assert_db_count(
        &ctx,
        "SELECT count(*) AS n FROM sessions WHERE revoked_reason IN ('twofa_enabled', 'twofa_disabled')",
        2,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_width_look_alike_is_the_same_account_and_other_alphabets_are_refused() {
    let (ctx, app) = auth().await;
    let r = register(&app, "case@example.com", PASSWORD).await;

    // Full-width ｃ (U+FF43) is NFKC-equal to c: the same address, so a duplicate.
    let (st, body) = register_json(
        &app,
        json!({ "name": "Twin", "email": "ｃase@example.com", "password": PASSWORD }),
    )
    .await;
    assert_eq!(st, StatusCode::CONFLICT, "{body}");
    // And it signs in to the one account.
    let (st, body) = json_of(login(&app, "ｃａｓｅ@example.com", PASSWORD).await).await;
    assert_eq!(st, StatusCode::OK, "{body}");
    assert_eq!(body["user"]["id"], r.user_id);

    // Cyrillic а (U+0430) has no ASCII form: refused, saying why.
    let (st, body) = register_json(
        &app,
        json!({ "name": "Twin", "email": "cаse@example.com", "password": PASSWORD }),
    )
    .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["errors"][0]["field"], "email", "{body}");
    assert!(str_at(&body, "detail").contains("Latin letters"), "{body}");
    assert_eq!(
        db_count(&ctx, "SELECT count(*) AS n FROM users").await,
        1,
        "one account only"
    );
}

/// Fires `n` wrong passwords at once, each from `ip(i)`; returns how many were verified
/// (401) and how many were refused before verification (429).
async fn parallel_guesses(
    app: &TestApp,
    email: &str,
    n: usize,
    ip: impl Fn(usize) -> String,
) -> (usize, usize) {
    let guesses = (0..n).map(|i| {
        app.post("/api/auth/login")
            .header("X-Real-IP", ip(i))
            .json(&json!({ "email": email, "password": format!("wrong guess {i}") }))
            .send()
    });
    let statuses: Vec<StatusCode> = futures_util::future::join_all(guesses)
        .await
        .into_iter()
        .map(|r| r.unwrap().status())
        .collect();
    let verified = statuses
        .iter()
        .filter(|s| **s == StatusCode::UNAUTHORIZED)
        .count();
    let refused = statuses
        .iter()
        .filter(|s| **s == StatusCode::TOO_MANY_REQUESTS)
        .count();
    assert_eq!(verified + refused, n, "{statuses:?}");
    (verified, refused)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_wrong_passwords_get_no_more_guesses_than_the_limit() {
    let (_ctx, app, _mail) = auth_with(&[
        ("THROTTLE_LOGIN_PAIR_FAILURES", "3/900"),
        ("THROTTLE_LOGIN_ACCOUNT_FAILURES", "5/900"),
    ])
    .await;
    register(&app, "parallel@example.com", PASSWORD).await;
    register(&app, "spread-out@example.com", PASSWORD).await;

    // One address: at most 3 passwords are checked, then the pair is locked.
    let (verified, refused) =
        parallel_guesses(&app, "parallel@example.com", 12, |_| "203.0.113.50".into()).await;
    assert!(verified <= 3, "{verified} guesses verified, limit 3");
    assert!(refused >= 9);
    app.post("/api/auth/login")
        .header("X-Real-IP", "203.0.113.50")
        .json(&json!({ "email": "parallel@example.com", "password": PASSWORD }))
        .expect_status(StatusCode::TOO_MANY_REQUESTS)
        .await;

    // Many addresses at once: the account-wide limit holds the same way.
    let (verified, _) = parallel_guesses(&app, "spread-out@example.com", 12, |i| {
        format!("198.51.100.{}", 10 + i)
    })
    .await;
    assert!(verified <= 5, "{verified} guesses verified, limit 5");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_right_password_gives_its_attempt_back() {
    let (_ctx, app, _mail) = auth_with(&[("THROTTLE_LOGIN_ACCOUNT_FAILURES", "3/900")]).await;
    register(&app, "owner@example.com", PASSWORD).await;
    // The owner signs in often: counted first, refunded on success, never a lock.
    for i in 0..6 {
        assert_eq!(
            app.post("/api/auth/login")
                .header("X-Real-IP", format!("192.0.2.{}", 100 + i))
                .json(&json!({ "email": "owner@example.com", "password": PASSWORD }))
                .status()
                .await,
            StatusCode::OK,
            "sign-in {i}"
        );
    }
}

fn seed_demo(ctx: &TestContext, extra: &[(&str, &str)]) -> std::process::Output {
    let mut cmd = Command::new(binary_path("zimmer-auth"));
    cmd.arg("seed-demo")
        .env_clear()
        .envs(ctx.env_pairs())
        .env("APP_ENV", "production")
        .env("INTERNAL_API_TOKEN", "a-real-internal-token");
    for (k, v) in extra {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

async fn managers(ctx: &TestContext) -> i64 {
    db_count(
        ctx,
        "SELECT count(*) AS n FROM users WHERE email = 'manager@zimmer.local' AND role = 'manager'",
    )
    .await
}

/// Needs the binary: `cargo build -p zimmer-auth --bins`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_demo_in_production_needs_an_explicit_password_and_never_prints_it() {
    let ctx = TestContext::new().await;
    let out = seed_demo(&ctx, &[]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("DEMO_MANAGER_PASSWORD"), "{stderr}");
    assert_eq!(managers(&ctx).await, 0);

    // The published demo password, even when given explicitly, is no password there.
    let out = seed_demo(&ctx, &[("DEMO_MANAGER_PASSWORD", "Zimmer-demo-2026!")]);
    assert!(!out.status.success());
    assert_eq!(managers(&ctx).await, 0);

    let secret = "a-private-Manager-pass-8841";
    let out = seed_demo(&ctx, &[("DEMO_MANAGER_PASSWORD", secret)]);
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{printed}");
    assert!(printed.contains("manager@zimmer.local"), "{printed}");
    assert!(
        !printed.contains(secret),
        "the password was printed: {printed}"
    );
    assert_eq!(managers(&ctx).await, 1);

    // And it is the manager's password.
    let mail = zimmer_testkit::TempDir::new("zimmer-mail");
    let dir = mail.path.to_string_lossy().into_owned();
    let app = ctx
        .spawn(
            ctx.settings("auth", &[("MAIL_SINK_DIR", dir.as_str())]),
            zimmer_auth::build,
        )
        .await;
    let (st, body) = json_of(login(&app, "manager@zimmer.local", secret).await).await;
    assert_eq!(st, StatusCode::OK, "{body}");
    assert_eq!(body["user"]["role"], "manager");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn production_refuses_to_start_without_smtp() {
    let ctx = TestContext::new().await;
    let key = base64::engine::general_purpose::STANDARD.encode([5u8; 32]);
    let production = [
        ("APP_ENV", "production"),
        ("INTERNAL_API_TOKEN", "a-real-internal-token"),
        ("TWOFA_ENCRYPTION_KEY", key.as_str()),
    ];
    let err = zimmer_auth::build(ctx.settings("auth", &production))
        .await
        .err()
        .expect("auth must not start in production without SMTP_URL");
    let err = format!("{err:#}");
    assert!(err.contains("SMTP_URL must be set in production"), "{err}");

    // With SMTP configured the mailer is fine (nothing connects until a mail is sent).
    let mut with_smtp = production.to_vec();
    with_smtp.push(("SMTP_URL", "smtp://127.0.0.1:2525"));
    let settings = ctx.settings("auth", &with_smtp);
    assert!(zimmer_auth::clients::mail::Mailer::from_settings(&settings).is_ok());
}
