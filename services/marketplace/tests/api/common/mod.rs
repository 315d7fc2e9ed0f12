#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use reqwest::{RequestBuilder, Response, StatusCode};
use serde_json::{Value, json};
use zimmer_jwt::Role;
use zimmer_testkit::{TestApp, TestContext};

pub const INTERNAL_TOKEN: &str = zimmer_config::DEV_INTERNAL_TOKEN;
pub const WAIT: Duration = Duration::from_secs(30);
pub const BOT_TOKEN: &str = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsawQ";
pub const BOT_TOKEN_2: &str = "987654321:BBHdqTcvCH1vGWJxfSeofSAs0K5PALDsawZ";

/// Fast background loops for tests; the health checker only where a test turns it on.
pub const FAST: &[(&str, &str)] = &[
    ("HEALTH_CHECK_ENABLED", "false"),
    ("PROVISION_POLL_MS", "100"),
    ("PROVISION_ATTEMPTS", "3"),
    ("PROVISION_BACKOFF_MS", "20"),
    ("PROVISION_RETRY_FAILED_MS", "200"),
    ("PROVISION_RETRY_FAILED_MAX_MS", "400"),
    ("PROVISION_TIMEOUT_MS", "5000"),
];

pub async fn market_with(extra: &[(&str, &str)]) -> (TestContext, TestApp) {
    let ctx = TestContext::new().await;
    let mut overrides: Vec<(&str, &str)> = FAST.to_vec();
    overrides.extend_from_slice(extra);
    let app = ctx
        .spawn(
            ctx.settings("marketplace", &overrides),
            zimmer_marketplace::build,
        )
        .await;
    (ctx, app)
}

pub async fn market() -> (TestContext, TestApp) {
    market_with(&[]).await
}

pub fn internal(rb: RequestBuilder) -> RequestBuilder {
    rb.header("X-Internal-Token", INTERNAL_TOKEN)
}

pub async fn json_of(res: Response) -> Value {
    res.json().await.expect("JSON body")
}

/// An automation with the defaults but its name; answers its id.
pub async fn automation_named(app: &TestApp, name: &str) -> i64 {
    automation_with(app, json!({ "name": name })).await
}

/// [`create_automation`], answering only the id.
pub async fn automation_with(app: &TestApp, extra: Value) -> i64 {
    create_automation(app, extra).await["id"].as_i64().unwrap()
}

/// Creates an automation through the internal API; `extra` fields override the defaults.
pub async fn create_automation(app: &TestApp, extra: Value) -> Value {
    let mut body = json!({
        "name": "Test Bot",
        "description": "A bot for tests",
        "pricing_type": "token_per_session",
        "price_per_token": 10_000,
        "demo_tokens": 5,
    });
    if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            b.insert(k.clone(), v.clone());
        }
    }
    let res = internal(app.post("/internal/automations"))
        .json(&body)
        .call()
        .await;
    assert_eq!(res.status(), StatusCode::CREATED, "create automation");
    json_of(res).await
}

