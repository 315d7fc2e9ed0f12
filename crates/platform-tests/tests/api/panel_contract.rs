//! The Persian user panel's contract (docs/panels.md), call by call, through the real nginx in
//! front of the real service binaries: each call is sent as the panel sends it (method, path,
//! query, body, Bearer, cookies, `Origin: http://localhost:3000`, and the browser's preflight
//! before every non-simple request), and the answer is checked for the fields the panel
//! reads, their JSON types, and the CORS headers. Refusals the contract asks for (2FA
//! disable without a code, account deletion with a Bearer alone, Google sign-in) answer a
//! plain-string `detail`; a `user_id` in a body is ignored.
//!
//! One platform per test, started once. The gateway allows 10 credential calls (login,
//! signup, 2FA verify, password reset) in a burst per client address: the customer makes
//! 10, and the other people of the test call from other loopback addresses.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    net::{IpAddr, Ipv4Addr},
    time::Duration,
};

use futures_util::FutureExt;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;
use zimmer_jwt::Role;
use zimmer_platform_tests::*;
use zimmer_testkit::{Call, count, eventually};

const PASSWORD: &str = "a-long-password-1";
const NEW_PASSWORD: &str = "another-long-password-2";
const RESET_PASSWORD: &str = "a-third-long-password-3";
const BOT_NAME: &str = "ربات پشتیبانی تلگرام";
const PRICE: i64 = 15_000;
/// Other people's machines: the gateway allows 10 credential calls in a burst per address,
/// and the panel's customer alone makes that many here.
const STAFF_MACHINE: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
const REZA_MACHINE: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 3));

/// What the sections share.
struct World {
    stack: Stack,
    panel: Panel,
    /// The panel's customer.
    email: String,
    user_id: i64,
    access: String,
    name: String,
    /// Another customer (made in the database, with a token as auth would issue).
    other_id: i64,
    other_access: String,
    /// A support agent (made in the database: staff accounts are the admin's job).
    staff_email: String,
    staff_access: String,
    bot: i64,
    hidden: i64,
    paid_payment: i64,
    ticket: i64,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_call_of_the_panel_answers_what_it_reads_through_the_gateway() {
    let stack = Stack::start(StackOptions::default()).await;
    let panel = stack.panel();
    let mut conn = stack.db().await;
    let bot = automation(&mut conn, BOT_NAME, PRICE).await;
    let hidden = insert_returning_id(
        &mut conn,
        "INSERT INTO automations (name, price_per_token, status, is_listed) \
         VALUES ('پیش‌نویس منتشرنشده', 1000, 'active', false) RETURNING id",
    )
    .await;
    discount(&mut conn, "NOWRUZ", 20).await;
    // One use per customer, so that after the purchase it answers per_user_limit.
    exec(
        &mut conn,
        "UPDATE discount_codes SET per_user_limit = 1 WHERE code = 'nowruz'",
    )
    .await;
    exec(
        &mut conn,
        "INSERT INTO discount_codes (code, percent_off, active) VALUES ('paused', 30, false)",
    )
    .await;
    exec(
        &mut conn,
        &format!(
            "WITH d AS (INSERT INTO discount_codes (code, percent_off, active) \
             VALUES ('elsewhere', 30, true) RETURNING id) \
             INSERT INTO discount_code_automations (discount_id, automation_id) \
             SELECT id, {hidden} FROM d"
        ),
    )
    .await;
    let (other_id, other_access) = stack
        .ctx
        .user_with_token("other@example.com", Role::Customer)
        .await;
    let staff_email = "agent@example.com".to_owned();
    let staff_id = stack
        .ctx
        .create_user(&staff_email, Role::SupportStaff)
        .await;
    exec(
        &mut conn,
        &format!("UPDATE users SET name = 'پشتیبان زیمر' WHERE id = {staff_id}"),
    )
    .await;
    let staff_access = stack
        .ctx
        .mint_access_token(staff_id, Role::SupportStaff, Uuid::new_v4());
    let mut world = World {
        stack,
        panel,
        email: "sara@example.com".to_owned(),
        user_id: 0,
        access: String::new(),
        name: String::new(),
        other_id,
        other_access,
        staff_email,
        staff_access,
        bot,
        hidden,
        paid_payment: 0,
        ticket: 0,
    };
    let run = async {
        signup_and_login(&mut world).await;
        account(&mut world).await;
        catalogue_and_own_automations(&world).await;
        usage(&world).await;
        discounts_and_payments(&mut world).await;
        tickets(&mut world).await;
        notifications(&world).await;
        password_and_two_factor(&mut world).await;
        cookie_refresh_and_logout(&world).await;
        password_reset(&world).await;
        link_verification_and_account_deletion(&world).await;
        not_served(&world).await;
    };
    if let Err(panic) = std::panic::AssertUnwindSafe(run).catch_unwind().await {
        eprintln!("service logs:{}", world.stack.logs());
        std::panic::resume_unwind(panic);
    }
}

/// POST /api/auth/signup and /api/auth/login: `access_token` and `user` (with `is_admin` and
/// `email_verified_at`); the refresh token only in its HttpOnly cookie; `detail` on errors;
/// the account can log in at once; what the panel must not set (role) is ignored.
async fn signup_and_login(w: &mut World) {
    let p = &w.panel;
    let res = p
        .post_anon(
            "/api/auth/signup",
            json!({
                "email": w.email, "password": PASSWORD, "name": "سارا",
                "confirm_password": PASSWORD,
                // Not the panel's, but a client could send them: never applied.
                "role": "manager", "is_admin": true,
            }),
        )
        .await;
    let body = res.expect(201);
    token_answer("signup", body);
    let user = &body["user"];
    assert_eq!(user["name"], "سارا");
    assert_eq!(user["email"], w.email);
    assert_eq!(user["role"], "customer");
    assert_eq!(user["is_admin"], false);
    assert!(user["email_verified_at"].is_null());
    assert!(
        body.get("refresh_token").is_none(),
        "a browser's refresh token stays in the HttpOnly cookie: {body}"
    );
    let cookie = res.set_cookie("zimmer_refresh").expect("refresh cookie");
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/api/auth"] {
        assert!(cookie.contains(attribute), "{attribute} in {cookie}");
    }
    w.user_id = user["id"].as_i64().unwrap();

