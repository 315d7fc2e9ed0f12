//! Provisioning with the vendor (signed calls, retries, failed → provisioned later, never
//! blocking the customer's request) and the health checker.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use common::*;
use reqwest::StatusCode;
use serde_json::{Value, json};
use zimmer_fake_vendor::{FakeVendor, FakeVendorConfig, HealthMode, ProvisionMode};
use zimmer_testkit::{TestApp, eventually};

/// An automation wired to a fake vendor that holds its service token.
async fn vendor_automation(app: &TestApp, vendor_knows_token: bool) -> (i64, FakeVendor) {
    let id = automation_with(app, json!({ "name": "Vendor Bot", "demo_tokens": 5 })).await;
    let token = issue_token(app, id).await;
    let vendor = FakeVendor::start(FakeVendorConfig {
        host: "127.0.0.1".to_owned(),
        port: 0,
        service_tokens: vec![if vendor_knows_token {
            token
        } else {
            "zst_some-other-token".to_owned()
        }],
        marketplace_url: app.address.clone(),
    })
    .await
    .unwrap();
    let urls =
        json!({ "provision_url": vendor.provision_url(), "health_check_url": vendor.health_url() });
    assert_eq!(update_automation(app, id, urls).await, StatusCode::OK);
    (id, vendor)
}

