use prometheus::IntCounterVec;
use zimmer_service::Platform;

use crate::{
    config::MarketConfig,
    domain::bot_token::BotTokenVault,
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
    /// Woken after a commit that leaves a row to provision.
    pub provisioner: TaskHandle,
    pub health: HealthChecker,
    /// `zimmer_marketplace_consume_total{outcome}`: accepted, refused, replayed.
    pub consume_total: IntCounterVec,
}