    let detail = p
        .post_anon(
            "/api/auth/signup",
            json!({
                "email": "mismatch@example.com", "password": PASSWORD, "name": "x",
                "confirm_password": "something-else-entirely",
            }),
        )
        .await
        .refused(422);
    assert!(detail.contains("confirm_password"), "{detail}");

    p.post_anon(
        "/api/auth/login",
        json!({ "email": w.email, "password": "not-the-password" }),
    )
    .await
    .refused(401);

    let res = p
        .post_anon(
            "/api/auth/login",
            json!({ "email": w.email, "password": PASSWORD }),
        )
        .await;
    let body = res.expect(200);
    w.access = token_answer("login", body);
    assert_eq!(body["user"]["id"], w.user_id);
    assert!(res.set_cookie("zimmer_refresh").is_some());

    // Staff get is_admin (the panel sends them to the dashboard).
    let res = Panel::on_machine(&w.stack.gw.address, PANEL, Some(STAFF_MACHINE))
        .post_anon(
            "/api/auth/login",
            json!({ "email": w.staff_email, "password": zimmer_testkit::TEST_PASSWORD }),
        )
        .await;
    let staff = &res.expect(200)["user"];
    shape("staff user", staff, USER_FIELDS);
    assert_eq!(staff["is_admin"], true);
    assert_eq!(staff["role"], "support_staff");
}

/// GET /api/auth/csrf, GET /api/me, POST /api/auth/send-email-verification,
/// POST /api/auth/verify-email with the mailed code, PUT /api/user/profile.
async fn account(w: &mut World) {
    let p = &w.panel;
    let res = p
        .call(Method::GET, "/api/auth/csrf", None, Body::None)
        .await;
    shape("csrf", res.expect(200), &[("csrf_token", T::Text)]);

    let me = p.get("/api/me", &w.access).await;
    let me = me.expect(200);
    shape("me", me, USER_FIELDS);
    assert!(me.get("user").is_none(), "/api/me is the user unwrapped");
    assert!(
        me["email_verified_at"].is_null(),
        "not verified yet, so the panel keeps password change off"
    );

    // The email must be the caller's.
    p.post(
        "/api/auth/send-email-verification",
        &w.access,
        json!({ "email": "someone-else@example.com" }),
    )
    .await
    .refused(422);
    let before = w.stack.mail.to(&w.email).len();
    p.post(
        "/api/auth/send-email-verification",
        &w.access,
        json!({ "email": w.email }),
    )
    .await
    .ok();
    let mail = w.stack.mail.wait_for(&w.email, before + 1).await;
    let code = mailed_code(&mail);
    let wrong = if code == "000000" { "111111" } else { "000000" };
    p.post(
        "/api/auth/verify-email",
        &w.access,
        json!({ "email": w.email, "verification_code": wrong }),
    )
    .await
    .refused(422);
    p.post(
        "/api/auth/verify-email",
        &w.access,
        json!({ "email": w.email, "verification_code": code }),
    )
    .await
    .ok();
    let me = p.get("/api/me", &w.access).await;
    shape(
        "me after verification",
        me.expect(200),
        &[("email_verified_at", T::Time)],
    );

    // Profile: Persian name and Persian digits kept/normalised; the body's user_id ignored.
    w.name = "سارا محمدی".to_owned();
    p.call(
        Method::PUT,
        "/api/user/profile",
        Some(&w.access),
        Body::Json(json!({
            "name": w.name, "phone_number": "۰۹۱۲ ۱۲۳ ۴۵۶۷", "user_id": w.other_id,
        })),
    )
    .await
    .ok();
    let me = p.get("/api/me", &w.access).await;
    let me = me.expect(200);
    assert_eq!(me["name"], w.name.as_str());
    assert_eq!(me["phone_number"], "09121234567");
    let mut conn = w.stack.db().await;
    assert_eq!(
        count(
            &mut conn,
            &format!(
                "SELECT count(*) AS n FROM users WHERE id = {} AND name = 'Test User' AND phone_number IS NULL",
                w.other_id
            )
        )
        .await,
        1,
        "a user_id in the body changes nobody else"
    );
}

const CATALOGUE_FIELDS: &[(&str, T)] = &[
    ("id", T::Int),
    ("name", T::Text),
    ("description", T::Str),
    ("pricing_type", T::Text),
    ("price_per_token", T::Int),
    ("health_status", T::Text),
    ("status", T::Text),
    ("is_listed", T::Bool),
    ("created_at", T::Time),
];

const MY_AUTOMATION_FIELDS: &[(&str, T)] = &[
    ("id", T::Int),
    ("automation_id", T::Int),
    ("name", T::Text),
    ("description", T::Str),
    ("tokens_remaining", T::Int),
    ("demo_tokens", T::Int),
    ("is_demo_active", T::Bool),
    ("demo_expired", T::Bool),
    ("integration_status", T::Text),
    ("status", T::Text),
    ("created_at", T::Time),
];

