//! Rows of the support service's tables (schema.rs). Owned by that service: only it writes them.
