//! Pure rules of the marketplace (no I/O): service tokens and request signatures, Telegram
//! bot tokens, and the arithmetic of the token ledger.

pub mod automations;
pub mod bot_token;
pub mod kb_monitoring;
pub mod knowledge;
pub mod ledger;
pub mod tokens;