/// The catalogue (`/api/optimized/...`, `/api/automations/{id}` with `user_has_automation`)
/// and the customer's automations (bare arrays, `/active`, `{user_automation}` by the
/// automation's id, add with no body).
async fn catalogue_and_own_automations(w: &World) {
    let p = &w.panel;
    let a = &w.access;
    let res = p.get("/api/optimized/automations/marketplace", a).await;
    let body = res.expect(200);
    let list = body["automations"]
        .as_array()
        .unwrap_or_else(|| panic!("{{automations: [...]}}: {body}"));
    for item in list {
        shape("marketplace item", item, CATALOGUE_FIELDS);
        assert_eq!(item["status"], "active");
        assert_eq!(item["is_listed"], true);
    }
    let bot = list
        .iter()
        .find(|i| i["id"] == w.bot)
        .expect("the listed automation");
    assert_eq!(bot["name"], BOT_NAME, "Persian kept exactly");
    assert_eq!(bot["price_per_token"], PRICE);
    assert!(
        list.iter().all(|i| i["id"] != w.hidden),
        "unlisted automations are not in the marketplace"
    );

    let detail_path = |t: u128| format!("/api/automations/{}?t={t}", w.bot);
    let ms = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis()
    };
    let detail_fields: Vec<(&str, T)> = [
        ("id", T::Int),
        ("name", T::Text),
        ("description", T::Str),
        ("pricing_type", T::Text),
        ("price_per_token", T::Int),
        ("status", T::Text),
        ("is_listed", T::Bool),
        ("health_status", T::Text),
        ("user_has_automation", T::Bool),
    ]
    .to_vec();
    let res = p.get(&detail_path(ms()), a).await;
    let detail = res.expect(200);
    shape("automation", detail, &detail_fields);
    assert_eq!(detail["user_has_automation"], false);
    p.get(&format!("/api/automations/{}", w.hidden), a)
        .await
        .refused(404);

    let own = format!("/api/user/automations/{}", w.bot);
    p.get(&own, a).await.refused(404);
    p.post_empty(&own, a).await.ok();
    p.post_empty(&own, a).await.refused(409);
    p.post_empty("/api/user/automations/987654321", a)
        .await
        .refused(404);
    p.post_empty(&format!("/api/user/automations/{}", w.hidden), a)
        .await
        .refused(404);

    let res = p.get(&detail_path(ms()), a).await;
    assert_eq!(res.expect(200)["user_has_automation"], true);

    for path in ["/api/user/automations", "/api/user/automations/active"] {
        let res = p.get(path, a).await;
        let items = res
            .expect(200)
            .as_array()
            .unwrap_or_else(|| panic!("{path} is a bare array: {}", res.body));
        assert_eq!(items.len(), 1, "{path}");
        shape(path, &items[0], MY_AUTOMATION_FIELDS);
        assert_eq!(items[0]["automation_id"], w.bot);
        assert_eq!(items[0]["name"], BOT_NAME);
        assert_eq!(items[0]["status"], "active");
    }
    let res = p.get(&own, a).await;
    let ua = &res.expect(200)["user_automation"];
    shape(
        "user_automation",
        ua,
        &[
            ("id", T::Int),
            ("tokens_remaining", T::Int),
            ("demo_tokens", T::Int),
            ("is_demo_active", T::Bool),
            ("demo_expired", T::Bool),
            ("status", T::Text),
        ],
    );
    assert_eq!(ua["demo_tokens"], 5, "the demo grant");
    assert_eq!(ua["tokens_remaining"], 0);
    assert_eq!(ua["is_demo_active"], true);
    // Another customer has not added it.
    p.get(&own, &w.other_access).await.refused(404);
}

