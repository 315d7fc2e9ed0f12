//! Secrets at rest: one AES-256-GCM "sealing" helper for every service that keeps a secret
//! it must read back (auth's TOTP secrets, admin's OpenAI keys, marketplace's Telegram bot
//! tokens). A sealed value is `nonce (12) || ciphertext || tag (16)` with a fresh random nonce
//! per value; the optional associated data (AAD) is authenticated, not stored, so a value
//! copied to another row or purpose does not open.
//!
//! Keys come from the environment as base64 of 32 bytes. Development and tests fall back to
//! a fixed key per purpose (data survives restarts); a production start without the variable
//! is refused.

use std::sync::Arc;

use aws_lc_rs::{
    aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey},
    hmac,
    rand::{SecureRandom, SystemRandom},
};
use base64::{Engine, engine::general_purpose::STANDARD};
use zimmer_config::{Env, Settings};

/// Bytes of a key.
pub const KEY_LEN: usize = 32;
/// Bytes a sealed value adds to its plaintext (nonce and tag).
pub const OVERHEAD: usize = NONCE_LEN + 16;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SealError {
    #[error("sealed value too short")]
    TooShort,
    /// Wrong key, wrong AAD, or the bytes were changed: indistinguishable by design.
    #[error("cannot open (wrong key or associated data, or tampered data)")]
    Open,
    #[error("encryption failed")]
    Seal,
    #[error("no randomness")]
    Random,
}

/// An AES-256-GCM key ready to seal and open. `Debug` never shows it.
#[derive(Clone)]
pub struct Sealer {
    key: Arc<LessSafeKey>,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer(***)")
    }
}

impl Sealer {
    pub fn new(key: &[u8; KEY_LEN]) -> Result<Self, SealError> {
        let unbound = UnboundKey::new(&AES_256_GCM, key).map_err(|_| SealError::Seal)?;
        Ok(Self {
            key: Arc::new(LessSafeKey::new(unbound)),
        })
    }

    /// `nonce || ciphertext || tag`, `aad` authenticated with it.
    pub fn seal(&self, plaintext: &[u8], aad: &[u8]) -> Result<Vec<u8>, SealError> {
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new()
            .fill(&mut nonce)
            .map_err(|_| SealError::Random)?;
        let mut body = plaintext.to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad),
                &mut body,
            )
            .map_err(|_| SealError::Seal)?;
        let mut out = Vec::with_capacity(NONCE_LEN + body.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&body);
        Ok(out)
    }

    /// The plaintext of a value made by [`Self::seal`] with the same key and `aad`.
    pub fn open(&self, sealed: &[u8], aad: &[u8]) -> Result<Vec<u8>, SealError> {
        if sealed.len() < OVERHEAD {
            return Err(SealError::TooShort);
        }
        let (nonce, rest) = sealed.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| SealError::Open)?;
        let mut buf = rest.to_vec();
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(aad), &mut buf)
            .map_err(|_| SealError::Open)?;
        Ok(plain.to_vec())
    }
}

/// A key for one purpose derived from a master key: HMAC-SHA256(master, label). One master
/// can then serve several algorithms without any key serving two.
pub fn derive_key(master: &[u8; KEY_LEN], label: &[u8]) -> [u8; KEY_LEN] {
    let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, master), label);
    let mut out = [0u8; KEY_LEN];
    out.copy_from_slice(tag.as_ref());
    out
}

/// The 32-byte key in the variable `var` (base64). Unset: `dev_default` in development, an
/// error in production.
pub fn load_key(
    settings: &Settings,
    var: &str,
    dev_default: &[u8; KEY_LEN],
) -> anyhow::Result<[u8; KEY_LEN]> {
    key_from_env(&settings.env, settings.is_production(), var, dev_default)
}

