#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use diesel::{prelude::*, sql_types::Jsonb};
use diesel_async::RunQueryDsl;
use reqwest::{Response, StatusCode};
use serde_json::{Value, json};
use zimmer_db::{
    models::billing::Payment,
    schema::{automations, payments, user_automations},
};
use zimmer_fake_zarinpal::FakeZarinpal;
use zimmer_jwt::Role;
use zimmer_testkit::{TestApp, TestContext, str_at};

pub const FRONTEND: &str = "http://panel.test";
pub const INTERNAL_TOKEN: &str = "test-internal-token";

pub struct Harness {
    pub ctx: TestContext,
    pub app: TestApp,
    pub fake: FakeZarinpal,
}

/// Billing in-process against its own database, broker exchange and a fake Zarinpal. The
/// reconciliation job is off unless `extra` turns it on.
pub async fn harness(extra: &[(&str, &str)]) -> Harness {
    let ctx = TestContext::new().await;
    let fake = FakeZarinpal::start().await.unwrap();
    let app = spawn_billing(&ctx, &fake, extra).await;
    Harness { ctx, app, fake }
}

pub async fn spawn_billing(
    ctx: &TestContext,
    fake: &FakeZarinpal,
    extra: &[(&str, &str)],
) -> TestApp {
    // Tests call the internal API as the admin service, with an explicit credential.
    let callers = zimmer_config::internal_caller_entry("admin", INTERNAL_TOKEN);
    let mut overrides: Vec<(&str, &str)> = vec![
        ("ZARINPAL_BASE_URL", fake.base_url.as_str()),
        ("FRONTEND_URL", FRONTEND),
        ("RECONCILE_ENABLED", "false"),
        ("ZARINPAL_TIMEOUT_MS", "5000"),
        ("INTERNAL_CALLERS", callers.as_str()),
    ];
    overrides.extend_from_slice(extra);
    ctx.spawn(ctx.settings("billing", &overrides), zimmer_billing::build)
        .await
}

/// The reconciliation job every second; fresh pending payments are left alone for `min_age`
/// seconds.
pub fn job(min_age: &'static str) -> Vec<(&'static str, &'static str)> {
    vec![
        ("RECONCILE_ENABLED", "true"),
        ("RECONCILE_INTERVAL_SECS", "1"),
        ("RECONCILE_MIN_AGE_SECS", min_age),
        ("RECONCILE_RETRY_BASE_SECS", "1"),
    ]
}

/// `rb` with the admin's internal credential.
pub fn internal(rb: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
    rb.header("X-Internal-Token", INTERNAL_TOKEN)
}

/// A discount code as the admin's internal API shows it (`id` as the code's JSON id).
pub async fn code_view(app: &TestApp, id: &Value) -> Value {
    internal(app.get(&format!("/internal/discounts/{id}")))
        .json_body()
        .await
}

/// A discount code made through the admin's internal API (201 expected).
pub async fn create_code(app: &TestApp, body: Value) -> Value {
    let res = internal(app.post("/internal/discounts"))
        .json(&body)
        .call()
        .await;
    assert_eq!(res.status(), StatusCode::CREATED, "create {body}");
    res.json().await.unwrap()
}

/// How many discount redemptions there are with `status`.
pub async fn redemptions_in(ctx: &TestContext, status: &str) -> i64 {
    let sql = format!("SELECT count(*) AS n FROM discount_redemptions WHERE status = '{status}'");
    count(ctx, &sql).await
}

/// An automation in the catalogue (marketplace's table; a fixture here).
pub async fn automation(ctx: &TestContext, name: &str, price_per_token: i64) -> i64 {
    let mut conn = ctx.db.connect().await;
    diesel::insert_into(automations::table)
        .values((
            automations::name.eq(name),
            automations::price_per_token.eq(price_per_token),
        ))
        .returning(automations::id)
        .get_result(&mut conn)
        .await
        .unwrap()
}

pub struct Customer {
    pub user_id: i64,
    pub token: String,
    pub automation_id: i64,
    pub user_automation_id: i64,
}

impl Customer {
    /// A GET of `path` on `app` as this customer.
    pub fn get(&self, app: &TestApp, path: &str) -> reqwest::RequestBuilder {
        app.get(path).bearer_auth(&self.token)
    }

    /// A POST to `path` on `app` as this customer.
    pub fn post(&self, app: &TestApp, path: &str) -> reqwest::RequestBuilder {
        app.post(path).bearer_auth(&self.token)
    }
}

/// A customer who has added `automation_id`.
pub async fn customer(ctx: &TestContext, email: &str, automation_id: i64) -> Customer {
    let user_id = ctx.create_user(email, Role::Customer).await;
    let mut conn = ctx.db.connect().await;
    let user_automation_id = diesel::insert_into(user_automations::table)
        .values((
            user_automations::user_id.eq(user_id),
            user_automations::automation_id.eq(automation_id),
        ))
        .returning(user_automations::id)
        .get_result(&mut conn)
        .await
        .unwrap();
    Customer {
        user_id,
        token: ctx.mint_access_token(user_id, Role::Customer, uuid::Uuid::new_v4()),
        automation_id,
        user_automation_id,
    }
}

