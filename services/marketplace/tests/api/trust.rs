//! Trust boundaries of the marketplace: vendor URLs never reach the internal network (at
//! save time and at call time), customers' Telegram bot tokens are sealed at rest, and no
//! staff member adjusts the balance of their own automation.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::time::Duration;

use common::*;
use reqwest::StatusCode;
use serde_json::{Value, json};
use zimmer_fake_vendor::{FakeVendor, FakeVendorConfig};
use zimmer_testkit::{TestApp, TestContext, eventually, str_at};

/// Internal addresses are refused (the default outside development).
const STRICT: &[(&str, &str)] = &[("VENDOR_URL_ALLOW_PRIVATE", "false")];

async fn fake_vendor(app: &TestApp, token: String) -> FakeVendor {
    FakeVendor::start(FakeVendorConfig {
        host: "127.0.0.1".to_owned(),
        port: 0,
        service_tokens: vec![token],
        marketplace_url: app.address.clone(),
    })
    .await
    .unwrap()
}

async fn sql(ctx: &TestContext, statement: &str) {
    use diesel_async::RunQueryDsl;
    let mut conn = ctx.db.connect().await;
    diesel::sql_query(statement)
        .execute(&mut conn)
        .await
        .unwrap();
}

/// `(legacy plaintext, sealed, hash)` of a user automation's bot token columns.
async fn token_columns(
    ctx: &TestContext,
    ua: i64,
) -> (Option<String>, Option<Vec<u8>>, Option<Vec<u8>>) {
    use diesel::prelude::*;
    use diesel_async::RunQueryDsl;
    use zimmer_db::schema::user_automations as t;
    let mut conn = ctx.db.connect().await;
    t::table
        .find(ua)
        .select((
            t::telegram_bot_token,
            t::telegram_bot_token_sealed,
            t::telegram_bot_token_hash,
        ))
        .first(&mut conn)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vendor_urls_that_reach_the_internal_network_are_refused_when_saved() {
    let (ctx, app) = market_with(STRICT).await;
    let create = |body: Value| {
        let app = &app;
        async move {
            internal(app.post("/internal/automations"))
                .json(&body)
                .call()
                .await
        }
    };
    for (field, url, says) in [
        (
            "provision_url",
            "http://127.0.0.1:8003/readyz",
            "127.0.0.1 is an internal address",
        ),
        (
            "health_check_url",
            "http://localhost:8003/readyz",
            "localhost resolves to",
        ),
        ("provision_url", "http://[::1]:8002/", "internal address"),
        (
            "provision_url",
            "http://[::ffff:127.0.0.1]/",
            "internal address",
        ),
        (
            "health_check_url",
            "http://169.254.169.254/latest/meta-data/",
            "internal address",
        ),
        ("provision_url", "http://0.0.0.0:8001/", "internal address"),
        ("provision_url", "http://10.0.0.5/", "internal address"),
        ("provision_url", "http://100.64.1.1/", "internal address"),
        ("provision_url", "http://[fe80::1]/", "internal address"),
        ("provision_url", "http://[fd00::1]/", "internal address"),
        ("provision_url", "http://2130706433/", "internal address"),
    ] {
        let mut body = json!({ "name": "Probe", "price_per_token": 1 });
        body[field] = json!(url);
        let res = create(body).await;
        assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY, "{url}");
        let body = json_of(res).await;
        assert_eq!(body["errors"][0]["field"], field, "{body}");
        let detail = str_at(&body, "detail");
        assert!(detail.contains(says), "{url}: {detail}");
        assert!(
            detail.contains("must point at a public address"),
            "{detail}"
        );
    }
    assert_eq!(
        db_count(&ctx, "SELECT count(*) AS n FROM automations").await,
        0,
        "nothing stored"
    );

    // An update is checked the same way and leaves the stored URLs alone.
    let a = create_automation(&app, json!({})).await;
    let id = a["id"].as_i64().unwrap();
    assert_eq!(
        update_automation(
            &app,
            id,
            json!({ "health_check_url": "http://localhost:8003/readyz" })
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    assert_db_count(
        &ctx,
        "SELECT count(*) AS n FROM automations WHERE health_check_url IS NOT NULL",
        0,
    )
    .await;
    // Clearing a URL needs no check.
    assert_eq!(
        update_automation(
            &app,
            id,
            json!({ "health_check_url": null, "provision_url": "" })
        )
        .await,
        StatusCode::OK
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_workers_never_call_an_internal_address_stored_in_the_database() {
    let (ctx, app) = market_with(&[
        ("VENDOR_URL_ALLOW_PRIVATE", "false"),
        ("HEALTH_CHECK_ENABLED", "true"),
        ("HEALTH_CHECK_INTERVAL_MS", "100"),
    ])
    .await;
    // Two automations whose URLs lead to a vendor on 127.0.0.1, one by address and one by a
    // name resolving there, written straight into the database (as an old row, or a row
    // from before the check, would be).
    let mut vendors = Vec::new();
    let mut automations = Vec::new();
    for host in ["127.0.0.1", "localhost"] {
        let a = create_automation(&app, json!({ "name": format!("Inside {host}") })).await;
        let id = a["id"].as_i64().unwrap();
        let vendor = fake_vendor(&app, issue_token(&app, id).await).await;
        sql(
            &ctx,
            &format!(
                "UPDATE automations SET provision_url = 'http://{host}:{port}/provision', \
                 health_check_url = 'http://{host}:{port}/health' WHERE id = {id}",
                port = vendor.port
            ),
        )
        .await;
        vendors.push(vendor);
        automations.push(id);
    }
    let (_, access) = customer(&ctx, "inside@example.com").await;
    let mut uas = Vec::new();
    for id in &automations {
        uas.push(add(&app, &access, *id).await);
    }

    // Provisioning is refused and recorded as failed; health is recorded as down.
    for ua in &uas {
        eventually("provisioning refused", WAIT, || async {
            integration_status(&ctx, *ua).await == "failed"
        })
        .await;
    }
    eventually("health recorded as down", WAIT, || async {
        db_count(
            &ctx,
            "SELECT count(*) AS n FROM automations WHERE health_status = 'down'",
        )
        .await
            == 2
    })
    .await;
    // Staff's "check now" says why.
    let res = internal(app.post(&format!(
        "/internal/automations/{}/health-check",
        automations[1]
    )))
    .call_expecting(StatusCode::OK)
    .await;
    let report = json_of(res).await;
    assert_eq!(report["health_status"], "down");
    assert!(
        str_at(&report, "refused").contains("localhost resolves to 127.0.0.1"),
        "{report}"
    );

    // More rounds of both workers (failed rows are retried every 200–400 ms here): still
    // not a single request reached the vendors.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    for v in &vendors {
        assert_eq!(v.attempts() + v.unauthorized(), 0, "provision calls");
        assert_eq!(v.health_checks(), 0, "health checks");
        assert!(v.provisions().is_empty());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_allow_listed_host_is_called_with_internal_addresses_refused_otherwise() {
    // Development without blanket permission: only the named host is let through.
    let (ctx, app) = market_with(&[
        ("VENDOR_URL_ALLOW_PRIVATE", "false"),
        ("VENDOR_URL_ALLOWLIST", "localhost"),
    ])
    .await;
    let id = automation_with(&app, json!({ "name": "Local vendor" })).await;
    let vendor = fake_vendor(&app, issue_token(&app, id).await).await;
    let url = format!("http://localhost:{}/provision", vendor.port);
    assert_eq!(
        update_automation(&app, id, json!({ "provision_url": url })).await,
        StatusCode::OK
    );
    // The same vendor by its address is not on the list.
    assert_eq!(
        update_automation(&app, id, json!({ "health_check_url": vendor.health_url() })).await,
        StatusCode::UNPROCESSABLE_ENTITY
    );

    let (user_id, access) = customer(&ctx, "local@example.com").await;
    let ua = add(&app, &access, id).await;
    eventually(
        "provisioned through the allow-listed name",
        WAIT,
        || async { integration_status(&ctx, ua).await == "provisioned" },
    )
    .await;
    assert_eq!(vendor.provisions()[0].user_id, user_id);
}

/// Whether the vendor was sent [`BOT_TOKEN`] for the user automation `ua`.
fn got_bot_token(vendor: &FakeVendor, ua: i64) -> bool {
    vendor
        .provisions()
        .iter()
        .any(|p| p.user_automation_id == ua && p.bot_token.as_deref() == Some(BOT_TOKEN))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bot_tokens_are_sealed_at_rest_and_reach_the_vendor_intact() {
    let (ctx, app) = market().await;
    let a = create_automation(&app, json!({ "name": "Sealed Bot" })).await;
    let id = a["id"].as_i64().unwrap();
    let vendor = fake_vendor(&app, issue_token(&app, id).await).await;
    assert_eq!(
        update_automation(&app, id, json!({ "provision_url": vendor.provision_url() })).await,
        StatusCode::OK
    );
    let (_, alice) = customer(&ctx, "alice@example.com").await;
    let (_, bob) = customer(&ctx, "bob@example.com").await;
    let ua = add(&app, &alice, id).await;
    let bob_ua = add(&app, &bob, id).await;
    let res = user_update(&app, &alice, id, json!({ "telegram_bot_token": BOT_TOKEN })).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(
        json_of(res).await["user_automation"]["telegram_bot_token"],
        "123456789:****sawQ"
    );

    // The row holds a ciphertext and a hash, never the token or its secret part.
    let (legacy, sealed, hash) = token_columns(&ctx, ua).await;
    assert!(legacy.is_none());
    let (sealed, hash) = (sealed.unwrap(), hash.unwrap());
    let secret = BOT_TOKEN.split_once(':').unwrap().1.as_bytes();
    for stored in [&sealed, &hash] {
        assert!(!stored.windows(8).any(|w| secret.windows(8).any(|s| s == w)));
    }
    assert_eq!(hash.len(), 32);
    assert_db_count(
        &ctx,
        &format!(
            "SELECT count(*) AS n FROM user_automations WHERE \
             position('{BOT_TOKEN}' in row_to_json(user_automations.*)::text) > 0 \
             OR position(convert_to('AAHdqTcv', 'UTF8') in telegram_bot_token_sealed) > 0"
        ),
        0,
    )
    .await;

    // The vendor, which runs the bot, gets it in full.
    eventually("the bot token reached the vendor", WAIT, || async {
        got_bot_token(&vendor, ua)
    })
    .await;
    // Uniqueness still holds, through the hash.
    let res = user_update(
        &app,
        &bob,
        id,
        json!({ "telegram_bot_token": format!("{BOT_TOKEN} ") }),
    )
    .await;
    assert_eq!(res.status(), StatusCode::CONFLICT);
    assert_eq!(json_of(res).await["code"], "bot_token_in_use");
    assert_eq!(token_columns(&ctx, bob_ua).await, (None, None, None));

    // A ciphertext copied onto another row does not open there: Bob's view cannot show
    // Alice's token.
    sql(
        &ctx,
        &format!(
            "UPDATE user_automations SET telegram_bot_token_sealed = \
             (SELECT telegram_bot_token_sealed FROM user_automations WHERE id = {ua}), \
             telegram_bot_token_hash = decode(repeat('ab', 32), 'hex') WHERE id = {bob_ua}"
        ),
    )
    .await;
    let view = user_view(&app, &bob, id).await;
    assert_eq!(view["user_automation"]["telegram_bot_token"], "****");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bot_tokens_stored_before_sealing_are_resealed_and_still_work() {
    let (ctx, first) = market().await;
    let a = create_automation(&first, json!({ "name": "Old Bot" })).await;
    let id = a["id"].as_i64().unwrap();
    let vendor = fake_vendor(&first, issue_token(&first, id).await).await;
    let (_, access) = customer(&ctx, "old@example.com").await;
    let ua = add(&first, &access, id).await;
    // A row as the previous version stored it: the token in plaintext, no ciphertext.
    sql(
        &ctx,
        &format!(
            "UPDATE user_automations SET telegram_bot_token = '{BOT_TOKEN}', \
             telegram_bot_token_sealed = NULL, telegram_bot_token_hash = NULL WHERE id = {ua}"
        ),
    )
    .await;
    // Served meanwhile: the masked view reads the legacy value.
    let view = user_view(&first, &access, id).await;
    assert_eq!(
        view["user_automation"]["telegram_bot_token"],
        "123456789:****sawQ"
    );

    // The next start seals it and clears the plaintext.
    let second = ctx
        .spawn(ctx.settings("marketplace", FAST), zimmer_marketplace::build)
        .await;
    eventually("the legacy token is re-sealed", WAIT, || async {
        let (legacy, sealed, hash) = token_columns(&ctx, ua).await;
        legacy.is_none() && sealed.is_some() && hash.is_some()
    })
    .await;
    let view = user_view(&second, &access, id).await;
    assert_eq!(
        view["user_automation"]["telegram_bot_token"],
        "123456789:****sawQ"
    );
    // Its uniqueness now holds through the hash.
    let (_, other) = customer(&ctx, "copycat@example.com").await;
    add(&second, &other, id).await;
    assert_eq!(
        connect_bot(&second, &other, id, BOT_TOKEN).await,
        StatusCode::CONFLICT
    );

    // And the vendor still gets the right token.
    assert_eq!(
        update_automation(
            &second,
            id,
            json!({ "provision_url": vendor.provision_url() })
        )
        .await,
        StatusCode::OK
    );
    sql(
        &ctx,
        &format!("UPDATE user_automations SET integration_status = 'pending' WHERE id = {ua}"),
    )
    .await;
    eventually("the re-sealed token reached the vendor", WAIT, || async {
        got_bot_token(&vendor, ua)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staff_cannot_adjust_their_own_balance_even_through_the_internal_api() {
    let (ctx, app) = market().await;
    let a = create_automation(&app, json!({ "demo_tokens": 0 })).await;
    let staff_id = staff(&ctx, "boss@example.com").await;
    let access = ctx.mint_access_token(staff_id, zimmer_jwt::Role::Manager, uuid::Uuid::new_v4());
    let ua = add(&app, &access, a["id"].as_i64().unwrap()).await;
    let res = adjust(&app, ua, 500, "self-credit", staff_id).await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let body = json_of(res).await;
    assert_eq!(body["code"], "self_adjustment");
    assert!(str_at(&body, "detail").contains("your own automation"));
    assert_eq!(balances(&ctx, ua).await.0, 0);
    assert_eq!(outbox_count(&ctx, "tokens.adjusted").await, 0);
    // Someone else may.
    let other = staff(&ctx, "other@example.com").await;
    assert_eq!(
        adjust(&app, ua, 500, "credit", other).await.status(),
        StatusCode::CREATED
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn production_refuses_to_start_without_the_bot_token_key() {
    let ctx = TestContext::new().await;
    let settings = ctx.settings(
        "marketplace",
        &[
            ("APP_ENV", "production"),
            ("INTERNAL_API_TOKEN", "a-real-token"),
        ],
    );
    let err = zimmer_marketplace::build(settings).await.err().unwrap();
    assert!(
        err.to_string().contains("BOT_TOKENS_ENCRYPTION_KEY"),
        "{err}"
    );
    let settings = ctx.settings(
        "marketplace",
        &[("BOT_TOKENS_ENCRYPTION_KEY", "dG9vIHNob3J0")],
    );
    let err = zimmer_marketplace::build(settings).await.err().unwrap();
    assert!(
        err.to_string().contains("BOT_TOKENS_ENCRYPTION_KEY"),
        "{err}"
    );
}
