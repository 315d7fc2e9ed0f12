//! A deliberate pool: deadpool over diesel-async with a size from config, a wait timeout, and
//! a per-connection `statement_timeout` and `application_name`, so a runaway query cannot hold
//! a connection forever and `pg_stat_activity` shows who is connected.
//!
//! A connection is handed out again without a test query (`RecyclingMethod::Fast`): the
//! default (`Verified`) ran `SELECT 1` on every check-out, one more round trip per request in
//! every service. A dead connection is still never handed out once its end has been seen:
//! on recycling diesel-async drops a connection whose socket task has ended
//! (`pg_terminate_backend`, a restart, a network cut all end it) or whose transaction state
//! is broken (tests/pool.rs shows the pool getting past a terminated backend).

use std::time::Duration;

use diesel::{ConnectionError, ConnectionResult, migration::MigrationVersion};
use diesel_async::{
    AsyncConnection, AsyncPgConnection, RunQueryDsl,
    async_connection_wrapper::AsyncConnectionWrapper,
    pooled_connection::{
        AsyncDieselConnectionManager, ManagerConfig, RecyclingMethod,
        deadpool::{Object, Pool},
    },
};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};
use zimmer_config::DatabaseSettings;

pub type DbPool = Pool<AsyncPgConnection>;
pub type DbConn = Object<AsyncPgConnection>;
pub type PoolError = diesel_async::pooled_connection::deadpool::PoolError;

pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations");

/// Any fixed number: all replicas of all services serialise migrations on it.
const MIGRATION_LOCK_KEY: i64 = 0x7a69_6d6d_6572;

pub fn connect_pool(settings: &DatabaseSettings, application_name: &str) -> anyhow::Result<DbPool> {
    let setup_sql = format!(
        "SET statement_timeout = {}; SET application_name = '{}'",
        settings.statement_timeout.as_millis(),
        application_name.replace('\'', "")
    );
    let mut config = ManagerConfig::<AsyncPgConnection>::default();
    config.recycling_method = RecyclingMethod::Fast;
    config.custom_setup = Box::new(move |url| {
        let setup_sql = setup_sql.clone();
        let url = url.to_owned();
        Box::pin(async move { establish_with(&url, &setup_sql).await })
    });
    let manager = AsyncDieselConnectionManager::<AsyncPgConnection>::new_with_config(
        settings.url.expose(),
        config,
    );
    let pool = Pool::builder(manager)
        .max_size(settings.pool_size)
        .wait_timeout(Some(settings.wait_timeout))
        .create_timeout(Some(Duration::from_secs(5)))
        .recycle_timeout(Some(Duration::from_secs(5)))
        .runtime(deadpool::Runtime::Tokio1)
        .build()?;
    Ok(pool)
}

async fn establish_with(url: &str, setup_sql: &str) -> ConnectionResult<AsyncPgConnection> {
    let mut conn = AsyncPgConnection::establish(url).await?;
    diesel_async::SimpleAsyncConnection::batch_execute(&mut conn, setup_sql)
        .await
        .map_err(|e| ConnectionError::BadConnection(e.to_string()))?;
    Ok(conn)
}

/// Runs the pending embedded migrations under a PostgreSQL advisory lock, so replicas
/// starting together never race. Blocking work goes to a blocking thread: the diesel
/// migration harness is synchronous (and `block_in_place` would panic on actix's runtime).
pub async fn migrate(database_url: &str) -> anyhow::Result<Vec<String>> {
    with_migration_connection(database_url, |conn| {
        versions("migration failed", conn.run_pending_migrations(MIGRATIONS))
    })
    .await
}

/// Reverts every migration (used by the test that proves `down.sql` files work).
pub async fn revert_all_migrations(database_url: &str) -> anyhow::Result<Vec<String>> {
    with_migration_connection(database_url, |conn| {
        versions("revert failed", conn.revert_all_migrations(MIGRATIONS))
    })
    .await
}

type SyncPg = AsyncConnectionWrapper<AsyncPgConnection>;

/// The versions a migration run applied or reverted, or its error prefixed with `what`.
fn versions(
    what: &str,
    done: diesel::migration::Result<Vec<MigrationVersion<'_>>>,
) -> anyhow::Result<Vec<String>> {
    done.map(|v| v.iter().map(ToString::to_string).collect())
        .map_err(|e| anyhow::anyhow!("{what}: {e}"))
}

async fn with_migration_connection<T, F>(database_url: &str, work: F) -> anyhow::Result<T>
where
    F: FnOnce(&mut SyncPg) -> anyhow::Result<T> + Send + 'static,
    T: Send + 'static,
{
    let mut conn = AsyncPgConnection::establish(database_url).await?;
    diesel::sql_query(format!("SELECT pg_advisory_lock({MIGRATION_LOCK_KEY})"))
        .execute(&mut conn)
        .await?;
    let mut wrapped: SyncPg = AsyncConnectionWrapper::from(conn);
    tokio::task::spawn_blocking(move || {
        let out = work(&mut wrapped);
        // The session ends when `wrapped` drops, which releases the lock too.
        let _ = diesel::RunQueryDsl::execute(
            diesel::sql_query(format!("SELECT pg_advisory_unlock({MIGRATION_LOCK_KEY})")),
            &mut wrapped,
        );
        out
    })
    .await?
}
