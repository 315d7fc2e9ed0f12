//! Admin's background jobs.

pub mod backups;