pub async fn issue_token(app: &TestApp, automation_id: i64) -> String {
    let res = internal(app.post(&format!(
        "/internal/automations/{automation_id}/service-token"
    )))
    .call_expecting(StatusCode::CREATED)
    .await;
    json_of(res).await["service_token"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// A customer with an access token.
pub async fn customer(ctx: &TestContext, email: &str) -> (i64, String) {
    ctx.user_with_token(email, Role::Customer).await
}

/// An update of automation `id` through the internal API; answers the status.
pub async fn update_automation(app: &TestApp, id: i64, body: Value) -> StatusCode {
    let path = format!("/internal/automations/{id}");
    internal(app.put(&path)).json(&body).status().await
}

/// The customer's view of their automation `id` (`GET /api/user/automations/{id}`).
pub async fn user_view(app: &TestApp, access: &str, id: i64) -> Value {
    let path = format!("/api/user/automations/{id}");
    app.get(&path).bearer_auth(access).json_body().await
}

/// The customer's update of their automation `id` (`PUT /api/user/automations/{id}`).
pub async fn user_update(app: &TestApp, access: &str, id: i64, body: Value) -> Response {
    let path = format!("/api/user/automations/{id}");
    app.put(&path).bearer_auth(access).json(&body).call().await
}

/// The customer connects the Telegram bot `bot_token` to their automation `id`; the status.
pub async fn connect_bot(app: &TestApp, access: &str, id: i64, bot_token: &str) -> StatusCode {
    let body = json!({ "telegram_bot_token": bot_token });
    user_update(app, access, id, body).await.status()
}

pub async fn staff(ctx: &TestContext, email: &str) -> i64 {
    ctx.create_user(email, Role::Manager).await
}

/// Adds the automation for the customer; returns the new user automation as answered.
pub async fn add_json(app: &TestApp, access: &str, automation_id: i64) -> Value {
    let res = app
        .post(&format!("/api/user/automations/{automation_id}"))
        .bearer_auth(access)
        .call()
        .await;
    assert_eq!(res.status(), StatusCode::CREATED, "add automation");
    json_of(res).await["user_automation"].clone()
}

/// Adds the automation for the customer; returns the user automation id.
pub async fn add(app: &TestApp, access: &str, automation_id: i64) -> i64 {
    add_json(app, access, automation_id).await["id"]
        .as_i64()
        .unwrap()
}

pub async fn consume(app: &TestApp, service_token: &str, body: &Value) -> Response {
    app.post("/api/automation-usage/consume")
        .header("X-Zimmer-Service-Token", service_token)
        .json(body)
        .call()
        .await
}

/// The usage body of `units` on the user automation `ua`, as vendors send it.
pub fn usage(ua: i64, units: i64) -> Value {
    json!({ "user_automation_id": ua, "units": units })
}

/// [`usage`] with an idempotency key in the body.
pub fn usage_keyed(ua: i64, units: i64, key: &str) -> Value {
    json!({ "user_automation_id": ua, "units": units, "idempotency_key": key })
}

/// [`consume`]'s answer as JSON.
pub async fn consume_json(app: &TestApp, service_token: &str, body: &Value) -> Value {
    json_of(consume(app, service_token, body).await).await
}

/// Credits paid tokens through the internal adjustment API.
pub async fn adjust(app: &TestApp, ua_id: i64, delta: i64, key: &str, actor: i64) -> Response {
    internal(app.post("/internal/tokens/adjust"))
        .json(&json!({
            "user_automation_id": ua_id,
            "delta": delta,
            "reason": "test credit",
            "idempotency_key": key,
            "actor_id": actor,
        }))
        .call()
        .await
}

#[allow(unused_imports)] // not every test binary uses it
pub use zimmer_testkit::{Call, assert_db_count, db_count};

/// `(tokens_remaining, demo_tokens, is_demo_active, demo_expired, low_alert_sent)`.
pub async fn balances(ctx: &TestContext, ua_id: i64) -> (i64, i64, bool, bool, bool) {
    use diesel::prelude::*;
    use diesel_async::RunQueryDsl;
    use zimmer_db::schema::user_automations as ua;
    let mut conn = ctx.db.connect().await;
    ua::table
        .find(ua_id)
        .select((
            ua::tokens_remaining,
            ua::demo_tokens,
            ua::is_demo_active,
            ua::demo_expired,
            ua::low_alert_sent,
        ))
        .first(&mut conn)
        .await
        .unwrap()
}

/// Sets an automation's price straight in the database, behind the service's back (the
/// cache tests look at what a cached answer does and does not see).
pub async fn set_price_in_db(ctx: &TestContext, id: i64, price: i64) {
    use diesel::prelude::*;
    use diesel_async::RunQueryDsl;
    use zimmer_db::schema::automations;
    let mut conn = ctx.db.connect().await;
    diesel::update(automations::table.find(id))
        .set(automations::price_per_token.eq(price))
        .execute(&mut conn)
        .await
        .unwrap();
}

pub async fn integration_status(ctx: &TestContext, ua_id: i64) -> String {
    use diesel::prelude::*;
    use diesel_async::RunQueryDsl;
    use zimmer_db::schema::user_automations as ua;
    let mut conn = ctx.db.connect().await;
    ua::table
        .find(ua_id)
        .select(ua::integration_status)
        .first(&mut conn)
        .await
        .unwrap()
}

/// How many `kind` rows the token ledger holds.
pub async fn ledger_count(ctx: &TestContext, kind: &str) -> i64 {
    let sql = format!("SELECT count(*) AS n FROM token_ledger WHERE kind = '{kind}'");
    db_count(ctx, &sql).await
}

pub async fn outbox_count(ctx: &TestContext, event_type: &str) -> i64 {
    db_count(
        ctx,
        &format!("SELECT count(*) AS n FROM outbox WHERE event_type = '{event_type}'"),
    )
    .await
}

/// The `data` of the one `event_type` event in the outbox (there must be exactly one).
pub async fn only_event_data(ctx: &TestContext, event_type: &str) -> Value {
    assert_eq!(
        outbox_count(ctx, event_type).await,
        1,
        "{event_type} events"
    );
    outbox_payload(ctx, event_type).await["data"].clone()
}

/// The payload of an `event_type` event in the outbox (the tests check there is one).
pub async fn outbox_payload(ctx: &TestContext, event_type: &str) -> Value {
    use diesel::prelude::*;
    use diesel_async::RunQueryDsl;
    use zimmer_db::schema::outbox;
    let mut conn = ctx.db.connect().await;
    outbox::table
        .filter(outbox::event_type.eq(event_type))
        .select(outbox::payload)
        .first(&mut conn)
        .await
        .unwrap()
}
