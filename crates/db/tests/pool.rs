//! The pool hands connections out without a test query (`RecyclingMethod::Fast`), yet never
//! a dead one: a connection whose backend was terminated is dropped at check-out (idle in the
//! pool) or after the error it caused (in use), and the next check-out gets a fresh,
//! set-up connection. Real PostgreSQL, one-connection pool so the same slot is reused.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use diesel::{QueryableByName, sql_types::Integer, sql_types::Text};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use zimmer_config::{DatabaseSettings, Secret};
use zimmer_db::{DbPool, connect_pool};
use zimmer_testkit::TestDb;

#[derive(QueryableByName)]
struct Backend {
    #[diesel(sql_type = Integer)]
    pid: i32,
    #[diesel(sql_type = Text)]
    app: String,
}

async fn backend(conn: &mut AsyncPgConnection) -> diesel::QueryResult<Backend> {
    diesel::sql_query("SELECT pg_backend_pid() AS pid, current_setting('application_name') AS app")
        .get_result(conn)
        .await
}

fn one_connection_pool(db: &TestDb) -> DbPool {
    let settings = DatabaseSettings {
        url: Secret::new(db.url.clone()),
        pool_size: 1,
        wait_timeout: Duration::from_secs(5),
        statement_timeout: Duration::from_secs(5),
    };
    connect_pool(&settings, "pool-test").unwrap()
}

/// Terminates backend `pid` from another session and waits until it has exited.
async fn terminate(db: &TestDb, pid: i32) {
    let mut admin = zimmer_testkit::connect(&db.url).await;
    diesel::sql_query(format!("SELECT pg_terminate_backend({pid})"))
        .execute(&mut admin)
        .await
        .unwrap();
    zimmer_testkit::eventually(
        "the terminated backend to exit",
        Duration::from_secs(10),
        || {
            let url = db.url.clone();
            async move {
                let mut c = zimmer_testkit::connect(&url).await;
                zimmer_testkit::count(
                    &mut c,
                    &format!("SELECT count(*) AS n FROM pg_stat_activity WHERE pid = {pid}"),
                )
                .await
                    == 0
            }
        },
    )
    .await;
}

#[tokio::test]
async fn an_idle_connection_whose_backend_died_is_not_handed_out() {
    let db = TestDb::new().await;
    let pool = one_connection_pool(&db);
    let first = backend(&mut pool.get().await.unwrap()).await.unwrap();
    assert_eq!(first.app, "pool-test");

    terminate(&db, first.pid).await;
    // The client's socket task sees the server's close as soon as it runs; give it that turn.
    tokio::time::sleep(Duration::from_millis(100)).await;

    let mut conn = pool.get().await.unwrap();
    let next = backend(&mut conn)
        .await
        .expect("the pool handed out a dead connection");
    assert_ne!(next.pid, first.pid);
    assert_eq!(
        next.app, "pool-test",
        "a replacement connection is set up too"
    );
}

#[tokio::test]
async fn a_connection_that_died_in_use_is_replaced_after_its_error() {
    let db = TestDb::new().await;
    let pool = one_connection_pool(&db);
    let mut conn = pool.get().await.unwrap();
    let first = backend(&mut conn).await.unwrap();

    terminate(&db, first.pid).await;
    assert!(
        backend(&mut conn).await.is_err(),
        "a query on a terminated backend fails"
    );
    drop(conn);

    let mut conn = pool.get().await.unwrap();
    let next = backend(&mut conn)
        .await
        .expect("the pool handed out a dead connection");
    assert_ne!(next.pid, first.pid);
    assert_eq!(pool.status().size, 1);
}