/// A customer of an automation "A" at 15,000 rials a token, in `h`.
pub async fn customer_of_a(h: &Harness, email: &str) -> Customer {
    let a = automation(&h.ctx, "A", 15_000).await;
    customer(&h.ctx, email, a).await
}

/// Billing started with no overrides, an automation "A" at 15,000 rials a token and a
/// customer of it: how most payment tests begin (with overrides: [`customer_of_a`]).
pub async fn shop(email: &str) -> (Harness, i64, Customer) {
    let h = harness(&[]).await;
    let c = customer_of_a(&h, email).await;
    (h, c.automation_id, c)
}

pub async fn init(app: &TestApp, c: &Customer, body: Value) -> Response {
    app.post("/api/payments/zarinpal/init")
        .bearer_auth(&c.token)
        .json(&body)
        .call()
        .await
}

/// [`init`] that must answer `expected`; the body.
pub async fn init_expecting(
    app: &TestApp,
    c: &Customer,
    body: Value,
    expected: StatusCode,
) -> Value {
    let res = init(app, c, body).await;
    assert_eq!(res.status(), expected, "init");
    res.json().await.unwrap()
}

/// Starts a purchase of `tokens` and answers the init body.
pub async fn buy(app: &TestApp, c: &Customer, tokens: i64) -> Value {
    let body = json!({ "automation_id": c.automation_id, "tokens": tokens });
    init_expecting(app, c, body, StatusCode::OK).await
}

/// The payer at the fake's StartPay page (`choice`: None pays; "NOK", "unpaid", "in_bank").
/// Answers the callback's query as the gateway would send it: (Authority, Status).
pub async fn start_pay(payment_url: &str, choice: Option<&str>) -> (String, String) {
    let url = match choice {
        Some(c) => format!("{payment_url}?status={c}"),
        None => payment_url.to_owned(),
    };
    let res = zimmer_testkit::client().get(url).call().await;
    assert_eq!(res.status(), StatusCode::FOUND, "StartPay redirects");
    let location = res.headers()["location"].to_str().unwrap().to_owned();
    assert!(
        location.contains("/api/payments/zarinpal/callback?"),
        "{location}"
    );
    let query = location.split_once('?').unwrap().1;
    let param = |name: &str| {
        query
            .split('&')
            .find_map(|kv| kv.strip_prefix(&format!("{name}=")))
            .unwrap()
            .to_owned()
    };
    (param("Authority"), param("Status"))
}

/// The gateway's redirect arriving at billing (a browser: no Accept JSON).
pub async fn callback_browser(app: &TestApp, authority: &str, status: &str) -> Response {
    app.get(&format!(
        "/api/payments/zarinpal/callback?Authority={authority}&Status={status}"
    ))
    .header("Accept", "text/html")
    .call()
    .await
}

/// The same callback asking for JSON (the panel's result page).
/// [`callback_json`]'s body.
pub async fn callback_body(app: &TestApp, authority: &str, status: &str) -> Value {
    callback_json(app, authority, status)
        .await
        .json()
        .await
        .unwrap()
}

pub async fn callback_json(app: &TestApp, authority: &str, status: &str) -> Response {
    app.get(&format!(
        "/api/payments/zarinpal/callback?Authority={authority}&Status={status}"
    ))
    .header("Accept", "application/json")
    .call()
    .await
}

pub async fn payment(ctx: &TestContext, id: i64) -> Payment {
    let mut conn = ctx.db.connect().await;
    payments::table
        .find(id)
        .select(Payment::as_select())
        .first(&mut conn)
        .await
        .unwrap()
}

#[derive(QueryableByName)]
struct Payload {
    #[diesel(sql_type = Jsonb)]
    payload: Value,
}

/// The envelopes billing wrote to its outbox, of one event type.
pub async fn outbox(ctx: &TestContext, event_type: &str) -> Vec<Value> {
    let mut conn = ctx.db.connect().await;
    diesel::sql_query(
        "SELECT payload FROM outbox WHERE producer = 'billing' AND event_type = $1 ORDER BY created_at",
    )
    .bind::<diesel::sql_types::Text, _>(event_type)
    .load::<Payload>(&mut conn)
    .await
    .unwrap()
    .into_iter()
    .map(|p| p.payload)
    .collect()
}

#[allow(unused_imports)] // not every test binary uses it
pub use zimmer_testkit::{Call, assert_db_count as assert_count, db_count as count};

pub fn authority_of(init: &Value) -> String {
    str_at(init, "authority").to_owned()
}

pub fn payment_url_of(init: &Value) -> String {
    str_at(init, "payment_url").to_owned()
}

pub fn id_of(init: &Value) -> i64 {
    init["payment_id"].as_i64().unwrap()
}
