//! TOTP two-factor authentication end to end: setup, login challenge, single-use codes,
//! recovery codes, disable/regenerate, and what happens when Redis is away.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use common::*;
use reqwest::StatusCode;
use serde_json::{Value, json};
use zimmer_testkit::{TestApp, ToggleProxy, assert_db_count, db_count, str_at};

async fn verify(app: &TestApp, body: Value) -> (StatusCode, Value) {
    json_of(app.post_json("/api/auth/2fa/verify", &body).await).await
}

/// A bodiless `POST /api/auth/2fa/{step}` (no code): 422 with a `detail` naming `field`.
async fn refused_without_a_code(app: &TestApp, access: &str, step: &str, field: &str) {
    let body = app
        .post(&format!("/api/auth/2fa/{step}"))
        .bearer_auth(access)
        .json_expecting(StatusCode::UNPROCESSABLE_ENTITY)
        .await;
    assert!(str_at(&body, "detail").contains(field), "{step}: {body}");
}

async fn status(app: &TestApp, access: &str) -> Value {
    app.get("/api/auth/2fa/status")
        .bearer_auth(access)
        .json_body()
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn setup_stores_the_secret_encrypted_and_gives_ten_hashed_recovery_codes() {
    let (ctx, app) = auth().await;
    let r = register(&app, "setup@example.com", PASSWORD).await;
    assert_eq!(status(&app, &r.access).await["enabled"], false);

    let init = app
        .post("/api/auth/2fa/initiate")
        .bearer_auth(&r.access)
        .json_expecting(StatusCode::OK)
        .await;
    let secret = str_at(&init, "secret").to_owned();
    let uri = str_at(&init, "otpauth_uri");
    assert!(
        uri.starts_with("otpauth://totp/Zimmer:setup%40example.com?"),
        "{uri}"
    );
    assert!(uri.contains(&format!("secret={secret}")), "{uri}");
    assert_eq!(status(&app, &r.access).await["pending"], true);

    // At rest: AES-GCM ciphertext (12-byte nonce + 20-byte secret + 16-byte tag), not the
    // secret itself.
    let raw = totp_rs::Secret::try_from_base32(&secret).unwrap();
    let hex: String = raw.as_bytes().iter().map(|b| format!("{b:02x}")).collect();
    assert_db_count(
        &ctx,
        &format!(
            "SELECT count(*) AS n FROM users WHERE length(twofa_secret) = 48 \
             AND position(decode('{hex}', 'hex') in twofa_secret) = 0 AND NOT twofa_enabled"
        ),
        1,
    )
    .await;

    // Activation needs a code, and the right one.
    refused_without_a_code(&app, &r.access, "activate", "code").await;
    let now = now_unix();
    let wrong = totp_code(&secret, now + 300);
    app.post("/api/auth/2fa/activate")
        .bearer_auth(&r.access)
        .json(&json!({ "otp_code": wrong }))
        .json_expecting(StatusCode::UNPROCESSABLE_ENTITY)
        .await;
    let body = app
        .post("/api/auth/2fa/activate")
        .bearer_auth(&r.access)
        .json(&json!({ "otp_code": totp_code(&secret, now) }))
        .json_expecting(StatusCode::OK)
        .await;
    let codes = recovery_codes(&body["recovery_codes"]);
    assert_eq!(codes.len(), 10);
    let s = status(&app, &r.access).await;
    assert_eq!(s["enabled"], true);
    assert_eq!(s["recovery_codes_remaining"], 10);
    // Stored as 32-byte keyed hashes, never as typed.
    assert_db_count(
        &ctx,
        "SELECT count(*) AS n FROM twofa_recovery_codes WHERE length(code_hash) = 32 AND used_at IS NULL",
        10,
    )
    .await;
    for c in &codes {
        let n = db_count(&ctx, &format!(
                "SELECT count(*) AS n FROM twofa_recovery_codes WHERE position(convert_to('{}', 'UTF8') in code_hash) > 0",
                &c[..5]
            ),
        )
        .await;
        assert_eq!(n, 0);
    }
    // A second initiate while on is refused: the secret cannot be swapped silently.
    app.post("/api/auth/2fa/initiate")
        .bearer_auth(&r.access)
        .expect_status(StatusCode::CONFLICT)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_with_2fa_answers_a_challenge_and_a_code_works_once() {
    let (_ctx, app) = auth().await;
    let r = register(&app, "otp@example.com", PASSWORD).await;
    let (secret, _codes) = enable_2fa(&app, &r.access).await;
    // `me` says so.
    let me: Value = app.get("/api/me").bearer_auth(&r.access).json_body().await;
    assert_eq!(me["twofa_enabled"], true);

    let challenge = login_challenge(&app, "otp@example.com", PASSWORD).await;
    // A wrong password still says nothing about 2FA.
    let (st, body) = json_of(login(&app, "otp@example.com", "wrong password!").await).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    assert!(body.get("otp_required").is_none());

    // Missing code: 422; wrong code: 401; a made-up challenge: 401.
    let (st, _) = verify(&app, json!({ "challenge_token": challenge })).await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY);
    let wrong = totp_code(&secret, now_unix() + 600);
    let (st, body) = verify(
        &app,
        json!({ "challenge_token": challenge, "otp_code": wrong }),
    )
    .await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    assert_eq!(body["code"], "invalid_otp");
    let (st, body) = verify(
        &app,
        json!({ "challenge_token": format!("{challenge}x"), "otp_code": wrong }),
    )
    .await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    assert_eq!(body["code"], "invalid_challenge");

    // The next step's code (activation used the current one) logs in, with the login shape.
    let code = totp_code(&secret, now_unix() + 30);
    let (st, body) = verify(
        &app,
        json!({ "challenge_token": challenge, "otp_code": code }),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{body}");
    assert_eq!(body["token_type"], "bearer");
    assert_eq!(body["user"]["email"], "otp@example.com");
    assert_eq!(body["user"]["twofa_enabled"], true);
    let access = str_at(&body, "access_token");
    assert_eq!(me_status(&app, access).await, StatusCode::OK);

    // The same challenge cannot be used again, and the same code not on a new challenge.
    let (st, _) = verify(
        &app,
        json!({ "challenge_token": challenge, "otp_code": code }),
    )
    .await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    let again = login_challenge(&app, "otp@example.com", PASSWORD).await;
    let (st, body) = verify(&app, json!({ "challenge_token": again, "otp_code": code })).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    assert_eq!(body["code"], "otp_replayed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recovery_codes_are_single_use_and_regenerate_replaces_them() {
    let (_ctx, app) = auth().await;
    let r = register(&app, "rec@example.com", PASSWORD).await;
    let (secret, codes) = enable_2fa(&app, &r.access).await;

    let c1 = login_challenge(&app, "rec@example.com", PASSWORD).await;
    // Case and dashes do not matter.
    let typed = codes[0].to_uppercase().replace('-', " ");
    let (st, body) = verify(
        &app,
        json!({ "challenge_token": c1, "recovery_code": typed }),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{body}");
    assert!(body["access_token"].is_string());
    let s = status(&app, &r.access).await;
    assert_eq!(s["recovery_codes_remaining"], 9);

    let c2 = login_challenge(&app, "rec@example.com", PASSWORD).await;
    let (st, body) = verify(
        &app,
        json!({ "challenge_token": c2, "recovery_code": codes[0] }),
    )
    .await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    assert_eq!(body["code"], "invalid_recovery_code");
    // A mistyped code does not burn the challenge.
    let (st, _) = verify(
        &app,
        json!({ "challenge_token": c2, "recovery_code": codes[1] }),
    )
    .await;
    assert_eq!(st, StatusCode::OK);

    // Regenerate needs a code (the panel sends none: 422 with a detail).
    refused_without_a_code(&app, &r.access, "recovery-codes/regenerate", "otp_code").await;
    let body = app
        .post("/api/auth/2fa/recovery-codes/regenerate")
        .bearer_auth(&r.access)
        .json(&json!({ "otp_code": totp_code(&secret, now_unix() + 30) }))
        .json_expecting(StatusCode::OK)
        .await;
    assert_eq!(body["codes"], body["recovery_codes"]);
    let fresh = recovery_codes(&body["codes"]);
    assert_eq!(fresh.len(), 10);
    assert_eq!(
        status(&app, &r.access).await["recovery_codes_remaining"],
        10
    );
    let c3 = login_challenge(&app, "rec@example.com", PASSWORD).await;
    let (st, _) = verify(
        &app,
        json!({ "challenge_token": c3, "recovery_code": codes[2] }),
    )
    .await;
    assert_eq!(st, StatusCode::UNAUTHORIZED, "old codes stop working");
    let (st, _) = verify(
        &app,
        json!({ "challenge_token": c3, "recovery_code": fresh[0] }),
    )
    .await;
    assert_eq!(st, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disable_needs_a_code_or_the_password() {
    let (_ctx, app) = auth().await;
    let r = register(&app, "off@example.com", PASSWORD).await;
    let (_secret, _) = enable_2fa(&app, &r.access).await;
    let disable = |body: Option<Value>| {
        let mut req = app.post("/api/auth/2fa/disable").bearer_auth(&r.access);
        if let Some(b) = body {
            req = req.json(&b);
        }
        req.send()
    };
    let (st, body) = json_of(disable(None).await.unwrap()).await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(str_at(&body, "detail").contains("password"), "{body}");
    let (st, body) = json_of(
        disable(Some(json!({ "password": "not my password" })))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["code"], "wrong_password");
    let (st, body) = json_of(
        disable(Some(json!({ "otp_code": "000000x" })))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(status(&app, &r.access).await["enabled"], true);

    let (st, body) = json_of(
        disable(Some(json!({ "password": PASSWORD })))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{body}");
    assert_eq!(status(&app, &r.access).await["enabled"], false);
    // Login gives tokens directly again.
    let (st, body) = json_of(login(&app, "off@example.com", PASSWORD).await).await;
    assert_eq!(st, StatusCode::OK);
    assert!(body["access_token"].is_string());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn code_guessing_is_limited_per_account() {
    let (_ctx, app, _mail) = auth_with(&[("THROTTLE_OTP_ACCOUNT", "3/300")]).await;
    let r = register(&app, "guess@example.com", PASSWORD).await;
    let (secret, codes) = enable_2fa(&app, &r.access).await;
    let challenge = login_challenge(&app, "guess@example.com", PASSWORD).await;
    // activation counted one attempt; two wrong guesses reach the limit of three.
    let wrong = totp_code(&secret, now_unix() + 900);
    for _ in 0..2 {
        let (st, _) = verify(
            &app,
            json!({ "challenge_token": challenge, "otp_code": wrong }),
        )
        .await;
        assert_eq!(st, StatusCode::UNAUTHORIZED);
    }
    let res = app
        .post_json(
            "/api/auth/2fa/verify",
            &json!({ "challenge_token": challenge, "otp_code": totp_code(&secret, now_unix() + 30) }),
        )
        .await;
    assert_eq!(
        res.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "even the right code waits"
    );
    assert!(res.headers().contains_key("retry-after"));
    // The owner still gets in with a recovery code.
    let (st, body) = verify(
        &app,
        json!({ "challenge_token": challenge, "recovery_code": codes[0] }),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_redis_totp_fails_closed_while_passwords_and_recovery_codes_work() {
    let ctx = zimmer_testkit::TestContext::new().await;
    let proxy = ToggleProxy::start("127.0.0.1:6379", true).await;
    let redis_url = format!("redis://127.0.0.1:{}", proxy.port);
    let mail = zimmer_testkit::TempDir::new("zimmer-mail");
    let app = ctx
        .spawn(
            ctx.settings(
                "auth",
                &[
                    ("REDIS_URL", redis_url.as_str()),
                    ("MAIL_SINK_DIR", mail.path.to_string_lossy().as_ref()),
                ],
            ),
            zimmer_auth::build,
        )
        .await;
    let r = register(&app, "outage@example.com", PASSWORD).await;
    let (secret, codes) = enable_2fa(&app, &r.access).await;
    register(&app, "plain@example.com", PASSWORD).await;

    proxy.disable();
    // Password login: throttling fails open.
    let (st, body) = json_of(login(&app, "plain@example.com", PASSWORD).await).await;
    assert_eq!(st, StatusCode::OK, "{body}");
    // TOTP: no attempt limit and no replay guard without Redis, so 503.
    let challenge = login_challenge(&app, "outage@example.com", PASSWORD).await;
    let (st, body) = verify(
        &app,
        json!({ "challenge_token": challenge, "otp_code": totp_code(&secret, now_unix() + 30) }),
    )
    .await;
    assert_eq!(st, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert!(str_at(&body, "detail").contains("recovery code"));
    // A recovery code still works: its single use lives in the database.
    let (st, body) = verify(
        &app,
        json!({ "challenge_token": challenge, "recovery_code": codes[3] }),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{body}");

    proxy.enable();
    let challenge = login_challenge(&app, "outage@example.com", PASSWORD).await;
    zimmer_testkit::eventually("TOTP works again", std::time::Duration::from_secs(10), || async {
        verify(
            &app,
            json!({ "challenge_token": challenge, "otp_code": totp_code(&secret, now_unix() + 30) }),
        )
        .await
        .0 == StatusCode::OK
    })
    .await;
}
