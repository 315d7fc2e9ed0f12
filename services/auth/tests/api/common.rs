#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::{path::PathBuf, time::Duration};

use reqwest::{Response, StatusCode, header::SET_COOKIE};
use serde_json::{Value, json};
use zimmer_testkit::{TempDir, TestApp, TestContext, str_at};

pub async fn auth() -> (TestContext, TestApp) {
    let (ctx, app, _mail) = auth_with(&[]).await;
    (ctx, app)
}

/// Auth and, beside it, marketplace (which verifies auth's tokens): `(ctx, auth, market)`.
pub async fn auth_and_market() -> (TestContext, TestApp, TestApp) {
    let (ctx, auth) = auth().await;
    let market = ctx
        .spawn(ctx.settings("marketplace", &[]), zimmer_marketplace::build)
        .await;
    (ctx, auth, market)
}

/// Auth with extra settings, and the directory its mail goes to.
pub async fn auth_with(overrides: &[(&str, &str)]) -> (TestContext, TestApp, Mailbox) {
    let ctx = TestContext::new().await;
    let mail = Mailbox {
        dir: TempDir::new("zimmer-mail"),
    };
    let dir = mail.dir.path.to_string_lossy().into_owned();
    let mut all: Vec<(&str, &str)> = vec![("MAIL_SINK_DIR", dir.as_str())];
    all.extend_from_slice(overrides);
    let app = ctx
        .spawn(ctx.settings("auth", &all), zimmer_auth::build)
        .await;
    (ctx, app, mail)
}

/// The mail sink of one test's auth.
pub struct Mailbox {
    pub dir: TempDir,
}

impl Mailbox {
    pub fn path(&self) -> PathBuf {
        self.dir.path.clone()
    }

