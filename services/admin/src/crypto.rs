//! OpenAI keys at rest: AES-256-GCM with the key from `OPENAI_KEYS_ENCRYPTION_KEY` (base64 of
//! 32 bytes) and a fresh random 96-bit nonce per value. Stored as `nonce || ciphertext || tag`.

use std::sync::Arc;

use aws_lc_rs::{
    aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey},
    rand::{SecureRandom, SystemRandom},
};
use base64::{Engine, engine::general_purpose::STANDARD};
use zimmer_config::Settings;

/// Only for development and tests: a production start without the variable is refused.
const DEV_KEY: [u8; 32] = *b"zimmer-dev-openai-key-not-prod!!";

/// Authenticated with every value: a ciphertext made for another purpose (e.g. auth's TOTP
/// secrets, should the keys ever be shared by mistake) does not decrypt as an OpenAI key.
/// Not bound to the row id: the id is assigned by the INSERT that stores the ciphertext.
const AAD: &[u8] = b"zimmer/admin/openai-key/v1";

#[derive(Clone)]
pub struct KeyCipher {
    key: Arc<LessSafeKey>,
}

impl std::fmt::Debug for KeyCipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyCipher(***)")
    }
}

impl KeyCipher {
    pub fn from_settings(settings: &Settings) -> anyhow::Result<Self> {
        let key = match settings.env.get("OPENAI_KEYS_ENCRYPTION_KEY") {
            Some(b64) => {
                let raw = STANDARD.decode(b64.trim()).map_err(|_| {
                    anyhow::anyhow!("OPENAI_KEYS_ENCRYPTION_KEY must be base64 of 32 bytes")
                })?;
                <[u8; 32]>::try_from(raw.as_slice()).map_err(|_| {
                    anyhow::anyhow!("OPENAI_KEYS_ENCRYPTION_KEY must be base64 of exactly 32 bytes")
                })?
            }
            None if settings.is_production() => {
                anyhow::bail!("OPENAI_KEYS_ENCRYPTION_KEY must be set in production")
            }
            None => DEV_KEY,
        };
        Self::new(&key)
    }

    pub fn new(key: &[u8; 32]) -> anyhow::Result<Self> {
        let unbound =
            UnboundKey::new(&AES_256_GCM, key).map_err(|_| anyhow::anyhow!("bad AES key"))?;
        Ok(Self {
            key: Arc::new(LessSafeKey::new(unbound)),
        })
    }

    pub fn encrypt(&self, plaintext: &str) -> anyhow::Result<Vec<u8>> {
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new()
            .fill(&mut nonce)
            .map_err(|_| anyhow::anyhow!("no randomness"))?;
        let mut buf = plaintext.as_bytes().to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(AAD),
                &mut buf,
            )
            .map_err(|_| anyhow::anyhow!("encryption failed"))?;
        let mut out = Vec::with_capacity(NONCE_LEN + buf.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&buf);
        Ok(out)
    }

    pub fn decrypt(&self, sealed: &[u8]) -> anyhow::Result<String> {
        if sealed.len() < NONCE_LEN {
            anyhow::bail!("ciphertext too short");
        }
        let (nonce, rest) = sealed.split_at(NONCE_LEN);
        let nonce =
            Nonce::try_assume_unique_for_key(nonce).map_err(|_| anyhow::anyhow!("bad nonce"))?;
        let mut buf = rest.to_vec();
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(AAD), &mut buf)
            .map_err(|_| anyhow::anyhow!("decryption failed (wrong key or tampered data)"))?;
        String::from_utf8(plain.to_vec()).map_err(|_| anyhow::anyhow!("not UTF-8"))
    }
}

/// The last four characters: the only part of a key the API ever shows.
pub fn tail(key: &str) -> String {
    let chars: Vec<char> = key.chars().collect();
    chars[chars.len().saturating_sub(4)..].iter().collect()
}

/// `sk-…abcd`: enough to recognise a key in the dashboard, useless to anyone else.
pub fn masked(tail: &str) -> String {
    format!("sk-…{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_with_fresh_nonces_and_tamper_detection() {
        let c = KeyCipher::new(&[7u8; 32]).unwrap_or_else(|e| panic!("{e}"));
        let secret = "sk-proj-abcdefghijklmnop1234";
        let a = c.encrypt(secret).unwrap_or_else(|e| panic!("{e}"));
        let b = c.encrypt(secret).unwrap_or_else(|e| panic!("{e}"));
        assert_ne!(a, b, "a fresh nonce per value");
        assert!(!a.windows(secret.len()).any(|w| w == secret.as_bytes()));
        assert_eq!(c.decrypt(&a).ok().as_deref(), Some(secret));
        let mut bad = a.clone();
        bad[15] ^= 1;
        assert!(c.decrypt(&bad).is_err());
        let other = KeyCipher::new(&[8u8; 32]).unwrap_or_else(|e| panic!("{e}"));
        assert!(other.decrypt(&a).is_err());
        assert!(c.decrypt(&a[..5]).is_err());
    }

    #[test]
    fn tails_and_masks() {
        assert_eq!(tail("sk-abcdef1234"), "1234");
        assert_eq!(tail("ab"), "ab");
        assert_eq!(masked("1234"), "sk-…1234");
    }
}
