//! The transactional outbox through a broker outage: registration succeeds while RabbitMQ is
//! unreachable, and `user.registered` is published exactly once when it comes back.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::time::Duration;

use common::*;
use reqwest::StatusCode;
use serde_json::json;
use zimmer_testkit::{EventObserver, TestContext, ToggleProxy, assert_db_count, db_count};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registration_survives_a_broker_outage_and_the_event_goes_out_once() {
    let ctx = TestContext::new().await;
    // Auth reaches RabbitMQ only through a proxy the test cuts and restores.
    let proxy = ToggleProxy::start("127.0.0.1:5672", false).await;
    let amqp_url = format!("amqp://guest:guest@127.0.0.1:{}/%2f", proxy.port);
    let app = ctx
        .spawn(
            ctx.settings("auth", &[("AMQP_URL", amqp_url.as_str())]),
            zimmer_auth::build,
        )
        .await;

    // A test queue on the real broker, bound to the test's own exchange.
    let mut observer = EventObserver::start(&ctx, "user.registered").await;

    // Broker down: the request still succeeds, the event waits in the outbox.
    let res = register_raw(
        &app,
        json!({ "name": "Outage", "email": "outage@example.com", "password": PASSWORD }),
    )
    .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    // The outbox keeps writes safe, so a broker outage degrades the instance without
    // taking it out of the load balancer.
    let ready = app.get("/readyz").json_expecting(StatusCode::OK).await;
    assert_eq!(ready["status"], "degraded", "{ready}");
    assert!(ready["degraded"].get("broker").is_some(), "{ready}");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_db_count(
        &ctx,
        "SELECT count(*) AS n FROM outbox WHERE event_type = 'user.registered' AND published_at IS NULL",
        1,
    )
    .await;
    assert!(
        observer.next(Duration::from_millis(300)).await.is_none(),
        "nothing can have been published yet"
    );

    // The broker comes back: the same running instance reconnects and publishes.
    proxy.enable();
    let envelope = observer
        .next(Duration::from_secs(60))
        .await
        .expect("user.registered published after the broker came back");
    assert_eq!(envelope["type"], "user.registered");
    assert_eq!(envelope["producer"], "auth");
    assert_eq!(envelope["data"]["email"], "outage@example.com");
    assert!(
        observer.next(Duration::from_secs(2)).await.is_none(),
        "published exactly once"
    );
    zimmer_testkit::eventually(
        "the outbox row is marked published",
        Duration::from_secs(5),
        || async {
            db_count(
                &ctx,
                "SELECT count(*) AS n FROM outbox WHERE published_at IS NOT NULL",
            )
            .await
                == 1
        },
    )
    .await;
}