/// GET /api/user/usage?range=7d|6m and /distribution, after the automation spent tokens.
async fn usage(w: &World) {
    let p = &w.panel;
    let a = &w.access;
    // The vendor spends 2 tokens (its service token from the admin's internal API).
    let res = w
        .stack
        .internal(
            &w.stack.market,
            Method::POST,
            &format!("/internal/automations/{}/service-token", w.bot),
        )
        .call()
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let service_token = res.json::<Value>().await.unwrap()["service_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let ua_id = p
        .get(&format!("/api/user/automations/{}", w.bot), a)
        .await
        .body["user_automation"]["id"]
        .as_i64()
        .unwrap();
    let res = zimmer_testkit::client()
        .post(w.stack.gw.url("/api/automation-usage/consume"))
        .header("X-Zimmer-Service-Token", &service_token)
        .json(&json!({ "user_automation_id": ua_id, "units": 2, "usage_type": "session", "idempotency_key": "conversation-1" }))
        .call()
        .await;
    assert_eq!(res.status(), StatusCode::OK, "consume");

    let today = chrono::Utc::now().format("%Y-%m-%d").to_string();
    let this_month = chrono::Utc::now().format("%Y-%m").to_string();
    let res = p.get("/api/user/usage?range=7d", a).await;
    let days = res.expect(200).as_array().expect("a bare array").clone();
    assert_eq!(days.len(), 7, "the last 7 days: {days:?}");
    for d in &days {
        shape(
            "usage day",
            d,
            &[("day", T::Day), ("tokens", T::Int), ("sessions", T::Int)],
        );
    }
    let last = days.last().unwrap();
    assert_eq!(last["day"], today.as_str());
    assert_eq!(last["tokens"], 2);
    assert_eq!(last["sessions"], 1);

    let res = p.get("/api/user/usage?range=6m", a).await;
    let months = res.expect(200).as_array().expect("a bare array").clone();
    assert_eq!(months.len(), 6, "the last 6 months: {months:?}");
    for m in &months {
        shape("usage month", m, &[("month", T::Month), ("value", T::Int)]);
    }
    assert_eq!(months.last().unwrap()["month"], this_month.as_str());
    assert_eq!(months.last().unwrap()["value"], 2);

    let res = p.get("/api/user/usage/distribution", a).await;
    let shares = res.expect(200).as_array().expect("a bare array").clone();
    assert_eq!(shares.len(), 1, "{shares:?}");
    shape("share", &shares[0], &[("name", T::Text), ("value", T::Int)]);
    assert_eq!(shares[0]["name"], BOT_NAME);
    assert_eq!(shares[0]["value"], 2);
}

const PAYMENT_FIELDS: &[(&str, T)] = &[
    ("id", T::Int),
    ("automation_id", T::Int),
    ("amount", T::Int),
    ("tokens_purchased", T::Int),
    ("gateway", T::Text),
    ("method", T::Str),
    ("transaction_id", T::OptStr),
    ("ref_id", T::OptInt),
    ("status", T::Text),
    ("created_at", T::Time),
    ("description", T::OptStr),
];

/// The query of a URL as (name, value) pairs, decoded.
fn query_of(url: &str) -> Vec<(String, String)> {
    reqwest::Url::parse(url)
        .unwrap()
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// The payer at the (fake) bank: StartPay redirects to our callback (through the gateway),
/// which redirects the browser to the panel's result page. Returns that page's URL.
async fn pay_at_the_bank(w: &World, start_pay: &str) -> String {
    let browser = zimmer_testkit::client();
    let res = browser.get(start_pay).call().await;
    assert_eq!(res.status(), StatusCode::FOUND, "StartPay redirects");
    let callback = res.headers()["location"].to_str().unwrap().to_owned();
    assert!(
        callback.starts_with(&format!(
            "http://localhost:{}/api/payments/zarinpal/callback?",
            w.stack.callback_door.port
        )),
        "{callback}"
    );
    // A top-level navigation: no Origin, no Bearer, no JSON Accept.
    let res = browser
        .get(&callback)
        .header("Accept", "text/html,application/xhtml+xml")
        .call()
        .await;
    assert_eq!(
        res.status(),
        StatusCode::FOUND,
        "the callback sends the browser on to the panel"
    );
    res.headers()["location"].to_str().unwrap().to_owned()
}

/// The panel's `/payment/return` page: it calls the callback again, with its Bearer, for JSON.
async fn result_page(w: &World, page: &str) -> Value {
    let q = query_of(page);
    let get = |name: &str| {
        q.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| panic!("{name} in {page}"))
    };
    let path = format!(
        "/api/payments/zarinpal/callback?payment_id={}&Authority={}&Status={}",
        get("payment_id"),
        get("Authority"),
        get("Status")
    );
    let res = w.panel.get(&path, &w.access).await;
    let body = res.expect(200).clone();
    shape(
        "payment result",
        &body,
        &[
            ("payment_id", T::Int),
            ("status", T::Text),
            ("ref_id", T::OptInt),
            ("message", T::Text),
        ],
    );
    assert!(
        ["succeeded", "failed", "canceled", "pending"].contains(&body["status"].as_str().unwrap()),
        "{body}"
    );
    body
}

/// POST /api/discounts/validate, POST /api/payments/zarinpal/init (redirect_url, return_path,
/// user_id ignored), the callback's redirect to the panel and its JSON answer (idempotent),
/// GET /api/user/payments (+ /summary, /{id}).
async fn discounts_and_payments(w: &mut World) {
    let p = &w.panel;
    let a = &w.access;
    let discount_fields = [
        ("valid", T::Bool),
        ("code", T::Text),
        ("percent_off", T::Int),
        ("amount_before", T::Int),
        ("amount_discount", T::Int),
        ("amount_after", T::Int),
        ("reason", T::OptStr),
    ];
    let (bot, price) = (w.bot, 10 * PRICE);
    let validate = |body: Value| p.post("/api/discounts/validate", a, body);
    let res = validate(json!({ "code": "nowruz", "automation_id": bot, "amount": price })).await;
    let v = res.expect(200);
    shape("discount", v, &discount_fields);
    assert_eq!(v["valid"], true);
    assert_eq!(v["percent_off"], 20);
    assert_eq!(v["amount_before"], 10 * PRICE);
    assert_eq!(v["amount_discount"], 2 * PRICE);
    assert_eq!(v["amount_after"], 8 * PRICE);
    assert!(v["reason"].is_null());
    let res = validate(json!({ "code": "NOWRUZ", "automation_id": bot, "tokens": 10 })).await;
    assert_eq!(res.expect(200)["amount_after"], 8 * PRICE);
    let res = validate(json!({ "code": "NO-SUCH-CODE", "automation_id": bot, "amount": price }));
    let res = res.await;
    let v = res.expect(200);
    shape("discount refused", v, &discount_fields);
    assert_eq!(v["valid"], false);
    assert_eq!(v["reason"], "not_found");
    assert_eq!(v["amount_after"], 10 * PRICE);
    for (code, reason) in [
        ("PAUSED", "inactive_or_window"),
        ("ELSEWHERE", "not_applicable"),
    ] {
        let res = validate(json!({ "code": code, "automation_id": bot, "tokens": 10 })).await;
        assert_eq!(res.expect(200)["reason"], reason, "{code}");
    }

    // return_path is a path on the panel, never another site (no open redirect).
    for bad in [
        "//evil.example/x",
        "https://evil.example/x",
        "payment/return",
    ] {
        p.post(
            "/api/payments/zarinpal/init",
            a,
            json!({ "automation_id": w.bot, "tokens": 10, "return_path": bad, "discount_code": "" }),
        )
        .await
        .refused(422);
    }

    // Buy 10 tokens with the code; the result page is the panel's own return_path. A forged
    // amount and a user_id are ignored.
    let return_path = format!("/dashboard/automations/{}/payment-result", w.bot);
    let res = p
        .post(
            "/api/payments/zarinpal/init",
            a,
            json!({
                "automation_id": w.bot, "tokens": 10, "return_path": return_path,
                "discount_code": "NOWRUZ", "user_id": w.other_id, "amount": 10,
            }),
        )
        .await;
    let init = res.expect(200).clone();
    shape(
        "init",
        &init,
        &[("redirect_url", T::Text), ("payment_id", T::Int)],
    );
    assert_eq!(init["redirect_url"], init["payment_url"]);
    let start_pay = init["redirect_url"].as_str().unwrap().to_owned();
    assert!(
        start_pay.starts_with(&format!(
            "http://127.0.0.1:{}/pg/StartPay/",
            w.stack.fake_zarinpal.port
        )),
        "{start_pay}"
    );
    assert_eq!(init["amount"], 8 * PRICE);
    let payment_id = init["payment_id"].as_i64().unwrap();
    w.paid_payment = payment_id;

    let page = pay_at_the_bank(w, &start_pay).await;
    assert!(
        page.starts_with(&format!(
            "{PANEL}{return_path}?payment_id={payment_id}&Authority="
        )),
        "the panel's return_path: {page}"
    );
    assert!(page.ends_with("&Status=OK"), "{page}");
    let result = result_page(w, &page).await;
    assert_eq!(result["payment_id"], payment_id);
    assert_eq!(result["status"], "succeeded");
    assert!(result["ref_id"].is_i64());
    let again = result_page(w, &page).await;
    assert_eq!(again["status"], "succeeded", "idempotent");
    assert_eq!(again["ref_id"], result["ref_id"]);

    // A payment the payer cancels at the bank: the default result page, status canceled.
    let res = p
        .post(
            "/api/payments/zarinpal/init",
            a,
            json!({ "automation_id": w.bot, "tokens": 3, "return_path": "", "discount_code": "" }),
        )
        .await;
    let canceled = res.expect(200).clone();
    let page = pay_at_the_bank(
        w,
        &format!("{}?status=NOK", canceled["redirect_url"].as_str().unwrap()),
    )
    .await;
    assert!(
        page.starts_with(&format!(
            "{PANEL}/payment/return?payment_id={}&",
            canceled["payment_id"]
        )),
        "{page}"
    );
    assert_eq!(result_page(w, &page).await["status"], "canceled");
    // The code has had its one use for this customer.
    let res = p
        .post(
            "/api/discounts/validate",
            a,
            json!({ "code": "NOWRUZ", "automation_id": w.bot, "tokens": 10 }),
        )
        .await;
    let v = res.expect(200);
    assert_eq!(v["valid"], false);
    assert_eq!(v["reason"], "per_user_limit");

    // The purchased tokens reach the automation exactly once (payment.verified → marketplace).
    w.stack
        .wait_for_count(
            "the purchased tokens are credited",
            &format!(
                "SELECT count(*) AS n FROM user_automations WHERE user_id = {} AND automation_id = {} AND tokens_remaining = 10",
                w.user_id, w.bot
            ),
            1,
        )
        .await;
    let mut conn = w.stack.db().await;
    assert_eq!(
        count(
            &mut conn,
            &format!(
                "SELECT count(*) AS n FROM payments WHERE user_id = {}",
                w.other_id
            )
        )
        .await,
        0,
        "the body's user_id is ignored"
    );

    let res = p
        .get("/api/user/payments?limit=10&offset=0&order=desc", a)
        .await;
    let list = res.expect(200);
    shape("payments", list, &[("items", T::Arr), ("total", T::Int)]);
    assert_eq!(list["total"], 2);
    let items = list["items"].as_array().unwrap();
    for item in items {
        shape("payment item", item, PAYMENT_FIELDS);
    }
    assert_eq!(
        items[0]["id"], canceled["payment_id"],
        "newest first (order=desc)"
    );
    assert_eq!(items[1]["status"], "succeeded");
    assert_eq!(items[1]["tokens_purchased"], 10);
    let res = p
        .get("/api/user/payments?limit=1&offset=1&order=desc", a)
        .await;
    assert_eq!(res.expect(200)["items"][0]["id"], payment_id);

    let res = p.get("/api/user/payments/summary?months=6", a).await;
    let summary = res.expect(200);
    shape(
        "summary totals",
        summary,
        &[
            ("points", T::Arr),
            ("total_spent", T::Int),
            ("tokens_purchased", T::Int),
            ("count_by_status", T::Obj),
        ],
    );
    assert_eq!(summary["total_spent"], 8 * PRICE);
    assert_eq!(summary["tokens_purchased"], 10);
    let points = summary["points"].as_array().expect("points");
    assert_eq!(points.len(), 6, "{summary}");
    for point in points {
        shape(
            "summary point",
            point,
            &[("month", T::Month), ("amount", T::Int)],
        );
    }
    assert_eq!(
        points.last().unwrap()["month"],
        chrono::Utc::now().format("%Y-%m").to_string()
    );
    assert_eq!(points.last().unwrap()["amount"], 8 * PRICE);

    let path = format!("/api/user/payments/{payment_id}");
    let res = p.get(&path, a).await;
    let one = res.expect(200);
    shape(
        "payment",
        one,
        &[
            ("id", T::Int),
            ("amount", T::Int),
            ("tokens_purchased", T::Int),
            ("gateway", T::Text),
            ("status", T::Text),
            ("ref_id", T::Int),
            ("transaction_id", T::OptStr),
            ("created_at", T::Time),
        ],
    );
    assert_eq!(one["status"], "succeeded");
    p.get(&path, &w.other_access).await.refused(404);
}

/// POST /api/tickets as multipart (user_id ignored, importance kept), PUT of a message, and
/// GET /api/tickets with the conversation flattened into `message`.
async fn tickets(w: &mut World) {
    let p = &w.panel;
    let subject = "ربات به پیام‌ها پاسخ نمی‌دهد";
    let first = "از دیروز ربات تلگرامم به هیچ پیامی جواب نمی‌دهد.";
    let res = p
        .call(
            Method::POST,
            "/api/tickets",
            Some(&w.access),
            Body::Form(
                Form::new()
                    .text("user_id", &w.other_id.to_string())
                    .text("subject", subject)
                    .text("message", first)
                    .text("importance", "high"),
            ),
        )
        .await;
    let ticket = res.expect(201).clone();
    shape("created ticket", &ticket, TICKET_FIELDS);
    assert_eq!(ticket["subject"], subject);
    assert_eq!(ticket["importance"], "high");
    assert_eq!(ticket["status"], "open");
    assert_eq!(ticket["message"], first);
    let id = ticket["id"].as_i64().unwrap();
    w.ticket = id;
    let mut conn = w.stack.db().await;
    assert_eq!(
        count(
            &mut conn,
            &format!(
                "SELECT count(*) AS n FROM tickets WHERE id = {id} AND user_id = {}",
                w.user_id
            )
        )
        .await,
        1,
        "the ticket is the token's user's, whatever user_id says"
    );

    // The owner adds a message the way the panel does: PUT {message}.
    let follow_up = "هنوز مشکل پابرجاست.";
    let path = format!("/api/tickets/{id}");
    p.call(
        Method::PUT,
        &path,
        Some(&w.access),
        Body::Json(json!({ "message": follow_up })),
    )
    .await
    .ok();
    // Not the owner: not found.
    p.call(
        Method::PUT,
        &path,
        Some(&w.other_access),
        Body::Json(json!({ "message": "x" })),
    )
    .await
    .refused(404);
    // Support answers (the dashboard's call; here with a staff token through the gateway).
    let answer = "توکن ربات را دوباره وارد کنید.";
    let res = zimmer_testkit::client()
        .post(w.stack.gw.url(&format!("/api/tickets/{id}/messages")))
        .bearer_auth(&w.staff_access)
        .json(&json!({ "message": answer }))
        .call()
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);

    let res = p.get("/api/tickets", &w.access).await;
    let list = res.expect(200);
    shape("tickets", list, &[("tickets", T::Arr), ("total", T::Int)]);
    assert_eq!(list["total"], 1);
    let item = &list["tickets"][0];
    shape("ticket item", item, TICKET_FIELDS);
    assert!(PANEL_TICKET_STATUSES.contains(&item["status"].as_str().unwrap()));
    assert_eq!(
        item["status"], "in_progress",
        "a staff reply takes an open ticket up"
    );
    assert_eq!(
        item["message"].as_str().unwrap(),
        format!(
            "{first}\n\n--- Reply from {} ---\n{follow_up}\n\n--- Reply from پشتیبان زیمر ---\n{answer}",
            w.name
        ),
        "the whole conversation as one string"
    );
    let res = p.get("/api/tickets", &w.other_access).await;
    assert_eq!(res.expect(200)["total"], 0, "customers see their own");
}

