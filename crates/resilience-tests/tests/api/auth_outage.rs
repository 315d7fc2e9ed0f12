//! A service that starts while auth is unreachable (both restarted together) must not tell
//! the panels "logged out": with no key for a token's `kid` and auth's JWKS unreachable it
//! answers 503 `keys_unavailable`, keeps fetching the JWKS in the background, and accepts the
//! token within seconds of auth coming back. Real `zimmer-auth` and `zimmer-marketplace`
//! processes; auth is made unreachable with a `ToggleProxy` in front of it. Likewise, before
//! its first load of the live revocations from auth an instance is not ready and answers 503
//! `revocations_unavailable` instead of accepting a token that may have been logged out.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::Value;
use zimmer_jwt::{Role, Signer};
use zimmer_testkit::{Process, TempDir, TestContext, ToggleProxy, eventually};

async fn get(http: &reqwest::Client, url: &str, token: &str) -> (StatusCode, Value) {
    let res = http.get(url).bearer_auth(token).send().await.unwrap();
    let status = res.status();
    (status, res.json().await.unwrap_or(Value::Null))
}

/// A real auth, with the test's signing key, on a port of its own.
async fn start_auth(ctx: &TestContext, logs: &TempDir) -> Process {
    let env: Vec<(String, String)> = ctx
        .env_pairs()
        .into_iter()
        .filter(|(k, _)| k != "JWT_PUBLIC_KEY" && k != "HTTP_PORT")
        .collect();
    Process::start_service("zimmer-auth", "auth", &env, &logs.path).await
}

/// A marketplace instance (log `marketplace.log`) with `env`, reaching auth's API at
/// `auth_url` only, that must load the revocations before it is ready; not waited for.
fn marketplace(mut env: Vec<(String, String)>, auth_url: &str, logs: &TempDir) -> Process {
    env.extend(
        [
            ("AUTH_INTERNAL_URL", auth_url),
            ("REVOCATION_LOAD_REQUIRED", "true"),
            ("HEALTH_CHECK_ENABLED", "false"),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned())),
    );
    Process::spawn("marketplace", &env, &logs.path)
}

/// Waits until `base` serves (`/healthz`) and returns its `/readyz` body, which must be a 503.
async fn alive_not_ready(http: &reqwest::Client, base: &str) -> Value {
    eventually("marketplace is up", Duration::from_secs(30), || async {
        http.get(format!("{base}/healthz"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
    })
    .await;
    let res = http.get(format!("{base}/readyz")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    res.json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_started_while_auth_is_down_says_503_keys_unavailable_then_recovers() {
    let ctx = TestContext::new().await;
    let logs = TempDir::new("zimmer-auth-outage");
    let auth = start_auth(&ctx, &logs).await;
    // Auth as the marketplace sees it: through a proxy that starts cut.
    let proxy = ToggleProxy::start(&format!("127.0.0.1:{}", auth.port), false).await;
    let auth_url = format!("http://127.0.0.1:{}", proxy.port);
    // No verification key of its own: it has to fetch auth's JWKS.
    let mut env: Vec<(String, String)> = ctx
        .env_pairs()
        .into_iter()
        .filter(|(k, _)| k != "JWT_PUBLIC_KEY" && k != "JWT_PRIVATE_KEY")
        .collect();
    env.push((
        "JWKS_URL".to_owned(),
        format!("{auth_url}/.well-known/jwks.json"),
    ));
    let market = marketplace(env, &auth_url, &logs);
    let base = market.url();
    let http = zimmer_testkit::client();

    // Start-up does not fail because auth is down: the process serves (alive), not ready.
    let ready = alive_not_ready(&http, &base).await;
    assert_ne!(ready["checks"]["keys"], "ok", "{ready}");

    // A valid token (auth signs with this test's key) is "try again", never "logged out".
    let (customer, token) = ctx
        .user_with_token("outage@example.com", Role::Customer)
        .await;
    let mine = format!("{base}/api/user/automations");
    for _ in 0..5 {
        let (status, body) = get(&http, &mine, &token).await;
        assert_eq!(
            status,
            StatusCode::SERVICE_UNAVAILABLE,
            "{body}\n{}",
            market.log()
        );
        assert_eq!(body["code"], "keys_unavailable", "{body}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Auth comes back: the background retry picks the keys (and the revocations) up.
    proxy.enable();
    let back = Instant::now();
    eventually(
        "the token is accepted once auth is reachable",
        Duration::from_secs(5),
        || async { get(&http, &mine, &token).await.0 == StatusCode::OK },
    )
    .await;
    eprintln!("accepted {:?} after auth came back", back.elapsed());
    let res = http.get(format!("{base}/readyz")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);

    // With the JWKS reachable, a key id it does not have is a bad token: 401.
    let other = Signer::from_pem(&zimmer_jwt::generate_ed25519_pem().unwrap()).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let claims: zimmer_jwt::Claims = serde_json::from_value(serde_json::json!({
        "sub": customer.to_string(), "role": "customer", "sid": uuid::Uuid::new_v4(),
        "jti": uuid::Uuid::new_v4(), "iat": now, "exp": now + 900,
        "iss": "zimmer-auth", "aud": "zimmer",
    }))
    .unwrap();
    let forged = other.sign(&claims).unwrap();
    let (status, body) = get(&http, &mine, &forged).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn before_its_first_revocation_load_a_service_is_unready_and_accepts_no_token() {
    let ctx = TestContext::new().await;
    let logs = TempDir::new("zimmer-revocation-gate");
    let auth = start_auth(&ctx, &logs).await;
    let auth_base = format!("http://127.0.0.1:{}", auth.port);
    let http = zimmer_testkit::client();

    // A session logged out at auth before the marketplace instance starts.
    ctx.create_user("gate@example.com", Role::Customer).await;
    let res = http
        .post(format!("{auth_base}/api/auth/login"))
        .json(&serde_json::json!({ "email": "gate@example.com", "password": zimmer_testkit::TEST_PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let out = res.json::<Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let res = http
        .post(format!("{auth_base}/api/auth/logout"))
        .bearer_auth(&out)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);

    // The instance has its verification key (configured) but cannot reach auth's API yet.
    let proxy = ToggleProxy::start(&format!("127.0.0.1:{}", auth.port), false).await;
    let market = marketplace(
        ctx.env_pairs(),
        &format!("http://127.0.0.1:{}", proxy.port),
        &logs,
    );
    let base = market.url();
    let ready = alive_not_ready(&http, &base).await;
    assert_eq!(ready["checks"]["keys"], "ok", "{ready}");
    assert_ne!(ready["checks"]["revocations"], "ok", "{ready}");

    let (_, valid) = ctx
        .user_with_token("gate-2@example.com", Role::Customer)
        .await;
    let mine = format!("{base}/api/user/automations");
    for token in [&valid, &out] {
        let (status, body) = get(&http, &mine, token).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
        assert_eq!(body["code"], "revocations_unavailable", "{body}");
    }

    // Auth reachable: the load happens within seconds; the logged-out token stays out.
    proxy.enable();
    eventually(
        "the valid token is accepted",
        Duration::from_secs(5),
        || async { get(&http, &mine, &valid).await.0 == StatusCode::OK },
    )
    .await;
    assert_eq!(get(&http, &mine, &out).await.0, StatusCode::UNAUTHORIZED);
    let res = http.get(format!("{base}/readyz")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
}
