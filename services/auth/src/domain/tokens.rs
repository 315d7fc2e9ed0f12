//! Opaque tokens (refresh, CSRF) and access-token claims.

use aws_lc_rs::{digest, rand::SecureRandom, rand::SystemRandom};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use chrono::Utc;
use uuid::Uuid;
use zimmer_config::JwtSettings;
use zimmer_jwt::{Claims, Role};

/// `bytes` of OS randomness, base64url.
pub fn random_token(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    // The system RNG failing is not something to serve requests through.
    if SystemRandom::new().fill(&mut buf).is_err() {
        std::process::abort();
    }
    URL_SAFE_NO_PAD.encode(buf)
}

/// SHA-256 of a token: what the database keeps. Refresh tokens have 256 bits of entropy, so
/// a fast hash is right here (argon2 is for low-entropy passwords).
pub fn token_hash(token: &str) -> Vec<u8> {
    digest::digest(&digest::SHA256, token.as_bytes())
        .as_ref()
        .to_vec()
}

pub fn new_refresh_token() -> String {
    random_token(32)
}

/// A uniformly random code of six decimal digits (the email verification code).
pub fn six_digit_code() -> String {
    // 4_294_000_000 is the largest multiple of 10^6 below 2^32: rejecting above it keeps
    // every code equally likely.
    loop {
        let mut buf = [0u8; 4];
        if SystemRandom::new().fill(&mut buf).is_err() {
            std::process::abort();
        }
        let n = u32::from_be_bytes(buf);
        if n < 4_294_000_000 {
            return format!("{:06}", n % 1_000_000);
        }
    }
}

/// Claims of an access token of `session_id`; `auth_time` is when that session's sign-in
/// happened (the session's creation), the same for every token a refresh gives it.
pub fn access_claims(
    user_id: i64,
    role: Role,
    session_id: Uuid,
    auth_time: i64,
    jwt: &JwtSettings,
) -> Claims {
    let now = Utc::now().timestamp();
    Claims {
        sub: user_id.to_string(),
        role,
        sid: session_id,
        jti: Uuid::new_v4(),
        iat: now,
        exp: now + i64::try_from(jwt.access_ttl.as_secs()).unwrap_or(900),
        iss: jwt.issuer.clone(),
        aud: jwt.audience.clone(),
        auth_time: Some(auth_time),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_and_hashes_stable() {
        let a = new_refresh_token();
        let b = new_refresh_token();
        assert_ne!(a, b);
        assert_eq!(a.len(), 43);
        assert_eq!(token_hash(&a), token_hash(&a));
        assert_ne!(token_hash(&a), token_hash(&b));
        assert_eq!(token_hash("x").len(), 32);
        let c = six_digit_code();
        assert_eq!(c.len(), 6);
        assert!(c.bytes().all(|b| b.is_ascii_digit()));
    }
}
