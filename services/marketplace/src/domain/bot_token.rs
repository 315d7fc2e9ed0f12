//! Telegram bot tokens: `<bot id>:<secret>` as BotFather issues them, and how they are kept:
//! sealed with AES-256-GCM (the shared `zimmer-sealing` helper) under a key derived from
//! `BOT_TOKENS_ENCRYPTION_KEY`, bound to their row, plus an HMAC of the token under a second
//! derived key, on which the platform-wide uniqueness is checked (a ciphertext with a random
//! nonce cannot be compared). Only the provisioning call to the vendor, which runs the bot,
//! ever sees the token in full again.

use aws_lc_rs::hmac;
use zimmer_config::Settings;
use zimmer_db::models::marketplace::UserAutomation;
use zimmer_sealing::Sealer;

/// Only for development and tests: a production start without the variable is refused.
const DEV_MASTER_KEY: [u8; 32] = *b"zimmer-dev-bot-token-key-no-prod";

/// A token ready to store: its ciphertext and its keyed hash.
#[derive(Debug, Clone)]
pub struct SealedToken {
    pub sealed: Vec<u8>,
    pub hash: Vec<u8>,
}

/// Seals, opens and fingerprints bot tokens. `Debug` shows nothing.
#[derive(Clone)]
pub struct BotTokenVault {
    sealer: Sealer,
    mac: hmac::Key,
}

impl std::fmt::Debug for BotTokenVault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BotTokenVault(***)")
    }
}

impl BotTokenVault {
    pub fn from_settings(settings: &Settings) -> anyhow::Result<Self> {
        let master =
            zimmer_sealing::load_key(settings, "BOT_TOKENS_ENCRYPTION_KEY", &DEV_MASTER_KEY)?;
        Self::from_master(&master)
    }

    pub fn from_master(master: &[u8; 32]) -> anyhow::Result<Self> {
        let aead = zimmer_sealing::derive_key(master, b"zimmer/marketplace/bot-token-aead/v1");
        let mac = zimmer_sealing::derive_key(master, b"zimmer/marketplace/bot-token-mac/v1");
        Ok(Self {
            sealer: Sealer::new(&aead)?,
            mac: hmac::Key::new(hmac::HMAC_SHA256, &mac),
        })
    }

    /// Bound to the row: a ciphertext copied to another customer's row does not open.
    fn aad(user_automation_id: i64) -> Vec<u8> {
        format!("zimmer/marketplace/bot-token/v1:{user_automation_id}").into_bytes()
    }

    /// HMAC-SHA256 of a (validated) token: equal tokens, equal hashes.
    pub fn fingerprint(&self, token: &str) -> Vec<u8> {
        hmac::sign(&self.mac, token.as_bytes()).as_ref().to_vec()
    }

    pub fn seal(&self, user_automation_id: i64, token: &str) -> anyhow::Result<SealedToken> {
        Ok(SealedToken {
            sealed: self
                .sealer
                .seal(token.as_bytes(), &Self::aad(user_automation_id))?,
            hash: self.fingerprint(token),
        })
    }

    pub fn open(&self, user_automation_id: i64, sealed: &[u8]) -> anyhow::Result<String> {
        let plain = self.sealer.open(sealed, &Self::aad(user_automation_id))?;
        String::from_utf8(plain).map_err(|_| anyhow::anyhow!("sealed bot token is not UTF-8"))
    }

    /// The token of a row in full: sealed, or (a row from before sealing) the legacy
    /// plaintext.
    pub fn reveal(
        &self,
        user_automation_id: i64,
        sealed: Option<&[u8]>,
        legacy: Option<&str>,
    ) -> anyhow::Result<Option<String>> {
        match (sealed, legacy) {
            (Some(s), _) => self.open(user_automation_id, s).map(Some),
            (None, Some(plain)) => Ok(Some(plain.to_owned())),
            (None, None) => Ok(None),
        }
    }

    /// What the API shows of a row's token ([`mask`]); `****` if it cannot be opened (a
    /// wrong key is logged, not shown to the customer as an error).
    pub fn masked(&self, ua: &UserAutomation) -> Option<String> {
        match self.reveal(
            ua.id,
            ua.telegram_bot_token_sealed.as_deref(),
            ua.telegram_bot_token.as_deref(),
        ) {
            Ok(token) => token.as_deref().map(mask),
            Err(e) => {
                tracing::error!(user_automation_id = ua.id, error = %e, "bot token cannot be opened");
                Some("****".to_owned())
            }
        }
    }
}

/// Trimmed and format-checked: 5–15 digits, a colon, 30–64 of `[A-Za-z0-9_-]`.
pub fn validate(input: &str) -> Result<String, &'static str> {
    let token = input.trim();
    let Some((id, secret)) = token.split_once(':') else {
        return Err("is not a Telegram bot token (expected <bot id>:<secret>)");
    };
    let id_ok = (5..=15).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_digit());
    let secret_ok = (30..=64).contains(&secret.len())
        && secret
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if id_ok && secret_ok {
        Ok(token.to_owned())
    } else {
        Err("is not a Telegram bot token (expected <bot id>:<secret>)")
    }
}

/// What the API shows: the bot id (public anyway) and the last 4 characters of the secret.
pub fn mask(token: &str) -> String {
    match token.split_once(':') {
        Some((id, secret)) if secret.len() > 4 => {
            format!("{id}:****{}", &secret[secret.len() - 4..])
        }
        _ => "****".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsawQ";

    #[test]
    fn accepts_real_shapes_and_refuses_others() {
        assert_eq!(validate(&format!("  {GOOD} ")), Ok(GOOD.to_owned()));
        assert!(validate("123456789").is_err());
        assert!(validate("abc:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsawQ").is_err());
        assert!(validate("123456789:short").is_err());
        assert!(validate("123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDs aw").is_err());
        assert!(validate("123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsawQ\u{202E}").is_err());
    }

    #[test]
    fn sealed_tokens_open_only_on_their_row_and_hash_stably() {
        let vault = BotTokenVault::from_master(&[5u8; 32]).unwrap();
        let a = vault.seal(7, GOOD).unwrap();
        let b = vault.seal(7, GOOD).unwrap();
        assert_ne!(a.sealed, b.sealed, "fresh nonce");
        assert_eq!(a.hash, b.hash, "uniqueness is checked on the hash");
        assert_eq!(a.hash.len(), 32);
        assert!(!a.sealed.windows(8).any(|w| w == b"AAHdqTcv"));
        assert_eq!(vault.open(7, &a.sealed).unwrap(), GOOD);
        assert!(vault.open(8, &a.sealed).is_err(), "bound to its row");
        let other = BotTokenVault::from_master(&[6u8; 32]).unwrap();
        assert!(other.open(7, &a.sealed).is_err());
        assert_ne!(other.fingerprint(GOOD), a.hash, "keyed");
        assert_eq!(
            vault.reveal(7, None, Some(GOOD)).unwrap().as_deref(),
            Some(GOOD),
            "legacy plaintext rows still read"
        );
    }

    #[test]
    fn masks_all_but_the_bot_id_and_tail() {
        assert_eq!(mask(GOOD), "123456789:****sawQ");
        assert!(!mask(GOOD).contains("AAHdqTcv"));
    }
}
