//! Vendor service tokens and the signature on the marketplace's calls to vendors.
//!
//! The database keeps only SHA-256 of a service token (shown once when issued), so the
//! marketplace cannot send the token itself to a vendor. Instead it signs each call to a
//! vendor (provisioning, health checks) with HMAC-SHA256 keyed by that SHA-256: the vendor,
//! who holds the token, computes the same key and checks the signature. Only the holder of
//! the token (or of its hash, i.e. the marketplace) can produce it; the timestamp in the
//! signed text bounds replays.

use aws_lc_rs::{constant_time, digest, hmac, rand::SecureRandom, rand::SystemRandom};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};

/// Header a vendor authenticates with on `/api/automation-usage/consume`.
pub const SERVICE_TOKEN_HEADER: &str = "x-zimmer-service-token";
/// Headers on the marketplace's calls to a vendor.
pub const SIGNATURE_HEADER: &str = "x-zimmer-signature";
pub const TIMESTAMP_HEADER: &str = "x-zimmer-timestamp";
pub const AUTOMATION_HEADER: &str = "x-zimmer-automation-id";
/// A vendor should refuse signatures older (or newer) than this.
pub const SIGNATURE_TOLERANCE_SECS: i64 = 300;

use zimmer_events::contracts::internal::automations::SERVICE_TOKEN_PREFIX as TOKEN_PREFIX;

/// A new service token: a recognisable prefix and 256 random bits.
pub fn new_service_token() -> String {
    let mut buf = [0u8; 32];
    // The system RNG failing is not something to keep serving through.
    if SystemRandom::new().fill(&mut buf).is_err() {
        std::process::abort();
    }
    format!("{TOKEN_PREFIX}{}", URL_SAFE_NO_PAD.encode(buf))
}

/// What the database keeps: SHA-256 of the token (fast hash: the token has 256 bits of
/// entropy, so there is nothing for a slow hash to protect).
pub fn token_hash(token: &str) -> Vec<u8> {
    digest::digest(&digest::SHA256, token.as_bytes())
        .as_ref()
        .to_vec()
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// `v1=<hex HMAC-SHA256(key = SHA-256(token), "<timestamp>.<body>")>`.
pub fn sign(token_hash: &[u8], timestamp: i64, body: &[u8]) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, token_hash);
    let mut ctx = hmac::Context::with_key(&key);
    ctx.update(timestamp.to_string().as_bytes());
    ctx.update(b".");
    ctx.update(body);
    format!("v1={}", hex(ctx.sign().as_ref()))
}

/// The vendor's side of [`sign`]: true when `signature` was made with `token` over this
/// timestamp and body, and the timestamp is within the tolerance of `now`.
pub fn verify(token: &str, timestamp: i64, body: &[u8], signature: &str, now: i64) -> bool {
    if (now - timestamp).abs() > SIGNATURE_TOLERANCE_SECS {
        return false;
    }
    let expected = sign(&token_hash(token), timestamp, body);
    constant_time::verify_slices_are_equal(expected.as_bytes(), signature.as_bytes()).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_prefixed_and_hash_to_32_bytes() {
        let a = new_service_token();
        assert!(a.starts_with("zst_"));
        assert_eq!(a.len(), 4 + 43);
        assert_ne!(a, new_service_token());
        assert_eq!(token_hash(&a).len(), 32);
    }

    #[test]
    fn signatures_verify_only_with_the_token_body_and_a_fresh_timestamp() {
        let token = new_service_token();
        let sig = sign(&token_hash(&token), 1_000, b"{\"a\":1}");
        assert!(sig.starts_with("v1="));
        assert!(verify(&token, 1_000, b"{\"a\":1}", &sig, 1_010));
        assert!(!verify(&token, 1_000, b"{\"a\":2}", &sig, 1_010));
        assert!(!verify("other", 1_000, b"{\"a\":1}", &sig, 1_010));
        assert!(!verify(&token, 1_000, b"{\"a\":1}", &sig, 1_000 + 301));
    }
}