async fn wait_status(ctx: &zimmer_testkit::TestContext, ua: i64, want: &str) {
    eventually(&format!("integration_status {want}"), WAIT, || async {
        integration_status(ctx, ua).await == want
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_automation_and_a_new_bot_token_are_provisioned_with_signed_calls() {
    let (ctx, app) = market().await;
    let (id, vendor) = vendor_automation(&app, true).await;
    let (user_id, access) = customer(&ctx, "prov@example.com").await;
    let ua = add(&app, &access, id).await;
    wait_status(&ctx, ua, "provisioned").await;
    assert_eq!(
        vendor.provisions(),
        vec![zimmer_fake_vendor::Provision {
            user_automation_id: ua,
            user_id,
            automation_id: Some(id),
            bot_token: None,
            demo_tokens: 5,
        }]
    );
    assert_eq!(vendor.unauthorized(), 0);
    let view = user_view(&app, &access, id).await;
    assert_eq!(view["user_automation"]["integration_status"], "provisioned");
    assert!(view["user_automation"]["provisioned_at"].is_string());

    // A new bot token goes to the vendor (in full: it runs the bot) and is recorded again.
    assert_eq!(
        connect_bot(&app, &access, id, BOT_TOKEN).await,
        StatusCode::OK
    );
    eventually("the bot token reached the vendor", WAIT, || async {
        vendor
            .provisions()
            .iter()
            .any(|p| p.bot_token.as_deref() == Some(BOT_TOKEN))
    })
    .await;
    wait_status(&ctx, ua, "provisioned").await;

    // The vendor, holding the service token, spends tokens for this customer.
    let res = app
        .client
        .post(format!("{}/simulate/consume", vendor.address))
        .json(&usage(ua, 2))
        .call_expecting(StatusCode::OK)
        .await;
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["accepted"], true);
    assert_eq!(body["remaining_demo_tokens"], 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vendor_down_fails_after_the_retries_and_a_later_retry_succeeds_without_blocking_anyone() {
    let (ctx, app) = market().await;
    let (id, vendor) = vendor_automation(&app, true).await;
    vendor.set_provision_mode(ProvisionMode::Hang);
    let (_, access) = customer(&ctx, "patient@example.com").await;

    // The vendor holds the provisioning call unanswered: the customer's request is done
    // anyway, with the work pending.
    let ua = add(&app, &access, id).await;
    eventually("the vendor is holding the call", WAIT, || async {
        vendor.held() == 1
    })
    .await;
    assert_eq!(integration_status(&ctx, ua).await, "pending");
    let list = app
        .get("/api/user/automations")
        .bearer_auth(&access)
        .call()
        .await;
    assert_eq!(
        list.status(),
        StatusCode::OK,
        "other requests are served meanwhile"
    );

    // The vendor is down (503): after PROVISION_ATTEMPTS calls the row is failed.
    vendor.set_provision_mode(ProvisionMode::Fail);
    wait_status(&ctx, ua, "failed").await;
    assert!(vendor.attempts() >= 3, "attempts: {}", vendor.attempts());

    // It comes back: the periodic retry of failed rows provisions it, nobody acting.
    vendor.set_provision_mode(ProvisionMode::Accept);
    wait_status(&ctx, ua, "provisioned").await;
    assert_eq!(vendor.provisions().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vendor_refuses_unsigned_or_wrongly_signed_calls() {
    let (ctx, app) = market().await;
    // The vendor holds a different token than the automation's: our signature cannot match.
    let (id, vendor) = vendor_automation(&app, false).await;
    let (_, access) = customer(&ctx, "unsigned@example.com").await;
    let ua = add(&app, &access, id).await;
    wait_status(&ctx, ua, "failed").await;
    assert!(vendor.unauthorized() >= 1);
    assert_eq!(vendor.attempts(), 0);
    assert!(vendor.provisions().is_empty());
    // And a call without any signature is refused too.
    assert_eq!(app
        .client
        .post(vendor.provision_url())
        .json(
            &json!({ "user_automation_id": ua, "user_id": 1, "bot_token": null, "demo_tokens": 5 }),
        ).status().await, StatusCode::UNAUTHORIZED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_health_checker_records_changes_emits_events_and_refreshes_the_catalogue() {
    let (ctx, app) = market_with(&[
        ("HEALTH_CHECK_ENABLED", "true"),
        ("HEALTH_CHECK_INTERVAL_MS", "100"),
    ])
    .await;
    let (id, vendor) = vendor_automation(&app, true).await;
    let listed_health = || async {
        let body = app.get("/api/automations/marketplace").json_body().await;
        body["items"][0]["health_status"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    eventually("healthy in the catalogue", WAIT, || async {
        listed_health().await == "healthy"
    })
    .await;
    vendor.set_health_mode(HealthMode::Degraded);
    eventually("degraded in the catalogue", WAIT, || async {
        listed_health().await == "degraded"
    })
    .await;
    vendor.set_health_mode(HealthMode::Down);
    eventually("down in the catalogue", WAIT, || async {
        listed_health().await == "down"
    })
    .await;
    assert!(vendor.health_checks() >= 3);

    let changes: Vec<Value> = {
        use diesel::prelude::*;
        use diesel_async::RunQueryDsl;
        use zimmer_db::schema::outbox;
        let mut conn = ctx.db.connect().await;
        outbox::table
            .filter(outbox::event_type.eq("automation.health_changed"))
            .order(outbox::created_at.asc())
            .select(outbox::payload)
            .load(&mut conn)
            .await
            .unwrap()
    };
    let steps: Vec<(String, String)> = changes
        .iter()
        .map(|p| {
            assert_eq!(p["data"]["automation_id"], id);
            (
                p["data"]["from"].as_str().unwrap().to_owned(),
                p["data"]["to"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let expected = [
        ("unknown", "healthy"),
        ("healthy", "degraded"),
        ("degraded", "down"),
    ]
    .map(|(a, b)| (a.to_owned(), b.to_owned()));
    assert_eq!(
        steps, expected,
        "one event per change, none for unchanged checks"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staff_can_run_a_health_check_now() {
    let (_ctx, app) = market().await; // the periodic checker is off here
    let (id, vendor) = vendor_automation(&app, true).await;
    let check = || async {
        let res = internal(app.post(&format!("/internal/automations/{id}/health-check")))
            .call_expecting(StatusCode::OK)
            .await;
        json_of(res).await
    };
    let first = check().await;
    assert_eq!(first["health_status"], "healthy");
    assert_eq!(first["previous"], "unknown");
    assert_eq!(first["changed"], true);
    assert_eq!(check().await["changed"], false);
    drop(vendor); // the vendor is gone: nothing answers
    eventually("down once the vendor is gone", WAIT, || async {
        check().await["health_status"] == "down"
    })
    .await;

    let bare = create_automation(&app, json!({ "name": "No URL" })).await;
    let res = internal(app.post(&format!(
        "/internal/automations/{}/health-check",
        bare["id"]
    )))
    .call_expecting(StatusCode::CONFLICT)
    .await;
    assert_eq!(json_of(res).await["code"], "no_health_check_url");
    internal(app.post("/internal/automations/999999/health-check"))
        .expect_status(StatusCode::NOT_FOUND)
        .await;
}

/// The fake vendor is a separate crate that does not read the marketplace's code: its demo
/// automations and their tokens must still be the ones `seed-demo` creates, and it must accept
/// the marketplace's signature, or the local platform's demos stop provisioning.
#[test]
fn the_fake_vendor_agrees_with_seed_demo_and_the_signature() {
    use zimmer_fake_vendor::demo;
    use zimmer_marketplace::seed;
    assert_eq!(demo::DEV_DEMO_SERVICE_TOKEN, seed::DEV_DEMO_SERVICE_TOKEN);
    let slugs: Vec<&str> = seed::DEMOS.iter().map(|d| d.slug).collect();
    assert_eq!(demo::DEMO_SLUGS, slugs.as_slice());
    for slug in &slugs {
        assert_eq!(
            demo::demo_service_token("base", slug),
            seed::demo_service_token("base", slug)
        );
    }
    use zimmer_marketplace::domain::tokens;
    let token = tokens::new_service_token();
    let body = br#"{"user_automation_id":1}"#;
    let sig = tokens::sign(&tokens::token_hash(&token), 1_000, body);
    assert!(zimmer_fake_vendor::signature::verify(
        &token, 1_000, body, &sig, 1_000
    ));
    assert!(!zimmer_fake_vendor::signature::verify(
        "zst_other",
        1_000,
        body,
        &sig,
        1_000
    ));
    use zimmer_fake_vendor::signature as vendor;
    assert_eq!(tokens::SERVICE_TOKEN_HEADER, vendor::SERVICE_TOKEN_HEADER);
    assert_eq!(tokens::SIGNATURE_HEADER, vendor::SIGNATURE_HEADER);
    assert_eq!(tokens::TIMESTAMP_HEADER, vendor::TIMESTAMP_HEADER);
    assert_eq!(
        tokens::SIGNATURE_TOLERANCE_SECS,
        vendor::SIGNATURE_TOLERANCE_SECS
    );
}
