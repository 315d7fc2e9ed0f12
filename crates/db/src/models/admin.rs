//! Rows of the admin service's tables (schema.rs). Owned by that service: only it writes them.
