#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use reqwest::{Response, StatusCode, header::SET_COOKIE};
use serde_json::{Value, json};
use zimmer_testkit::{TestApp, TestContext};

pub async fn auth() -> (TestContext, TestApp) {
    let ctx = TestContext::new().await;
    let app = ctx
        .spawn(ctx.settings("auth", &[]), zimmer_auth::build)
        .await;
    (ctx, app)
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

pub async fn register(app: &TestApp, email: &str, password: &str) -> Registered {
    let res = app
        .post_json(
            "/api/auth/register",
            &json!({ "name": "Test User", "email": email, "password": password }),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED, "register {email}");
    let refresh = refresh_cookie(&res).expect("refresh cookie");
    let body: Value = res.json().await.unwrap();
    Registered {
        user_id: body["user"]["id"].as_i64().unwrap(),
        access: body["access_token"].as_str().unwrap().to_owned(),
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

pub async fn me_status(app: &TestApp, access: &str) -> StatusCode {
    app.get("/api/me")
        .bearer_auth(access)
        .send()
        .await
        .unwrap()
        .status()
}

pub async fn refresh_with_cookie(app: &TestApp, refresh: &str) -> Response {
    app.post("/api/auth/refresh")
        .header("Cookie", format!("zimmer_refresh={refresh}"))
        .send()
        .await
        .unwrap()
}

pub const PASSWORD: &str = "s3cure-and-long-enough";
