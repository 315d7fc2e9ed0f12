use prometheus::IntCounterVec;
use zimmer_service::Platform;

use crate::{
    config::MarketConfig,
    domain::bot_token::BotTokenVault,
    local_cache::MineCache,
    queries::cache::CatalogueCache,
    workers::{TaskHandle, health::HealthChecker},
};

/// What the marketplace's handlers need, registered once as app data.
#[derive(Clone)]
pub struct AppState {
    pub platform: Platform,
    pub config: MarketConfig,
    /// Seals, opens and fingerprints customers' Telegram bot tokens.
    pub bot_tokens: BotTokenVault,
    pub cache: CatalogueCache,
    /// Customers' lists in memory, by user id (`local_cache`).
    pub mine: MineCache,
    /// Woken after a commit that leaves a row to provision.
    pub provisioner: TaskHandle,
    pub health: HealthChecker,
    /// Applies consume calls in batches, one commit for the calls that arrive together.
    pub consume: crate::workers::consume_batcher::ConsumeBatcher,
    /// `zimmer_marketplace_consume_total{outcome}`: accepted, refused, replayed.
    pub consume_total: IntCounterVec,
}
