//! Admin's pure rules: no I/O, no framework; unit-tested where they live.

pub mod automations;
pub mod backups;
pub mod keys;
pub mod rollup;
