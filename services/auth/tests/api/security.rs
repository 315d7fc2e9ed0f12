//! The attacks, run for real. Forged/none/HS-RS-confused/expired/wrong-audience tokens are in
//! tokens.rs; this file adds the header tricks and claim gaps those leave out, then refresh
//! reuse, OTP replay, account enumeration by timing, and SQL injection in every text field.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::time::{Duration, Instant};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use chrono::Utc;
use common::*;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::StatusCode;
use serde_json::{Value, json};
use uuid::Uuid;
use zimmer_config::DEV_INTERNAL_TOKEN;
use zimmer_jwt::Role;
use zimmer_testkit::{assert_db_count, db_count, str_at};

fn b64(v: &Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap())
}

fn claims_json(user_id: i64, sid: Uuid) -> Value {
    let now = Utc::now().timestamp();
    json!({
        "sub": user_id.to_string(), "role": "customer", "sid": sid, "jti": Uuid::new_v4(),
        "iat": now, "exp": now + 600, "iss": "zimmer-auth", "aud": "zimmer",
    })
}

/// Signs arbitrary claims and header fields with an Ed25519 PEM.
fn sign_raw(pem: &str, header: Header, claims: &Value) -> String {
    jsonwebtoken::encode(
        &header,
        claims,
        &EncodingKey::from_ed_pem(pem.as_bytes()).unwrap(),
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn header_tricks_and_claim_gaps_are_rejected_everywhere() {
    let (ctx, auth, market) = auth_and_market().await;
    let r = register(&auth, "target@example.com", PASSWORD).await;
    let sid = Uuid::new_v4();
    let kid = ctx.signer.jwk().kid.clone();
    let real = |claims: &Value| {
        let mut h = Header::new(Algorithm::EdDSA);
        h.kid = Some(kid.clone());
        sign_raw(&ctx.key_pem, h, claims)
    };
    let good = real(&claims_json(r.user_id, sid));
    let parts: Vec<String> = good.split('.').map(str::to_owned).collect();

    let attacker_pem = zimmer_jwt::generate_ed25519_pem().unwrap();
    let attacker_jwk = zimmer_jwt::public_jwk_from_pem(&attacker_pem).unwrap();
    // The attacker's key embedded in the header (`jwk`) or linked (`jku`): must be ignored.
    let embedded = {
        let mut h = Header::new(Algorithm::EdDSA);
        h.kid = Some(kid.clone());
        h.jku = Some("http://127.0.0.1:9/jwks.json".into());
        h.jwk = Some(serde_json::from_value(serde_json::to_value(&attacker_jwk).unwrap()).unwrap());
        sign_raw(&attacker_pem, h, &claims_json(r.user_id, sid))
    };
    let alg_variants: Vec<(String, String)> = ["None", "NONE", "nOnE"]
        .into_iter()
        .map(|alg| {
            (
                format!("alg {alg}"),
                format!(
                    "{}.{}.",
                    b64(&json!({ "alg": alg, "typ": "JWT", "kid": kid })),
                    parts[1]
                ),
            )
        })
        .collect();
    let stripped = format!("{}.{}.", parts[0], parts[1]);
    let es256_header = format!(
        "{}.{}.{}",
        b64(&json!({ "alg": "ES256", "typ": "JWT", "kid": kid })),
        parts[1],
        parts[2]
    );
    let without = |field: &str| {
        let mut c = claims_json(r.user_id, sid);
        c.as_object_mut().unwrap().remove(field);
        real(&c)
    };
    let with = |field: &str, value: Value| {
        let mut c = claims_json(r.user_id, sid);
        c[field] = value;
        real(&c)
    };

    let mut cases = vec![
        ("attacker key in jwk/jku header".to_owned(), embedded),
        ("signature stripped".to_owned(), stripped),
        (
            "ES256 header on an EdDSA signature".to_owned(),
            es256_header,
        ),
        ("no exp".to_owned(), without("exp")),
        ("no aud".to_owned(), without("aud")),
        ("no iss".to_owned(), without("iss")),
        ("no sub".to_owned(), without("sub")),
        ("no sid".to_owned(), without("sid")),
        (
            "aud as a list of others".to_owned(),
            with("aud", json!(["a", "b"])),
        ),
        ("non-numeric sub".to_owned(), with("sub", json!("1 OR 1=1"))),
        ("unknown role".to_owned(), with("role", json!("superadmin"))),
        (
            "expired a day ago".to_owned(),
            with("exp", json!(Utc::now().timestamp() - 86_400)),
        ),
        ("unknown kid".to_owned(), {
            let mut h = Header::new(Algorithm::EdDSA);
            h.kid = Some("no-such-key".into());
            sign_raw(&attacker_pem, h, &claims_json(r.user_id, sid))
        }),
        ("two dots of nothing".to_owned(), "..".to_owned()),
        ("huge garbage".to_owned(), "a".repeat(6000)),
    ];
    cases.extend(alg_variants);
    for (what, token) in &cases {
        assert_eq!(
            me_status(&auth, token).await,
            StatusCode::UNAUTHORIZED,
            "auth accepted: {what}"
        );
        assert_eq!(
            market_status(&market, token).await,
            StatusCode::UNAUTHORIZED,
            "marketplace accepted: {what}"
        );
    }
    // Other schemes are not a Bearer.
    auth.get("/api/me")
        .header("Authorization", format!("Basic {good}"))
        .expect_status(StatusCode::UNAUTHORIZED)
        .await;
    // The control: the well-formed token of the real key works in both.
    assert_eq!(me_status(&auth, &good).await, StatusCode::OK);
    assert_eq!(market_status(&market, &good).await, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stolen_refresh_token_replayed_after_rotation_kills_the_session_everywhere() {
    let (ctx, auth, market) = auth_and_market().await;
    let r = register(&auth, "stolen@example.com", PASSWORD).await;
    let stolen = r.refresh.clone();

    // The victim's client rotates first.
    let res = refresh_with_cookie(&auth, &r.refresh).await;
    assert_eq!(res.status(), StatusCode::OK);
    let victim_refresh = refresh_cookie(&res).unwrap();
    let victim_access = res.json::<Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    zimmer_testkit::eventually(
        "marketplace serves the victim",
        Duration::from_secs(10),
        || async { market_status(&market, &victim_access).await == StatusCode::OK },
    )
    .await;

    // The thief replays the old token (as a native client, in the body).
    let (st, body) = json_of(
        auth.post_json("/api/auth/refresh", &json!({ "refresh_token": stolen }))
            .await,
    )
    .await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    assert_eq!(body["code"], "refresh_reuse");
    // The whole family is dead: neither token refreshes, the session's access tokens are
    // rejected by auth and, through the event, by marketplace.
    assert_eq!(
        refresh_with_cookie(&auth, &victim_refresh).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        me_status(&auth, &victim_access).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(me_status(&auth, &r.access).await, StatusCode::UNAUTHORIZED);
    zimmer_testkit::eventually(
        "marketplace rejects the session",
        Duration::from_secs(5),
        || async { market_status(&market, &victim_access).await == StatusCode::UNAUTHORIZED },
    )
    .await;
    assert_db_count(
        &ctx,
        "SELECT count(*) AS n FROM sessions WHERE revoked_reason = 'refresh_token_reuse'",
        1,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_totp_code_is_accepted_once_even_across_flows() {
    let (_ctx, app) = auth().await;
    let r = register(&app, "replay@example.com", PASSWORD).await;
    let now = now_unix();
    // Activation with the current code...
    let init: Value = app
        .post("/api/auth/2fa/initiate")
        .bearer_auth(&r.access)
        .json_body()
        .await;
    let secret = str_at(&init, "secret").to_owned();
    let code = totp_code(&secret, now);
    app.post("/api/auth/2fa/activate")
        .bearer_auth(&r.access)
        .json(&json!({ "otp_code": code }))
        .expect_status(StatusCode::OK)
        .await;
    // ...cannot then be used to log in (someone watching the screen).
    let challenge = login_challenge(&app, "replay@example.com", PASSWORD).await;
    let (st, body) = json_of(
        app.post_json(
            "/api/auth/2fa/verify",
            &json!({ "challenge_token": challenge, "otp_code": code }),
        )
        .await,
    )
    .await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    assert_eq!(body["code"], "otp_replayed");
    // A fresh code logs in; replaying it on a second challenge fails, even concurrently.
    let next = totp_code(&secret, now + 30);
    let c1 = login_challenge(&app, "replay@example.com", PASSWORD).await;
    let c2 = login_challenge(&app, "replay@example.com", PASSWORD).await;
    let b1 = json!({ "challenge_token": c1, "otp_code": next });
    let b2 = json!({ "challenge_token": c2, "otp_code": next });
    let (a, b) = tokio::join!(
        app.post_json("/api/auth/2fa/verify", &b1),
        app.post_json("/api/auth/2fa/verify", &b2),
    );
    let mut statuses = [a.status(), b.status()];
    statuses.sort();
    assert_eq!(statuses, [StatusCode::OK, StatusCode::UNAUTHORIZED]);
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_and_known_emails_take_comparable_time_to_refuse() {
    // Limits out of the way: this measures the password check, not the throttle.
    let (_ctx, app, _mail) = auth_with(&[
        ("THROTTLE_LOGIN_IP", "1000/60"),
        ("THROTTLE_LOGIN_PAIR_FAILURES", "1000/60"),
        ("THROTTLE_LOGIN_ACCOUNT_FAILURES", "1000/60"),
    ])
    .await;
    register(&app, "exists@example.com", PASSWORD).await;
    // Warm up (the dummy hash is made on first use; connections open).
    login(&app, "nobody@example.com", "warm up password").await;
    login(&app, "exists@example.com", "warm up password").await;
    let (mut known, mut unknown) = (Vec::new(), Vec::new());
    // Interleaved, so load on the machine hits both sides alike.
    for i in 0..9 {
        for (email, out) in [
            ("exists@example.com", &mut known),
            ("nobody@example.com", &mut unknown),
        ] {
            let started = Instant::now();
            let res = login(&app, email, &format!("wrong password {i}")).await;
            out.push(started.elapsed());
            assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
        }
    }
    let (k, u) = (median(known), median(unknown));
    eprintln!("median refusal: known email {k:?}, unknown email {u:?}");
    let (fast, slow) = if k < u { (k, u) } else { (u, k) };
    // Without the dummy hash an unknown email answers in ~1 ms against tens of ms for a
    // real argon2 verify; a factor of 3 is generous for a loaded 2-core machine.
    assert!(
        slow < fast * 3,
        "timing reveals which emails exist: known {k:?} vs unknown {u:?}"
    );
}

const INJECTIONS: [&str; 8] = [
    "' OR '1'='1",
    "'; DROP TABLE users; --",
    "\" OR \"\"=\"",
    "1; SELECT pg_sleep(5)--",
    "admin'--",
    "%' OR 1=1 --",
    "$1) OR (1=1",
    "Robert'); DELETE FROM sessions;--",
];

fn assert_handled(what: &str, status: StatusCode, body: &Value) {
    assert!(!status.is_server_error(), "{what}: {status} {body}");
    if !status.is_success() {
        assert!(body["detail"].is_string(), "{what}: {body}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sql_injection_in_every_text_field_is_just_text() {
    let (ctx, app, _mail) = auth_with(&[
        ("THROTTLE_LOGIN_IP", "1000/60"),
        ("THROTTLE_LOGIN_PAIR_FAILURES", "1000/60"),
        ("THROTTLE_FORGOT_IP", "1000/60"),
        ("THROTTLE_TWOFA_IP", "1000/60"),
    ])
    .await;
    let manager = ctx.create_user("boss@example.com", Role::Manager).await;
    // Admin acts for the manager with the manager's own token.
    let acting = format!(
        "Bearer {}",
        ctx.mint_access_token(manager, Role::Manager, Uuid::new_v4())
    );
    let r = register(&app, "victim@example.com", PASSWORD).await;
    let users_before = db_count(&ctx, "SELECT count(*) AS n FROM users").await;

    for (i, evil) in INJECTIONS.iter().enumerate() {
        // Accepted where the rules allow it, and stored verbatim: a name.
        let name = format!("{evil} {i}");
        let email = format!("x{i}'or'1'='1@example.com");
        let password = format!("{evil} long enough");
        let (st, body) = register_json(
            &app,
            json!({ "name": name, "email": email, "password": password, "phone_number": evil }),
        )
        .await;
        assert_handled("register with a bad phone", st, &body);
        assert_eq!(
            st,
            StatusCode::UNPROCESSABLE_ENTITY,
            "the phone is not a number"
        );
        let (st, body) = register_json(
            &app,
            json!({ "name": name, "email": email, "password": password }),
        )
        .await;
        assert_eq!(st, StatusCode::CREATED, "{evil}: {body}");
        assert_eq!(body["user"]["name"], name.as_str());
        assert_eq!(body["user"]["email"], email.as_str());
        let access = str_at(&body, "access_token").to_owned();
        // And it logs in with exactly those strings, not with a tautology.
        let (st, _) = json_of(login(&app, &email, &password).await).await;
        assert_eq!(st, StatusCode::OK, "{evil}");
        let (st, body) = json_of(login(&app, "victim@example.com", evil).await).await;
        assert_eq!(st, StatusCode::UNAUTHORIZED, "{evil}: {body}");
        let (st, body) = json_of(login(&app, evil, evil).await).await;
        assert_eq!(st, StatusCode::UNAUTHORIZED, "{evil}: {body}");

        let calls: Vec<(&str, reqwest::RequestBuilder)> = vec![
            (
                "profile",
                app.put("/api/user/profile")
                    .bearer_auth(&access)
                    .json(&json!({ "name": evil })),
            ),
            (
                "profile phone",
                app.put("/api/user/profile")
                    .bearer_auth(&access)
                    .json(&json!({ "phone_number": evil })),
            ),
            (
                "change-password",
                app.post("/api/user/password").bearer_auth(&access).json(
                    &json!({ "current_password": evil, "new_password": format!("{evil} new one") }),
                ),
            ),
            (
                "forgot",
                app.post("/api/forgot-password")
                    .json(&json!({ "email": evil })),
            ),
            (
                "forgot email-ish",
                app.post("/api/forgot-password")
                    .json(&json!({ "email": format!("a{evil}@example.com") })),
            ),
            (
                "reset",
                app.post("/api/reset-password")
                    .json(&json!({ "token": evil, "new_password": format!("{evil} new one") })),
            ),
            (
                "verify token",
                app.post("/api/auth/verify-email")
                    .json(&json!({ "token": evil })),
            ),
            (
                "verify code",
                app.post("/api/auth/verify-email")
                    .bearer_auth(&access)
                    .json(&json!({ "email": evil, "verification_code": evil })),
            ),
            (
                "send verification",
                app.post("/api/auth/send-email-verification")
                    .bearer_auth(&access)
                    .json(&json!({ "email": evil })),
            ),
            (
                "2fa verify",
                app.post("/api/auth/2fa/verify")
                    .json(&json!({ "challenge_token": evil, "otp_code": evil })),
            ),
            (
                "2fa verify recovery",
                app.post("/api/auth/2fa/verify")
                    .json(&json!({ "challenge_token": evil, "recovery_code": evil })),
            ),
            (
                "2fa activate",
                app.post("/api/auth/2fa/activate")
                    .bearer_auth(&access)
                    .json(&json!({ "otp_code": evil })),
            ),
            (
                "2fa disable",
                app.post("/api/auth/2fa/disable")
                    .bearer_auth(&access)
                    .json(&json!({ "otp_code": evil })),
            ),
            (
                "2fa regenerate",
                app.post("/api/auth/2fa/recovery-codes/regenerate")
                    .bearer_auth(&access)
                    .json(&json!({ "otp_code": evil })),
            ),
            (
                "refresh",
                app.post("/api/auth/refresh")
                    .json(&json!({ "refresh_token": evil })),
            ),
            (
                "refresh cookie",
                app.post("/api/auth/refresh").header(
                    "Cookie",
                    format!("zimmer_refresh={}", evil.replace(';', "")),
                ),
            ),
            (
                "session id",
                app.delete(&format!("/api/auth/sessions/{}", urlencode(evil)))
                    .bearer_auth(&access),
            ),
            (
                "delete account",
                app.delete("/api/auth/delete-account")
                    .bearer_auth(&access)
                    .json(&json!({ "password": evil })),
            ),
            (
                "internal create",
                app.post("/internal/users")
                    .header("X-Internal-Token", DEV_INTERNAL_TOKEN)
                    .header("X-Acting-User-Token", &acting)
                    .json(&json!({ "name": evil, "email": evil, "role": evil })),
            ),
            (
                "internal role",
                app.put(&format!("/internal/users/{}", r.user_id))
                    .header("X-Internal-Token", DEV_INTERNAL_TOKEN)
                    .header("X-Acting-User-Token", &acting)
                    .json(&json!({ "role": evil })),
            ),
            (
                "internal user id",
                app.get(&format!("/internal/users/{}", urlencode(evil)))
                    .header("X-Internal-Token", DEV_INTERNAL_TOKEN),
            ),
            (
                "client ip",
                app.post("/api/auth/login")
                    .header("X-Real-IP", *evil)
                    .json(&json!({ "email": "victim@example.com", "password": "wrong password" })),
            ),
        ];
        for (what, req) in calls {
            let (st, body) = req.json_of().await;
            assert_handled(&format!("{what} with {evil}"), st, &body);
            assert!(
                // Accepted: a name is free text; a well-formed address gets the same 200 as
                // every forgot-password; disabling 2FA that is off is a no-op.
                !st.is_success()
                    || what == "profile"
                    || what == "forgot email-ish"
                    || what == "2fa disable",
                "{what} with {evil} succeeded: {body}"
            );
        }
        // The profile kept the name verbatim.
        let me: Value = app.get("/api/me").bearer_auth(&access).json_body().await;
        assert_eq!(me["name"], *evil, "{me}");
    }
    // Nothing was dropped, deleted or changed behind the scenes.
    assert_db_count(
        &ctx,
        "SELECT count(*) AS n FROM users",
        users_before + i64::try_from(INJECTIONS.len()).unwrap(),
    )
    .await;
    assert_eq!(me_status(&app, &r.access).await, StatusCode::OK);
    assert_eq!(
        db_count(
            &ctx,
            "SELECT count(*) AS n FROM users WHERE role <> 'customer'"
        )
        .await,
        1,
        "only the manager is staff"
    );
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}