    /// Every mail written so far, oldest first.
    pub fn all(&self) -> Vec<Value> {
        let mut files: Vec<_> = std::fs::read_dir(&self.dir.path)
            .map(|d| d.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        files.retain(|p| p.extension().is_some_and(|e| e == "json"));
        files.sort();
        files
            .iter()
            .map(|p| serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap())
            .collect()
    }

    pub fn to(&self, address: &str) -> Vec<Value> {
        self.all()
            .into_iter()
            .filter(|m| m["to"] == address)
            .collect()
    }

    /// Waits until `address` has received `n` mails (sending happens after the answer);
    /// returns the latest.
    pub async fn wait_for(&self, address: &str, n: usize) -> Value {
        zimmer_testkit::eventually(
            &format!("{n} mail(s) to {address}"),
            Duration::from_secs(10),
            || async { self.to(address).len() >= n },
        )
        .await;
        self.to(address).pop().unwrap()
    }
}

/// The token of the link to `path` (e.g. `/reset-password`) in a mail.
pub fn link_token(mail: &Value, path: &str) -> String {
    let text = str_at(mail, "text");
    let marker = format!("{path}?token=");
    let start = text
        .find(&marker)
        .unwrap_or_else(|| panic!("no {path} link in {text}"))
        + marker.len();
    text[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect()
}

/// The 6-digit verification code of a verification mail.
pub fn mailed_code(mail: &Value) -> String {
    let text = str_at(mail, "text");
    let line = text
        .lines()
        .find(|l| l.contains("وارد کنید:"))
        .unwrap_or_else(|| panic!("no code line in {text}"));
    let code: String = line.chars().filter(char::is_ascii_digit).collect();
    assert_eq!(code.len(), 6, "{line}");
    code
}

pub struct Registered {
    pub user_id: i64,
    pub access: String,
    pub refresh: String,
    pub body: Value,
}

pub fn refresh_cookie(res: &Response) -> Option<String> {
    res.headers().get_all(SET_COOKIE).iter().find_map(|v| {
        let v = v.to_str().ok()?;
        let first = v.split(';').next()?;
        let (name, value) = first.split_once('=')?;
        (name == "zimmer_refresh" && !value.is_empty()).then(|| value.to_owned())
    })
}

/// `POST /api/auth/register` of `body`, whatever the answer.
pub async fn register_raw(app: &TestApp, body: Value) -> Response {
    app.post_json("/api/auth/register", &body).await
}

/// [`register_raw`]'s status and JSON body.
pub async fn register_json(app: &TestApp, body: Value) -> (StatusCode, Value) {
    zimmer_testkit::json_of(register_raw(app, body).await).await
}

pub async fn register(app: &TestApp, email: &str, password: &str) -> Registered {
    let body = json!({ "name": "Test User", "email": email, "password": password });
    let res = register_raw(app, body).await;
    assert_eq!(res.status(), StatusCode::CREATED, "register {email}");
    let refresh = refresh_cookie(&res).expect("refresh cookie");
    let body: Value = res.json().await.unwrap();
    Registered {
        user_id: body["user"]["id"].as_i64().unwrap(),
        access: str_at(&body, "access_token").to_owned(),
        refresh,
        body,
    }
}

pub async fn login(app: &TestApp, email: &str, password: &str) -> Response {
    app.post_json(
        "/api/auth/login",
        &json!({ "email": email, "password": password }),
    )
    .await
}

/// A login that must succeed; its access token.
pub async fn login_access(app: &TestApp, email: &str, password: &str) -> String {
    let res = login(app, email, password).await;
    assert_eq!(res.status(), StatusCode::OK, "login {email}");
    let body: Value = res.json().await.unwrap();
    str_at(&body, "access_token").to_owned()
}

pub async fn me_status(app: &TestApp, access: &str) -> StatusCode {
    app.get("/api/me").bearer_auth(access).status().await
}

/// The marketplace's answer to `access` on a route that needs a signed-in user.
pub async fn market_status(market: &TestApp, access: &str) -> StatusCode {
    market
        .get("/api/user/automations")
        .bearer_auth(access)
        .status()
        .await
}

pub async fn refresh_with_cookie(app: &TestApp, refresh: &str) -> Response {
    app.post("/api/auth/refresh")
        .header("Cookie", format!("zimmer_refresh={refresh}"))
        .call()
        .await
}

pub const PASSWORD: &str = "s3cure-and-long-enough";

/// A TOTP code of a base32 secret at `unix` (what an authenticator app shows).
pub fn totp_code(base32: &str, unix: u64) -> String {
    let secret = totp_rs::Secret::try_from_base32(base32).unwrap();
    totp_rs::Builder::new()
        .with_secret(secret.as_bytes().to_vec())
        .build()
        .unwrap()
        .generate(unix)
        .to_string()
}

pub fn now_unix() -> u64 {
    u64::try_from(chrono::Utc::now().timestamp()).unwrap()
}

#[allow(unused_imports)] // not every test binary uses it
pub use zimmer_testkit::{Call, json_of};

/// Turns 2FA on for a signed-in user; returns the base32 secret and the recovery codes.
pub async fn enable_2fa(app: &TestApp, access: &str) -> (String, Vec<String>) {
    let (status, init) = json_of(
        app.post("/api/auth/2fa/initiate")
            .bearer_auth(access)
            .call()
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{init}");
    let secret = str_at(&init, "secret").to_owned();
    let (status, act) = json_of(
        app.post("/api/auth/2fa/activate")
            .bearer_auth(access)
            .json(&json!({ "otp_code": totp_code(&secret, now_unix()) }))
            .call()
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{act}");
    (secret, recovery_codes(&act["recovery_codes"]))
}

/// The recovery codes of an answer (a JSON array of strings).
pub fn recovery_codes(list: &Value) -> Vec<String> {
    list.as_array()
        .unwrap_or_else(|| panic!("not an array: {list}"))
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect()
}

/// A login of a 2FA account: the challenge token.
pub async fn login_challenge(app: &TestApp, email: &str, password: &str) -> String {
    let (status, body) = json_of(login(app, email, password).await).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["otp_required"], true, "{body}");
    assert!(body.get("access_token").is_none(), "{body}");
    str_at(&body, "challenge_token").to_owned()
}
