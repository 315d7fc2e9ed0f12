//! A logged-out token stays rejected when the auth *process* restarts: the new process loads
//! the live revocations from its own database before it reports ready and before it accepts
//! any token. Real `zimmer-auth` binaries (`cargo build --workspace --bins` first).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use reqwest::StatusCode;
use serde_json::{Value, json};
use zimmer_jwt::Role;
use zimmer_testkit::{Call, Process, TEST_PASSWORD, TempDir, TestContext};

async fn login(http: &reqwest::Client, base: &str, email: &str) -> String {
    let res = http
        .post(format!("{base}/api/auth/login"))
        .json(&json!({ "email": email, "password": TEST_PASSWORD }))
        .call_expecting(StatusCode::OK)
        .await;
    res.json::<Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn me(http: &reqwest::Client, base: &str, token: &str) -> StatusCode {
    http.get(format!("{base}/api/me"))
        .bearer_auth(token)
        .status()
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_logged_out_token_stays_rejected_after_the_auth_process_restarts() {
    let ctx = TestContext::new().await;
    let logs = TempDir::new("zimmer-auth-restart");
    let env = ctx.process_env(&["JWT_PUBLIC_KEY"], vec![]);
    ctx.create_user("restart@example.com", Role::Customer).await;
    let http = zimmer_testkit::client();

    let auth = Process::start("auth", &env, &logs.path).await;
    let base = auth.url();
    let out = login(&http, &base, "restart@example.com").await;
    let kept = login(&http, &base, "restart@example.com").await;
    assert_eq!(me(&http, &base, &out).await, StatusCode::OK);
    http.post(format!("{base}/api/auth/logout"))
        .bearer_auth(&out)
        .expect_status(StatusCode::NO_CONTENT)
        .await;
    assert_eq!(me(&http, &base, &out).await, StatusCode::UNAUTHORIZED);

    // Restart the process: the in-memory revocation set starts empty.
    drop(auth);
    let auth = Process::start("auth", &env, &logs.path).await;
    let base = auth.url();
    let ready: Value = http.get(format!("{base}/readyz")).json_body().await;
    assert_eq!(ready["checks"]["revocations"], "ok", "{ready}");
    assert_eq!(
        me(&http, &base, &out).await,
        StatusCode::UNAUTHORIZED,
        "the logged-out token must stay rejected; log:\n{}",
        auth.log()
    );
    // The other session was not logged out: its token still works.
    assert_eq!(me(&http, &base, &kept).await, StatusCode::OK);
}
