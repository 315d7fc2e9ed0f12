//! OpenAI keys at rest: AES-256-GCM (the shared sealing helper, `zimmer-sealing`) with the
//! key from `OPENAI_KEYS_ENCRYPTION_KEY` (base64 of 32 bytes) and a fresh random 96-bit nonce
//! per value. Stored as `nonce || ciphertext || tag`.

use zimmer_config::Settings;
use zimmer_sealing::Sealer;

/// Only for development and tests: a production start without the variable is refused.
const DEV_KEY: [u8; 32] = *b"zimmer-dev-openai-key-not-prod!!";

/// Authenticated with every value: a ciphertext made for another purpose (e.g. auth's TOTP
/// secrets, should the keys ever be shared by mistake) does not decrypt as an OpenAI key.
/// Not bound to the row id: the id is assigned by the INSERT that stores the ciphertext.
const AAD: &[u8] = b"zimmer/admin/openai-key/v1";

#[derive(Clone)]
pub struct KeyCipher {
    sealer: Sealer,
}

impl std::fmt::Debug for KeyCipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyCipher(***)")
    }
}

impl KeyCipher {
    pub fn from_settings(settings: &Settings) -> anyhow::Result<Self> {
        let key = zimmer_sealing::load_key(settings, "OPENAI_KEYS_ENCRYPTION_KEY", &DEV_KEY)?;
        Self::new(&key)
    }

    pub fn new(key: &[u8; 32]) -> anyhow::Result<Self> {
        Ok(Self {
            sealer: Sealer::new(key)?,
        })
    }

    pub fn encrypt(&self, plaintext: &str) -> anyhow::Result<Vec<u8>> {
        Ok(self.sealer.seal(plaintext.as_bytes(), AAD)?)
    }

    pub fn decrypt(&self, sealed: &[u8]) -> anyhow::Result<String> {
        let plain = self.sealer.open(sealed, AAD)?;
        String::from_utf8(plain).map_err(|_| anyhow::anyhow!("not UTF-8"))
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

    /// A key stored before the shared sealing helper existed (same format; made with
    /// Python's `cryptography`) still decrypts.
    #[test]
    fn keys_stored_by_the_previous_code_still_decrypt() {
        let c = KeyCipher::new(&[7u8; 32]).unwrap_or_else(|e| panic!("{e}"));
        let hex = "000102030405060708090a0b6beac4006f66b36416d086f8873e0b928856dde2750c184127fc508eb55679d3784517efd3954adf171d6589";
        let sealed: Vec<u8> = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap_or_default())
            .collect();
        assert_eq!(
            c.decrypt(&sealed).ok().as_deref(),
            Some("sk-proj-abcdefghijklmnop1234")
        );
    }

    #[test]
    fn tails_and_masks() {
        assert_eq!(tail("sk-abcdef1234"), "1234");
        assert_eq!(tail("ab"), "ab");
        assert_eq!(masked("1234"), "sk-…1234");
    }
}