/// GET /api/notifications (paging, type and read filters), unread-count, mark-read `{ids}`
/// (another user's id ignored), mark-all-read, and the stream's opening through the gateway.
async fn notifications(w: &World) {
    let p = &w.panel;
    let a = &w.access;
    // Fed by events: welcome (user.registered), the purchase (payment.verified), the reply.
    w.stack
        .wait_for_count(
            "the customer's notifications",
            &format!(
                "SELECT count(DISTINCT kind) AS n FROM notifications WHERE user_id = {} AND kind IN ('system', 'payment', 'ticket')",
                w.user_id
            ),
            3,
        )
        .await;
    // And everything else under way (tokens.credited, tokens.low, …): the counts below are
    // then stable.
    w.stack.wait_for_support_to_catch_up().await;
    let mut conn = w.stack.db().await;
    let theirs = insert_returning_id(
        &mut conn,
        &format!(
            "INSERT INTO notifications (user_id, kind, title, body, data) \
             VALUES ({}, 'system', 'سلام', 'متن', '{{}}') RETURNING id",
            w.other_id
        ),
    )
    .await;

    let items_of = |body: &Value| -> Vec<Value> {
        body.as_array()
            .or_else(|| body["items"].as_array())
            .unwrap_or_else(|| panic!("a bare array or {{items}}: {body}"))
            .clone()
    };
    let res = p.get("/api/notifications?limit=20&offset=0", a).await;
    let all = items_of(res.expect(200));
    assert!(all.len() >= 3, "{all:?}");
    for n in &all {
        shape("notification", n, NOTIFICATION_FIELDS);
        assert!(NOTIFICATION_TYPES.contains(&n["type"].as_str().unwrap()));
        assert_eq!(n["is_read"], false);
    }
    assert!(
        all.iter().all(|n| n["id"] != theirs),
        "own notifications only"
    );
    let payment = all
        .iter()
        .find(|n| n["type"] == "payment" && n["data"]["payment_id"] == w.paid_payment)
        .expect("the purchase's notification, with data.payment_id");
    assert!(payment["data"]["payment_id"].is_i64());
    let ticket = all
        .iter()
        .find(|n| n["type"] == "ticket")
        .expect("the reply's notification");
    assert_eq!(ticket["data"]["ticket_id"], w.ticket);

    let res = p.get("/api/notifications?limit=1&offset=1", a).await;
    let second = items_of(res.expect(200));
    assert_eq!(second.len(), 1);
    assert_eq!(second[0]["id"], all[1]["id"], "offset paging");

    let res = p
        .get(
            "/api/notifications?limit=20&offset=0&type=payment,ticket&read=false",
            a,
        )
        .await;
    let filtered = items_of(res.expect(200));
    assert!(!filtered.is_empty());
    assert!(
        filtered
            .iter()
            .all(|n| (n["type"] == "payment" || n["type"] == "ticket") && n["is_read"] == false),
        "{filtered:?}"
    );
    assert!(filtered.iter().all(|n| n["type"] != "system"));

    let unread = |body: &Value| {
        shape("unread", body, &[("count", T::Int)]);
        body["count"].as_i64().unwrap()
    };
    let res = p.get("/api/notifications/unread-count", a).await;
    let before = unread(res.expect(200));
    assert_eq!(before, i64::try_from(all.len()).unwrap());

    let first = all[0]["id"].as_i64().unwrap();
    p.post(
        "/api/notifications/mark-read",
        a,
        json!({ "ids": [first, theirs] }),
    )
    .await
    .ok();
    let res = p.get("/api/notifications/unread-count", a).await;
    assert_eq!(unread(res.expect(200)), before - 1);
    assert_eq!(
        count(
            &mut conn,
            &format!(
                "SELECT count(*) AS n FROM notifications WHERE id = {theirs} AND read_at IS NULL"
            )
        )
        .await,
        1,
        "another user's notification is not marked"
    );
    let res = p
        .get("/api/notifications?limit=20&offset=0&read=false", a)
        .await;
    assert!(
        items_of(res.expect(200)).iter().all(|n| n["id"] != first),
        "read=false leaves out the one marked read"
    );
    p.post_empty("/api/notifications/mark-all-read", a)
        .await
        .ok();
    let res = p.get("/api/notifications/unread-count", a).await;
    assert_eq!(unread(res.expect(200)), 0);

    // The stream as EventSource opens it (its events are tested in sse.rs).
    let mut sse = w.stack.open_stream(a).await;
    let first_block = sse.next(WAIT).await.expect("the stream opens at once");
    assert!(
        !matches!(first_block, SseBlock::Event { .. }),
        "no notification is sent on connect: {first_block:?}"
    );
}

