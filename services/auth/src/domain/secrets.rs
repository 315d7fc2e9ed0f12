//! Server-side keys of auth, derived from one master key (`TWOFA_ENCRYPTION_KEY`, base64 of
//! 32 bytes): AES-256-GCM for TOTP secrets at rest, and an HMAC key for the signed 2FA
//! challenge and for peppering low-entropy codes (6-digit email codes, recovery codes) before
//! they are stored, so a copy of the database alone does not let anyone brute-force them.

use aws_lc_rs::hmac;
use zimmer_config::Settings;
use zimmer_sealing::Sealer;

/// Only for development and tests: a production start without the variable is refused.
const DEV_MASTER_KEY: [u8; 32] = *b"zimmer-dev-2fa-key-not-for-prod!";

#[derive(Clone)]
pub struct Secrets {
    aead: Sealer,
    mac: hmac::Key,
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secrets(***)")
    }
}

impl Secrets {
    pub fn from_settings(settings: &Settings) -> anyhow::Result<Self> {
        let master = zimmer_sealing::load_key(settings, "TWOFA_ENCRYPTION_KEY", &DEV_MASTER_KEY)?;
        Self::from_master(&master)
    }

    pub fn from_master(master: &[u8; 32]) -> anyhow::Result<Self> {
        // Separate keys per purpose, derived with HMAC(master, label): one key never serves
        // two algorithms.
        let aead_key = zimmer_sealing::derive_key(master, b"zimmer/auth/totp-secret-aead/v1");
        let mac_key = zimmer_sealing::derive_key(master, b"zimmer/auth/mac/v1");
        Ok(Self {
            aead: Sealer::new(&aead_key)?,
            mac: hmac::Key::new(hmac::HMAC_SHA256, &mac_key),
        })
    }

    /// `nonce || ciphertext || tag` (the shared sealing helper); `context` (e.g. the user
    /// id) is authenticated, so a ciphertext copied to another user's row does not decrypt.
    pub fn encrypt(&self, plaintext: &[u8], context: &[u8]) -> anyhow::Result<Vec<u8>> {
        Ok(self.aead.seal(plaintext, context)?)
    }

    pub fn decrypt(&self, sealed: &[u8], context: &[u8]) -> anyhow::Result<Vec<u8>> {
        Ok(self.aead.open(sealed, context)?)
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
    use base64::{Engine, engine::general_purpose::STANDARD};

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

    /// A TOTP secret sealed before the shared helper existed (same key derivation, same
    /// `nonce || ciphertext || tag`; made with Python's `cryptography`) still opens.
    #[test]
    fn secrets_sealed_by_the_previous_code_still_open() {
        let s = Secrets::from_master(&[7u8; 32]).unwrap();
        let hex = "000102030405060708090a0b07c76f355f0756b5fd0518a229bd5aa39aa8f0c3c7282e96ac182b8c60fcb58f";
        let sealed: Vec<u8> = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect();
        assert_eq!(s.decrypt(&sealed, b"user:1").unwrap(), b"JBSWY3DPEHPK3PXP");
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
