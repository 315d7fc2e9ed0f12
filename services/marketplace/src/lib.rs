//! The marketplace service: the automation catalogue, customers' automations, the token
//! ledger (the only way balances change), token consumption by automation vendors, credits
//! from verified payments, provisioning with vendors and their health.

pub mod clients;
pub mod config;
pub mod domain;
pub mod handlers;
pub mod local_cache;
pub mod ops;
pub mod queries;
pub mod routes;
mod state;
pub mod workers;

/// `zimmer_marketplace::seed` (the `seed-demo` command), where it was before `ops/`.
pub use ops::seed;

use std::sync::Arc;

use zimmer_config::Settings;
use zimmer_events::ConsumerSpec;
use zimmer_service::{Application, Platform};

pub use state::AppState;

use crate::{
    clients::vendor::VendorClient,
    config::MarketConfig,
    domain::bot_token::BotTokenVault,
    local_cache::MineCache,
    queries::cache::CatalogueCache,
    workers::{
        health::HealthChecker,
        payments::{PAYMENTS_CONSUMER, PaymentCredits},
        provisioning::Provisioner,
    },
};

fn counter(
    platform: &Platform,
    name: &str,
    help: &str,
) -> anyhow::Result<prometheus::IntCounterVec> {
    let c = prometheus::IntCounterVec::new(prometheus::Opts::new(name, help), &["outcome"])?;
    platform.metrics.registry.register(Box::new(c.clone()))?;
    Ok(c)
}

/// Customers' lists one process keeps in memory (`local_cache`).
const MINE_CACHE_CAPACITY: usize = 10_000;

/// The `producer` of every event the marketplace emits.
pub const PRODUCER: &str = "marketplace";

/// Builds the marketplace: platform, outbox relay, the `payment.verified` consumer, the
/// provisioning worker, the health checker, and the routes. Each background loop is part of
/// `/healthz`.
pub async fn build(settings: Settings) -> anyhow::Result<Application> {
    let config = MarketConfig::from_settings(&settings)?;
    let bot_tokens = BotTokenVault::from_settings(&settings)?;
    let mut platform = Platform::start(settings, None).await?;

    platform.spawn_outbox_relay(PRODUCER);
    platform.spawn_consumer(
        ConsumerSpec::new(
            PAYMENTS_CONSUMER,
            [<zimmer_events::contracts::PaymentVerified as zimmer_events::Event>::NAME],
        ),
        Arc::new(PaymentCredits {
            low_threshold: config.low_tokens_threshold,
        }),
    );

    let consume_total = counter(
        &platform,
        "marketplace_consume_total",
        "Consume calls by outcome (accepted, refused, replayed)",
    )?;
    let provisioning_total = counter(
        &platform,
        "marketplace_provisioning_total",
        "Provisioning rounds by outcome (provisioned, failed)",
    )?;

    // Rows from before bot tokens were sealed: re-sealed in the background (the readers
    // handle them meanwhile), so a slow or absent database does not hold up the start.
    tokio::spawn(workers::reseal::reseal_legacy_bot_tokens(
        platform.pool.clone(),
        bot_tokens.clone(),
    ));

    let vendor = VendorClient::new(config.outbound.clone())?;
    let provisioner = Provisioner::spawn(
        platform.pool.clone(),
        platform.redis.clone(),
        vendor.clone(),
        bot_tokens.clone(),
        config.provision.clone(),
        provisioning_total,
    );
    platform.alive_while(provisioner.liveness_check());

    let mine = MineCache::new(config.mine_cache_ttl, MINE_CACHE_CAPACITY);
    let cache = CatalogueCache::new(
        platform.redis.clone(),
        config.catalogue_ttl,
        config.catalogue_local_ttl,
        mine.clone(),
    );
    let health = HealthChecker {
        pool: platform.pool.clone(),
        vendor,
        cache: cache.clone(),
        config: config.health.clone(),
    };
    if config.health.enabled {
        let checker = health.clone().spawn();
        platform.alive_while(checker.liveness_check());
    }

    let consume = workers::consume_batcher::ConsumeBatcher::spawn(
        platform.pool.clone(),
        config.consume_writers,
        config.consume_batch_max,
        config.low_tokens_threshold,
    );
    platform.alive_while(consume.liveness_check());

    let state = AppState {
        platform: platform.clone(),
        config,
        bot_tokens,
        cache,
        mine,
        provisioner,
        health,
        consume,
        consume_total,
    };
    platform.serve_table(state, routes::DOC, routes::ROUTES)
}