/// POST /api/user/password (the code-based variant refused), the 2FA calls (status,
/// initiate, activate, regenerate and disable refused without a code, login + verify).
async fn password_and_two_factor(w: &mut World) {
    let p = &w.panel;
    let detail = p
        .post(
            "/api/user/password",
            &w.access,
            json!({ "new_password": NEW_PASSWORD, "confirm_password": NEW_PASSWORD, "verification_code": "123456" }),
        )
        .await
        .refused(422);
    assert!(detail.contains("password"), "{detail}");
    p.post(
        "/api/user/password",
        &w.access,
        json!({ "current_password": PASSWORD, "new_password": NEW_PASSWORD, "confirm_password": NEW_PASSWORD }),
    )
    .await
    .ok();

    let status = |body: &Value| {
        shape("2fa status", body, &[("enabled", T::Bool)]);
        body["enabled"].as_bool().unwrap()
    };
    assert!(!status(
        p.get("/api/auth/2fa/status", &w.access).await.expect(200)
    ));
    let res = p.post_empty("/api/auth/2fa/initiate", &w.access).await;
    let init = res.expect(200);
    shape(
        "2fa initiate",
        init,
        &[("otpauth_uri", T::Text), ("secret", T::Text)],
    );
    assert!(
        init["otpauth_uri"]
            .as_str()
            .unwrap()
            .starts_with("otpauth://totp/")
    );
    let mut app = Totp::new(init["secret"].as_str().unwrap());
    let res = p
        .post(
            "/api/auth/2fa/activate",
            &w.access,
            json!({ "otp_code": app.next_code().await }),
        )
        .await;
    let codes = res.expect(200)["recovery_codes"]
        .as_array()
        .expect("recovery_codes")
        .clone();
    assert!(
        !codes.is_empty() && codes.iter().all(Value::is_string),
        "{codes:?}"
    );
    assert!(status(
        p.get("/api/auth/2fa/status", &w.access).await.expect(200)
    ));

    let detail = p
        .post_empty("/api/auth/2fa/recovery-codes/regenerate", &w.access)
        .await
        .refused(422);
    assert!(detail.contains("otp_code"), "{detail}");
    let res = p
        .post(
            "/api/auth/2fa/recovery-codes/regenerate",
            &w.access,
            json!({ "otp_code": app.next_code().await }),
        )
        .await;
    let fresh = res.expect(200);
    shape(
        "regenerated",
        fresh,
        &[("codes", T::Arr), ("recovery_codes", T::Arr)],
    );
    assert_eq!(fresh["codes"], fresh["recovery_codes"]);
    assert_ne!(fresh["recovery_codes"], Value::Array(codes));

    // Logging in now takes the second factor.
    let res = p
        .post_anon(
            "/api/auth/login",
            json!({ "email": w.email, "password": NEW_PASSWORD }),
        )
        .await;
    let challenge = res.expect(200);
    assert_eq!(challenge["otp_required"], true);
    assert!(challenge.get("access_token").is_none());
    let res = p
        .post_anon(
            "/api/auth/2fa/verify",
            json!({
                "challenge_token": challenge["challenge_token"],
                "otp_code": app.next_code().await,
            }),
        )
        .await;
    w.access = token_answer("2fa verify", res.expect(200));
    assert_eq!(res.body["user"]["id"], w.user_id);
    assert!(res.set_cookie("zimmer_refresh").is_some());

    // Disabling needs a code or the password: a bare click is refused with words to show.
    let detail = p
        .post_empty("/api/auth/2fa/disable", &w.access)
        .await
        .refused(422);
    assert!(
        detail.contains("otp_code") || detail.contains("password"),
        "{detail}"
    );
    assert!(status(
        p.get("/api/auth/2fa/status", &w.access).await.expect(200)
    ));
    p.post(
        "/api/auth/2fa/disable",
        &w.access,
        json!({ "password": NEW_PASSWORD }),
    )
    .await
    .ok();
    assert!(!status(
        p.get("/api/auth/2fa/status", &w.access).await.expect(200)
    ));
}

