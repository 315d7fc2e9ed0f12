//! The demo automations the fake vendor runs: the marketplace's `seed-demo` wires each to this
//! vendor with the service token `<DEMO_SERVICE_TOKEN>.<slug>`, and the vendor derives the same
//! tokens (a vendor is given its tokens; it does not read the marketplace's code). The
//! marketplace's tests check that both sides agree.

/// The `DEMO_SERVICE_TOKEN` of local development (the marketplace refuses it in production).
pub const DEV_DEMO_SERVICE_TOKEN: &str = "zimmer-dev-demo-vendor-token";

/// Slugs of the demo automations, as `seed-demo` names them.
pub const DEMO_SLUGS: &[&str] = &["support-bot", "sales-assistant", "content-writer"];

/// The service token of one demo automation.
pub fn demo_service_token(base: &str, slug: &str) -> String {
    format!("{base}.{slug}")
}

/// The tokens of every demo automation for this `DEMO_SERVICE_TOKEN`.
pub fn demo_service_tokens(base: &str) -> Vec<String> {
    DEMO_SLUGS
        .iter()
        .map(|slug| demo_service_token(base, slug))
        .collect()
}
