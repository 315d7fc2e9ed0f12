//! Server-side keys of auth, derived from one master key (`TWOFA_ENCRYPTION_KEY`, base64 of
//! 32 bytes): AES-256-GCM for TOTP secrets at rest, and an HMAC key for the signed 2FA
//! challenge and for peppering low-entropy codes (6-digit email codes, recovery codes) before
//! they are stored, so a copy of the database alone does not let anyone brute-force them.

use aws_lc_rs::{
    aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey},
    hmac,
    rand::{SecureRandom, SystemRandom},
};
use base64::{Engine, engine::general_purpose::STANDARD};
use zimmer_config::Settings;

/// Only for development and tests: a production start without the variable is refused.
const DEV_MASTER_KEY: [u8; 32] = *b"zimmer-dev-2fa-key-not-for-prod!";

#[derive(Clone)]
pub struct Secrets {
    aead: std::sync::Arc<LessSafeKey>,
    mac: hmac::Key,
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secrets(***)")
    }
}

impl Secrets {
    pub fn from_settings(settings: &Settings) -> anyhow::Result<Self> {
        let master = match settings.env.get("TWOFA_ENCRYPTION_KEY") {
            Some(b64) => {
                let raw = STANDARD.decode(b64.trim()).map_err(|_| {
                    anyhow::anyhow!("TWOFA_ENCRYPTION_KEY must be base64 of 32 bytes")
                })?;
                <[u8; 32]>::try_from(raw.as_slice()).map_err(|_| {
                    anyhow::anyhow!("TWOFA_ENCRYPTION_KEY must be base64 of exactly 32 bytes")
                })?
            }
            None if settings.is_production() => {
                anyhow::bail!("TWOFA_ENCRYPTION_KEY must be set in production")
            }
            None => DEV_MASTER_KEY,
        };
        Self::from_master(&master)
    }

    pub fn from_master(master: &[u8; 32]) -> anyhow::Result<Self> {
        // Separate keys per purpose, derived with HMAC(master, label): one key never serves
        // two algorithms.
        let root = hmac::Key::new(hmac::HMAC_SHA256, master);
        let aead_key = hmac::sign(&root, b"zimmer/auth/totp-secret-aead/v1");
        let mac_key = hmac::sign(&root, b"zimmer/auth/mac/v1");
        let unbound = UnboundKey::new(&AES_256_GCM, aead_key.as_ref())
            .map_err(|_| anyhow::anyhow!("bad AES key"))?;
        Ok(Self {
            aead: std::sync::Arc::new(LessSafeKey::new(unbound)),
            mac: hmac::Key::new(hmac::HMAC_SHA256, mac_key.as_ref()),
        })
    }

    /// `nonce || ciphertext || tag`; `context` (e.g. the user id) is authenticated, so a
    /// ciphertext copied to another user's row does not decrypt.
    pub fn encrypt(&self, plaintext: &[u8], context: &[u8]) -> anyhow::Result<Vec<u8>> {
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new()
            .fill(&mut nonce)
            .map_err(|_| anyhow::anyhow!("no randomness"))?;
        let mut buf = plaintext.to_vec();
        self.aead
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(context),
                &mut buf,
            )
            .map_err(|_| anyhow::anyhow!("encryption failed"))?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&buf);
        Ok(out)
    }

    pub fn decrypt(&self, sealed: &[u8], context: &[u8]) -> anyhow::Result<Vec<u8>> {
        if sealed.len() < NONCE_LEN {
            anyhow::bail!("ciphertext too short");
        }
        let (nonce, rest) = sealed.split_at(NONCE_LEN);
        let nonce =
            Nonce::try_assume_unique_for_key(nonce).map_err(|_| anyhow::anyhow!("bad nonce"))?;
        let mut buf = rest.to_vec();
        let plain = self
            .aead
            .open_in_place(nonce, Aad::from(context), &mut buf)
            .map_err(|_| anyhow::anyhow!("decryption failed (wrong key or tampered data)"))?;
        Ok(plain.to_vec())
    }

    /// HMAC-SHA256 of `data` under the purpose label `purpose`.
    pub fn mac(&self, purpose: &str, data: &[u8]) -> Vec<u8> {
        let mut ctx = hmac::Context::with_key(&self.mac);
        ctx.update(purpose.as_bytes());
        ctx.update(&[0]);
        ctx.update(data);
        ctx.sign().as_ref().to_vec()
    }

    /// Constant-time check of a MAC made by [`Self::mac`].
    pub fn mac_matches(&self, purpose: &str, data: &[u8], tag: &[u8]) -> bool {
        let expected = self.mac(purpose, data);
        expected.len() == tag.len()
            && expected
                .iter()
                .zip(tag)
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encrypts_with_context_and_detects_tampering() {
        let s = Secrets::from_master(&[7u8; 32]).unwrap();
        let sealed = s.encrypt(b"totp secret", b"user:1").unwrap();
        assert_ne!(&sealed[12..sealed.len() - 16], b"totp secret");
        assert_eq!(s.decrypt(&sealed, b"user:1").unwrap(), b"totp secret");
        assert!(s.decrypt(&sealed, b"user:2").is_err(), "bound to its row");
        let mut bad = sealed.clone();
        bad[20] ^= 1;
        assert!(s.decrypt(&bad, b"user:1").is_err());
        let other = Secrets::from_master(&[8u8; 32]).unwrap();
        assert!(other.decrypt(&sealed, b"user:1").is_err());
        // A fresh nonce each time.
        assert_ne!(sealed, s.encrypt(b"totp secret", b"user:1").unwrap());
    }

    #[test]
    fn production_needs_a_real_key_and_bad_keys_are_refused() {
        let load = |pairs: &[(&str, &str)]| {
            let settings = Settings::load(
                "auth",
                zimmer_config::Env::from_pairs(pairs.iter().copied()),
            )
            .unwrap();
            Secrets::from_settings(&settings)
        };
        let prod = [
            ("APP_ENV", "production"),
            ("INTERNAL_API_TOKEN", "x-secret"),
        ];
        let err = load(&prod).unwrap_err().to_string();
        assert!(err.contains("TWOFA_ENCRYPTION_KEY"), "{err}");
        let key = STANDARD.encode([9u8; 32]);
        let mut with_key = prod.to_vec();
        with_key.push(("TWOFA_ENCRYPTION_KEY", key.as_str()));
        assert!(load(&with_key).is_ok());
        assert!(load(&[("TWOFA_ENCRYPTION_KEY", "not base64!")]).is_err());
        let short = STANDARD.encode([1u8; 16]);
        assert!(load(&[("TWOFA_ENCRYPTION_KEY", short.as_str())]).is_err());
        // Development falls back to the fixed key, so data survives restarts.
        let a = load(&[]).unwrap();
        let b = load(&[]).unwrap();
        let sealed = a.encrypt(b"x", b"c").unwrap();
        assert_eq!(b.decrypt(&sealed, b"c").unwrap(), b"x");
    }

    #[test]
    fn macs_are_per_purpose() {
        let s = Secrets::from_master(&[7u8; 32]).unwrap();
        let a = s.mac("a", b"x");
        assert!(s.mac_matches("a", b"x", &a));
        assert!(!s.mac_matches("b", b"x", &a));
        assert!(!s.mac_matches("a", b"y", &a));
    }
}