/// POST /api/auth/refresh and /api/auth/logout with cookies only (no Bearer, no body), from
/// the panel's origin; a foreign origin is refused and changes nothing.
async fn cookie_refresh_and_logout(w: &World) {
    let p = &w.panel;
    let res = p.post_cookies_only("/api/auth/refresh").await;
    let access = {
        let body = res.expect(200);
        shape("refresh", body, &[("access_token", T::Text)]);
        body["access_token"].as_str().unwrap().to_owned()
    };
    let cookie = res
        .set_cookie("zimmer_refresh")
        .expect("the rotated refresh cookie");
    let value = cookie
        .trim_start_matches("zimmer_refresh=")
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    p.get("/api/me", &access).await.expect(200);

    // A page on another origin cannot use the cookie.
    let evil = zimmer_testkit::client()
        .post(w.stack.gw.url("/api/auth/refresh"))
        .header("Origin", "https://evil.example")
        .header("Cookie", format!("zimmer_refresh={value}"))
        .call()
        .await;
    assert_eq!(evil.status(), StatusCode::FORBIDDEN);
    assert!(evil.headers().get("access-control-allow-origin").is_none());

    let evil = zimmer_testkit::client()
        .post(w.stack.gw.url("/api/auth/logout"))
        .header("Origin", "https://evil.example")
        .header("Cookie", format!("zimmer_refresh={value}"))
        .call()
        .await;
    assert_eq!(evil.status(), StatusCode::FORBIDDEN);
    p.get("/api/me", &access).await.expect(200);

    let res = p.post_cookies_only("/api/auth/logout").await;
    res.ok();
    let cleared = res.set_cookie("zimmer_refresh").expect("cookie cleared");
    assert!(
        cleared.contains("Max-Age=0") || cleared.to_ascii_lowercase().contains("expires="),
        "{cleared}"
    );
    // The session named by the cookie is over: its refresh token and its access token.
    let again = zimmer_testkit::client()
        .post(w.stack.gw.url("/api/auth/refresh"))
        .header("Origin", PANEL)
        .header("Cookie", format!("zimmer_refresh={value}"))
        .call()
        .await;
    assert_eq!(again.status(), StatusCode::UNAUTHORIZED);
    p.get("/api/me", &access).await.refused(401);
    // Other services learn it from session.revoked.
    let http = zimmer_testkit::client();
    let url = w.stack.gw.url("/api/user/automations");
    eventually(
        "the marketplace rejects the logged-out session",
        WAIT,
        || {
            let req = http.get(&url).bearer_auth(&access);
            async move {
                tokio::time::sleep(Duration::from_millis(200)).await;
                req.status().await == StatusCode::UNAUTHORIZED
            }
        },
    )
    .await;
}