/// [`load_key`] from an [`Env`] and whether this is production.
pub fn key_from_env(
    env: &Env,
    production: bool,
    var: &str,
    dev_default: &[u8; KEY_LEN],
) -> anyhow::Result<[u8; KEY_LEN]> {
    match env.get(var) {
        Some(b64) => parse_key(var, &b64),
        None if production => anyhow::bail!("{var} must be set in production"),
        None => Ok(*dev_default),
    }
}

/// Base64 of exactly 32 bytes (what `openssl rand -base64 32` prints).
pub fn parse_key(var: &str, b64: &str) -> anyhow::Result<[u8; KEY_LEN]> {
    let raw = STANDARD
        .decode(b64.trim())
        .map_err(|_| anyhow::anyhow!("{var} must be base64 of 32 bytes"))?;
    <[u8; KEY_LEN]>::try_from(raw.as_slice())
        .map_err(|_| anyhow::anyhow!("{var} must be base64 of exactly 32 bytes"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn unhex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn round_trip_fresh_nonces_and_tampering() {
        let s = Sealer::new(&[7u8; 32]).unwrap();
        let a = s.seal(b"secret value", b"row:1").unwrap();
        let b = s.seal(b"secret value", b"row:1").unwrap();
        assert_ne!(a, b, "a fresh nonce per value");
        assert_eq!(a.len(), b"secret value".len() + OVERHEAD);
        assert!(!a.windows(6).any(|w| w == b"secret"));
        assert_eq!(s.open(&a, b"row:1").unwrap(), b"secret value");
        assert_eq!(
            s.open(&a, b"row:2"),
            Err(SealError::Open),
            "bound to its AAD"
        );
        let mut bad = a.clone();
        bad[14] ^= 1;
        assert_eq!(s.open(&bad, b"row:1"), Err(SealError::Open));
        assert_eq!(s.open(&a[..20], b"row:1"), Err(SealError::TooShort));
        let other = Sealer::new(&[8u8; 32]).unwrap();
        assert_eq!(other.open(&a, b"row:1"), Err(SealError::Open));
        assert_eq!(s.open(&s.seal(b"", b"").unwrap(), b"").unwrap(), b"");
    }

    /// Values sealed by an independent AES-256-GCM implementation (Python `cryptography`)
    /// open: the format is plain `nonce || ciphertext || tag`, as auth and admin stored it
    /// before this crate existed.
    #[test]
    fn opens_values_from_another_implementation() {
        let s = Sealer::new(&[7u8; 32]).unwrap();
        let sealed = unhex(
            "000102030405060708090a0b6be4881c786df928039297f9912c1728f8ff9e1fb6ad1fd9de8f2684988c",
        );
        assert_eq!(s.open(&sealed, b"ctx").unwrap(), b"sealed at rest");
        assert_eq!(
            derive_key(&[7u8; 32], b"zimmer/auth/totp-secret-aead/v1").to_vec(),
            unhex("988c191542388665587f492c843ff2714dc6adce5e3017c1309fd7335dae7eb8")
        );
    }

    #[test]
    fn keys_from_the_environment() {
        let load = |production: bool, pairs: &[(&str, &str)]| {
            key_from_env(
                &Env::from_pairs(pairs.iter().copied()),
                production,
                "SOME_KEY",
                &[3u8; 32],
            )
        };
        assert_eq!(load(false, &[]).unwrap(), [3u8; 32], "development default");
        let good = STANDARD.encode([9u8; 32]);
        assert_eq!(
            load(false, &[("SOME_KEY", good.as_str())]).unwrap(),
            [9u8; 32]
        );
        let short = STANDARD.encode([1u8; 16]);
        for bad in ["not base64!", short.as_str()] {
            let err = load(false, &[("SOME_KEY", bad)]).unwrap_err().to_string();
            assert!(err.contains("SOME_KEY"), "{err}");
        }
        let err = load(true, &[]).unwrap_err().to_string();
        assert!(err.contains("SOME_KEY must be set in production"), "{err}");
        assert_eq!(
            load(true, &[("SOME_KEY", good.as_str())]).unwrap(),
            [9u8; 32]
        );
    }
}
