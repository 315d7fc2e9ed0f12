//! The token ledger's SQL: entries (unique `source_key`, so a payment, a usage report or an
//! adjustment applies at most once) and the balance columns of a user automation. The rules
//! of a change, and its events, are in `ops::ledger`.

use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use zimmer_db::{
    models::marketplace::{LedgerEntry, NewLedgerEntry, UserAutomation},
    schema::{token_ledger, user_automations},
};

pub async fn by_source_key(
    conn: &mut AsyncPgConnection,
    key: &str,
) -> QueryResult<Option<LedgerEntry>> {
    token_ledger::table
        .filter(token_ledger::source_key.eq(key))
        .select(LedgerEntry::as_select())
        .first(conn)
        .await
        .optional()
}

/// Inserts `entry`; `None` when an entry with the same source key exists already.
pub async fn insert_entry(
    conn: &mut AsyncPgConnection,
    entry: NewLedgerEntry<'_>,
) -> QueryResult<Option<LedgerEntry>> {
    diesel::insert_into(token_ledger::table)
        .values(entry)
        .on_conflict(token_ledger::source_key)
        .do_nothing()
        .returning(LedgerEntry::as_returning())
        .get_result(conn)
        .await
        .optional()
}

/// The balance columns of one user automation after a ledger entry.
#[derive(Debug, Clone, Copy)]
pub struct BalanceColumns {
    pub paid: i64,
    pub demo: i64,
    pub demo_active: bool,
    pub demo_expired: bool,
    pub low_alert_sent: bool,
}

pub async fn set_balances(
    conn: &mut AsyncPgConnection,
    ua_id: i64,
    b: BalanceColumns,
) -> QueryResult<UserAutomation> {
    diesel::update(user_automations::table.find(ua_id))
        .set((
            user_automations::tokens_remaining.eq(b.paid),
            user_automations::demo_tokens.eq(b.demo),
            user_automations::is_demo_active.eq(b.demo_active),
            user_automations::demo_expired.eq(b.demo_expired),
            user_automations::low_alert_sent.eq(b.low_alert_sent),
            user_automations::updated_at.eq(diesel::dsl::now),
        ))
        .returning(UserAutomation::as_returning())
        .get_result(conn)
        .await
}
