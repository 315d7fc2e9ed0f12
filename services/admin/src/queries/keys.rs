//! OpenAI keys (admin's own table). Only ciphertexts and the last four characters are stored.

use chrono::{DateTime, Utc};
use diesel::{QueryResult, prelude::*};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use zimmer_db::{
    models::admin::{NewOpenAiKey, OpenAiKey},
    schema::openai_keys,
};

pub async fn list(conn: &mut AsyncPgConnection) -> QueryResult<Vec<OpenAiKey>> {
    openai_keys::table
        .select(OpenAiKey::as_select())
        .order(openai_keys::id)
        .load(conn)
        .await
}

pub async fn get(conn: &mut AsyncPgConnection, id: i64) -> QueryResult<Option<OpenAiKey>> {
    openai_keys::table
        .find(id)
        .select(OpenAiKey::as_select())
        .first(conn)
        .await
        .optional()
}

pub async fn insert(
    conn: &mut AsyncPgConnection,
    new: &NewOpenAiKey<'_>,
) -> QueryResult<OpenAiKey> {
    diesel::insert_into(openai_keys::table)
        .values(new)
        .returning(OpenAiKey::as_returning())
        .get_result(conn)
        .await
}

/// A partial update: `None` leaves the column alone; `Some(None)` clears the daily limit.
#[derive(Debug, Default, AsChangeset)]
#[diesel(table_name = openai_keys)]
pub struct KeyChanges {
    pub alias: Option<String>,
    pub status: Option<String>,
    pub daily_limit: Option<Option<i64>>,
    pub key_ciphertext: Option<Vec<u8>>,
    pub key_tail: Option<String>,
    pub updated_at: Option<DateTime<Utc>>,
}

pub async fn update(
    conn: &mut AsyncPgConnection,
    id: i64,
    changes: &KeyChanges,
) -> QueryResult<Option<OpenAiKey>> {
    diesel::update(openai_keys::table.find(id))
        .set(changes)
        .returning(OpenAiKey::as_returning())
        .get_result(conn)
        .await
        .optional()
}

pub async fn delete(conn: &mut AsyncPgConnection, id: i64) -> QueryResult<Option<OpenAiKey>> {
    diesel::delete(openai_keys::table.find(id))
        .returning(OpenAiKey::as_returning())
        .get_result(conn)
        .await
        .optional()
}
