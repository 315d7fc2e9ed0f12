//! The migrations and `schema.rs` agree, and every migration can be reverted and re-applied
//! (what `diesel migration redo` does), on a real PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use diesel::{QueryableByName, sql_types::Text};
use diesel_async::RunQueryDsl;
use zimmer_testkit::TestDb;

#[derive(QueryableByName, Debug)]
struct Column {
    #[diesel(sql_type = Text)]
    table_name: String,
    #[diesel(sql_type = Text)]
    column_name: String,
    #[diesel(sql_type = Text)]
    udt_name: String,
    #[diesel(sql_type = Text)]
    is_nullable: String,
}

/// (table, column) → (type, nullable), as the database has them.
async fn database_columns(url: &str) -> BTreeMap<(String, String), (String, bool)> {
    let mut conn = zimmer_testkit::connect(url).await;
    let rows: Vec<Column> = diesel::sql_query(
        "SELECT table_name::text, column_name::text, udt_name::text, is_nullable::text \
         FROM information_schema.columns \
         WHERE table_schema = 'public' AND table_name <> '__diesel_schema_migrations'",
    )
    .load(&mut conn)
    .await
    .unwrap();
    rows.into_iter()
        .map(|c| {
            (
                (c.table_name, c.column_name),
                (c.udt_name, c.is_nullable == "YES"),
            )
        })
        .collect()
}

/// (table, column) → (type, nullable), as `schema.rs` declares them (read as text: the
/// `table!` blocks are regular enough).
fn schema_rs_columns() -> BTreeMap<(String, String), (String, bool)> {
    let text = include_str!("../src/schema.rs");
    let mut out = BTreeMap::new();
    let mut table: Option<String> = None;
    for line in text.lines().map(str::trim) {
        if let Some((name, _)) = line.split_once(" (").filter(|_| line.ends_with(") {")) {
            table = Some(name.to_owned());
            continue;
        }
        if line == "}" {
            table = None;
            continue;
        }
        let (Some(t), Some((col, ty))) = (&table, line.trim_end_matches(',').split_once(" -> "))
        else {
            continue;
        };
        let (ty, nullable) = match ty
            .strip_prefix("Nullable<")
            .and_then(|s| s.strip_suffix('>'))
        {
            Some(inner) => (inner, true),
            None => (ty, false),
        };
        let pg = match ty {
            "Int8" => "int8",
            "Int4" => "int4",
            "Int2" => "int2",
            "Text" => "text",
            "Bool" => "bool",
            "Bytea" => "bytea",
            "Jsonb" => "jsonb",
            "Uuid" => "uuid",
            "Timestamptz" => "timestamptz",
            "Date" => "date",
            other => panic!("schema.rs type {other} has no mapping in this test"),
        };
        out.insert((t.clone(), col.to_owned()), (pg.to_owned(), nullable));
    }
    out
}

#[tokio::test]
async fn schema_rs_matches_the_migrated_database() {
    let db = TestDb::new().await;
    let in_db = database_columns(&db.url).await;
    let in_rs = schema_rs_columns();
    assert!(
        in_rs.len() > 100,
        "parsed too little of schema.rs: {}",
        in_rs.len()
    );
    let only_db: Vec<_> = in_db.keys().filter(|k| !in_rs.contains_key(*k)).collect();
    let only_rs: Vec<_> = in_rs.keys().filter(|k| !in_db.contains_key(*k)).collect();
    assert!(
        only_db.is_empty(),
        "columns missing from schema.rs: {only_db:?}"
    );
    assert!(
        only_rs.is_empty(),
        "columns in schema.rs but not in the database: {only_rs:?}"
    );
    let differ: Vec<_> = in_rs
        .iter()
        .filter(|(k, v)| in_db.get(*k) != Some(v))
        .map(|(k, v)| (k, v, in_db.get(k)))
        .collect();
    assert!(differ.is_empty(), "type or nullability differs: {differ:?}");
}

#[tokio::test]
async fn every_migration_reverts_and_reapplies() {
    let db = TestDb::new().await; // already migrated (cloned from the template)
    let before = database_columns(&db.url).await;
    let reverted = zimmer_db::revert_all_migrations(&db.url).await.unwrap();
    assert!(reverted.len() >= 5, "{reverted:?}");
    assert!(
        database_columns(&db.url).await.is_empty(),
        "down.sql left tables behind"
    );
    let applied = zimmer_db::migrate(&db.url).await.unwrap();
    assert_eq!(applied.len(), reverted.len());
    assert_eq!(database_columns(&db.url).await, before);
    assert!(
        zimmer_db::migrate(&db.url).await.unwrap().is_empty(),
        "idempotent"
    );
}
