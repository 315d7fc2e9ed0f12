//! Admin's background jobs.

pub mod backups;
pub mod rollup;