/// POST /api/forgot-password and /api/reset-password with the mailed link's token.
async fn password_reset(w: &World) {
    let p = &w.panel;
    let before = w.stack.mail.to(&w.email).len();
    p.post_anon("/api/forgot-password", json!({ "email": w.email }))
        .await
        .ok();
    let mail = w.stack.mail.wait_for(&w.email, before + 1).await;
    let token = link_token(&mail, "/reset-password");
    p.post_anon(
        "/api/reset-password",
        json!({ "token": "not-a-real-token", "new_password": RESET_PASSWORD }),
    )
    .await
    .refused(422);
    p.post_anon(
        "/api/reset-password",
        json!({ "token": token, "new_password": RESET_PASSWORD }),
    )
    .await
    .ok();
    let res = p
        .post_anon(
            "/api/auth/login",
            json!({ "email": w.email, "password": RESET_PASSWORD }),
        )
        .await;
    token_answer("login after reset", res.expect(200));
}

/// POST /api/auth/verify-email with the link's `{token}` and no Bearer; DELETE
/// /api/auth/delete-account refused with a Bearer alone, done with `{password}`.
async fn link_verification_and_account_deletion(w: &World) {
    let p = &Panel::on_machine(&w.stack.gw.address, PANEL, Some(REZA_MACHINE));
    let email = "reza@example.com";
    let res = p
        .post_anon(
            "/api/auth/signup",
            json!({ "email": email, "password": PASSWORD, "name": "رضا" }),
        )
        .await;
    let access = token_answer("signup without confirm_password", res.expect(201));
    p.post(
        "/api/auth/send-email-verification",
        &access,
        json!({ "email": email }),
    )
    .await
    .ok();
    let mail = w.stack.mail.wait_for(email, 1).await;
    let token = link_token(&mail, "/verify-email");
    p.post_anon("/api/auth/verify-email", json!({ "token": token }))
        .await
        .ok();
    let res = p.get("/api/me", &access).await;
    shape(
        "me after the link",
        res.expect(200),
        &[("email_verified_at", T::Time)],
    );
    p.post_anon("/api/auth/verify-email", json!({ "token": token }))
        .await
        .refused(422);

    let detail = p
        .call(
            Method::DELETE,
            "/api/auth/delete-account",
            Some(&access),
            Body::None,
        )
        .await
        .refused(422);
    assert!(detail.contains("password"), "{detail}");
    p.get("/api/me", &access).await.expect(200);
    p.call(
        Method::DELETE,
        "/api/auth/delete-account",
        Some(&access),
        Body::Json(json!({ "password": PASSWORD })),
    )
    .await
    .ok();
    p.get("/api/me", &access).await.refused(401);
}

/// Google sign-in is not served: 404 with a detail, not a hang or an HTML page.
async fn not_served(w: &World) {
    let p = &w.panel;
    p.call(Method::GET, "/api/auth/google/login", None, Body::None)
        .await
        .refused(404);
    p.post_anon("/api/auth/google/callback", json!({ "code": "x" }))
        .await
        .refused(404);
}
