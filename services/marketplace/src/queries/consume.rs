//! The SQL of a consume batch (`ops::consume`): a handful of statements for the whole batch,
//! however many calls it holds, so the per-call cost is one row in arrays, not round trips.

use std::collections::HashMap;

use diesel::{
    prelude::*,
    sql_types::{Array, BigInt, Bool, Jsonb, Nullable, Text},
};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use zimmer_db::{
    models::marketplace::{LedgerEntry, UserAutomation},
    schema::{automations, token_ledger, user_automations},
};

/// The automations whose service token hashes are among `hashes`: hash → (id, status).
pub async fn vendors_by_token_hashes(
    conn: &mut AsyncPgConnection,
    hashes: &[Vec<u8>],
) -> QueryResult<HashMap<Vec<u8>, (i64, String)>> {
    let rows: Vec<(Option<Vec<u8>>, i64, String)> = automations::table
        .filter(automations::service_token_hash.eq_any(hashes))
        .select((
            automations::service_token_hash,
            automations::id,
            automations::status,
        ))
        .load(conn)
        .await?;
    Ok(rows
        .into_iter()
        .filter_map(|(hash, id, status)| hash.map(|h| (h, (id, status))))
        .collect())
}

/// Locks the user automations `ids` (`FOR UPDATE`), in id order: every batch locks in the same
/// order, so two batches sharing rows wait for each other instead of deadlocking.
pub async fn lock_many(
    conn: &mut AsyncPgConnection,
    ids: &[i64],
) -> QueryResult<HashMap<i64, UserAutomation>> {
    let rows: Vec<UserAutomation> = user_automations::table
        .filter(user_automations::id.eq_any(ids))
        .order(user_automations::id.asc())
        .select(UserAutomation::as_select())
        .for_update()
        .load(conn)
        .await?;
    Ok(rows.into_iter().map(|ua| (ua.id, ua)).collect())
}

/// The ledger entries already recorded under any of `keys`, by source key.
pub async fn entries_by_source_keys(
    conn: &mut AsyncPgConnection,
    keys: &[String],
) -> QueryResult<HashMap<String, LedgerEntry>> {
    if keys.is_empty() {
        return Ok(HashMap::new());
    }
    let rows: Vec<LedgerEntry> = token_ledger::table
        .filter(token_ledger::source_key.eq_any(keys))
        .select(LedgerEntry::as_select())
        .load(conn)
        .await?;
    Ok(rows
        .into_iter()
        .map(|e| (e.source_key.clone(), e))
        .collect())
}

/// The consumption entries of a batch, one element per entry, in the order they apply.
#[derive(Debug, Default)]
pub struct Entries {
    pub user_automation_id: Vec<i64>,
    pub delta: Vec<i64>,
    pub demo_delta: Vec<i64>,
    pub balance_after: Vec<i64>,
    pub demo_balance_after: Vec<i64>,
    pub source_key: Vec<String>,
    pub usage_type: Vec<Option<String>>,
    pub meta: Vec<serde_json::Value>,
}

/// The balance columns of each user automation the batch changed, once per row.
#[derive(Debug, Default)]
pub struct Balances {
    pub id: Vec<i64>,
    pub paid: Vec<i64>,
    pub demo: Vec<i64>,
    pub demo_active: Vec<bool>,
    pub demo_expired: Vec<bool>,
    pub low_alert_sent: Vec<bool>,
}

#[derive(QueryableByName)]
pub struct Written {
    #[diesel(sql_type = BigInt)]
    pub inserted: i64,
    #[diesel(sql_type = BigInt)]
    pub updated: i64,
}

/// Inserts the entries and sets the balances in one statement. An entry whose source key
/// exists already is skipped (`inserted` then falls short: the caller rolls back).
pub async fn write(
    conn: &mut AsyncPgConnection,
    e: &Entries,
    b: &Balances,
) -> QueryResult<Written> {
    diesel::sql_query(
        "WITH ins AS (
            INSERT INTO token_ledger (user_automation_id, kind, delta, demo_delta, balance_after,
                                      demo_balance_after, source_key, usage_type, meta)
            SELECT e.ua, 'consumption', e.delta, e.demo_delta, e.bal, e.demo_bal, e.key,
                   e.usage_type, e.meta
            FROM unnest($1::int8[], $2::int8[], $3::int8[], $4::int8[], $5::int8[], $6::text[],
                        $7::text[], $8::jsonb[])
                 WITH ORDINALITY AS e(ua, delta, demo_delta, bal, demo_bal, key, usage_type, meta, n)
            ORDER BY e.n
            ON CONFLICT (source_key) DO NOTHING
            RETURNING 1
        ), upd AS (
            UPDATE user_automations u
            SET tokens_remaining = b.paid, demo_tokens = b.demo, is_demo_active = b.active,
                demo_expired = b.expired, low_alert_sent = b.low, updated_at = now()
            FROM unnest($9::int8[], $10::int8[], $11::int8[], $12::bool[], $13::bool[],
                        $14::bool[]) AS b(id, paid, demo, active, expired, low)
            WHERE u.id = b.id
            RETURNING 1
        )
        SELECT (SELECT count(*) FROM ins) AS inserted, (SELECT count(*) FROM upd) AS updated",
    )
    .bind::<Array<BigInt>, _>(&e.user_automation_id)
    .bind::<Array<BigInt>, _>(&e.delta)
    .bind::<Array<BigInt>, _>(&e.demo_delta)
    .bind::<Array<BigInt>, _>(&e.balance_after)
    .bind::<Array<BigInt>, _>(&e.demo_balance_after)
    .bind::<Array<Text>, _>(&e.source_key)
    .bind::<Array<Nullable<Text>>, _>(&e.usage_type)
    .bind::<Array<Jsonb>, _>(&e.meta)
    .bind::<Array<BigInt>, _>(&b.id)
    .bind::<Array<BigInt>, _>(&b.paid)
    .bind::<Array<BigInt>, _>(&b.demo)
    .bind::<Array<Bool>, _>(&b.demo_active)
    .bind::<Array<Bool>, _>(&b.demo_expired)
    .bind::<Array<Bool>, _>(&b.low_alert_sent)
    .get_result(conn)
    .await
}
