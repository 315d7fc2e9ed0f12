//! The database layer shared by every service: the one `schema.rs`, the models, the pool and
//! the embedded migrations.

pub mod filter;
pub mod like;
pub mod models;
pub mod paged;
pub mod pool;
pub mod queries;
pub mod schema;

pub use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
pub use filter::FilterSome;
pub use like::contains_pattern;
pub use paged::paged;
pub use pool::{DbConn, DbPool, PoolError, connect_pool, migrate, revert_all_migrations};
