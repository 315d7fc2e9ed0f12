use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex, RwLock,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode, decode_header};
use zimmer_config::JwtSettings;

use crate::{Claims, Jwks, Signer};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum VerifyError {
    #[error("token is invalid")]
    Invalid,
    #[error("token has expired")]
    Expired,
    #[error("token was signed with an unknown key")]
    UnknownKey,
    /// The token's key id is not known *and* auth's JWKS cannot be fetched right now: the
    /// token may well be valid, so the caller must hear "try again" (503), not "logged out".
    #[error("signing keys are not available yet")]
    KeysUnavailable,
}

/// Verifies access tokens. The algorithm is pinned to EdDSA and `iss`, `aud`, `exp` are
/// checked explicitly, so `alg: none`, HS256-with-the-public-key and tokens minted for
/// another audience all fail.
pub struct Verifier {
    shared: Arc<Shared>,
    validation: Validation,
}

/// What the background JWKS retry shares with the verifier.
struct Shared {
    keys: RwLock<HashMap<String, DecodingKey>>,
    jwks_url: Option<String>,
    http: reqwest::Client,
    last_fetch: Mutex<Option<Instant>>,
    /// The last JWKS fetch failed (auth unreachable or answering errors).
    unreachable: AtomicBool,
    /// A background retry loop is running.
    retrying: AtomicBool,
    /// Tokens already verified with the current keys → their claims (see [`VERIFIED_CAPACITY`]).
    verified: RwLock<HashMap<Box<str>, Claims>>,
}

/// How many verified tokens are remembered. An Ed25519 verification was the largest cost of
/// an authenticated request (docs: README, "Performance"); a client presents the same token
/// for its whole lifetime, so the second request on finds its claims here by the token's
/// exact text. Only the signature check is skipped: expiry is checked again on every hit,
/// revocation is checked by the caller on every request as before, and a key change (JWKS
/// refresh) forgets them all. When full, expired entries go first, else all of them.
const VERIFIED_CAPACITY: usize = 4096;

/// Unknown key ids trigger at most one JWKS fetch per this interval (key rotation support
/// without letting forged `kid`s hammer auth).
const REFETCH_INTERVAL: Duration = Duration::from_secs(30);
/// Back-off of the background JWKS retry while auth is unreachable: short, so an instance
/// that started before auth accepts tokens within a couple of seconds of auth coming up.
const RETRY_FIRST: Duration = Duration::from_millis(250);
const RETRY_MAX: Duration = Duration::from_secs(2);

impl Shared {
    fn install(&self, jwks: &Jwks) -> anyhow::Result<()> {
        let mut fresh = HashMap::new();
        for jwk in &jwks.keys {
            if jwk.kty == "OKP" && jwk.crv == "Ed25519" && jwk.alg == "EdDSA" {
                fresh.insert(jwk.kid.clone(), DecodingKey::from_ed_components(&jwk.x)?);
            }
        }
        if fresh.is_empty() {
            anyhow::bail!("JWKS has no Ed25519 key");
        }
        if let Ok(mut keys) = self.keys.write() {
            *keys = fresh;
            // Under the keys' write lock: a verification that used the old keys stores its
            // result while holding their read lock, so it cannot land after this.
            if let Ok(mut verified) = self.verified.write() {
                verified.clear();
            }
        }
        Ok(())
    }

    async fn refresh(&self) -> anyhow::Result<()> {
        let Some(url) = &self.jwks_url else {
            return Ok(());
        };
        if let Ok(mut last) = self.last_fetch.lock() {
            *last = Some(Instant::now());
        }
        let result = async {
            let jwks: Jwks = self
                .http
                .get(url)
                .send()
                .await?
                .error_for_status()?
                .json()
                .await?;
            self.install(&jwks)
        }
        .await;
        self.unreachable.store(result.is_err(), Ordering::SeqCst);
        result
    }

    /// Fetches the JWKS in the background until a fetch succeeds (one loop at a time).
    fn spawn_retry(self: &Arc<Self>) {
        if self.jwks_url.is_none() || self.retrying.swap(true, Ordering::SeqCst) {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            self.retrying.store(false, Ordering::SeqCst);
            return;
        };
        let shared = Arc::clone(self);
        runtime.spawn(async move {
            let mut backoff = zimmer_config::Backoff::new(RETRY_FIRST, RETRY_MAX);
            loop {
                tokio::time::sleep(backoff.next_delay()).await;
                match shared.refresh().await {
                    Ok(()) => {
                        tracing::info!("JWKS fetched; verifying tokens again");
                        break;
                    }
                    Err(e) => {
                        tracing::debug!(error = %e, "JWKS still unavailable; retrying");
                    }
                }
            }
            shared.retrying.store(false, Ordering::SeqCst);
        });
    }
}

impl Verifier {
    fn with_validation(settings: &JwtSettings, jwks_url: Option<String>) -> Self {
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_issuer(&[settings.issuer.as_str()]);
        validation.set_audience(&[settings.audience.as_str()]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = 5;
        validation.validate_exp = true;
        Self {
            shared: Arc::new(Shared {
                keys: RwLock::new(HashMap::new()),
                jwks_url,
                http: reqwest::Client::builder()
                    .timeout(Duration::from_secs(5))
                    .build()
                    .unwrap_or_default(),
                last_fetch: Mutex::new(None),
                unreachable: AtomicBool::new(false),
                retrying: AtomicBool::new(false),
                verified: RwLock::new(HashMap::new()),
            }),
            validation,
        }
    }

    /// Auth verifies with its own signing key: no network.
    pub fn from_signer(signer: &Signer, settings: &JwtSettings) -> anyhow::Result<Self> {
        let v = Self::with_validation(settings, None);
        v.shared.install(&Jwks {
            keys: vec![signer.jwk().clone()],
        })?;
        Ok(v)
    }

    /// A configured public key (PEM, SubjectPublicKeyInfo).
    pub fn from_public_pem(pem: &str, settings: &JwtSettings) -> anyhow::Result<Self> {
        let v = Self::with_validation(settings, None);
        let key = DecodingKey::from_ed_pem(pem.as_bytes())?;
        if let Ok(mut keys) = v.shared.keys.write() {
            keys.insert(String::new(), key);
        }
        Ok(v)
    }

    /// Keys from auth's JWKS. The first fetch is tried now; if auth is not up yet the verifier
    /// starts empty (tokens get 503 `keys_unavailable`, `/readyz` fails) and keeps fetching in
    /// the background with a short back-off until it has keys: start-up never fails because
    /// auth is down.
    pub async fn from_jwks(settings: &JwtSettings) -> Self {
        let v = Self::with_validation(settings, Some(settings.jwks_url.clone()));
        if let Err(e) = v.shared.refresh().await {
            tracing::warn!(error = %e, url = %settings.jwks_url, "JWKS not available yet; retrying in the background");
            v.shared.spawn_retry();
        }
        v
    }

    /// Settings decide: a configured public key wins, else the JWKS URL.
    pub async fn from_settings(settings: &JwtSettings) -> anyhow::Result<Self> {
        match &settings.public_key_pem {
            Some(pem) => Self::from_public_pem(pem, settings),
            None => Ok(Self::from_jwks(settings).await),
        }
    }

    /// Whether any verification key is at hand (a readiness condition).
    pub fn has_keys(&self) -> bool {
        self.shared.keys.read().is_ok_and(|k| !k.is_empty())
    }

    /// Fetches the JWKS now.
    pub async fn refresh(&self) -> anyhow::Result<()> {
        self.shared.refresh().await
    }

    fn may_refetch(&self) -> bool {
        self.shared.jwks_url.is_some()
            && self
                .shared
                .last_fetch
                .lock()
                .map(|last| last.is_none_or(|t| t.elapsed() >= REFETCH_INTERVAL))
                .unwrap_or(false)
    }

    /// Verifies with the keys at hand: a token verified before (and not expired since)
    /// answers from memory, anything else is decoded and its signature checked.
    pub fn verify(&self, token: &str) -> Result<Claims, VerifyError> {
        let now = chrono::Utc::now().timestamp();
        if let Some(claims) = self.remembered(token, now) {
            return Ok(claims);
        }
        let header = decode_header(token).map_err(|_| VerifyError::Invalid)?;
        if header.alg != Algorithm::EdDSA {
            return Err(VerifyError::Invalid);
        }
        let keys = self.shared.keys.read().map_err(|_| VerifyError::Invalid)?;
        let key = match keys.get(header.kid.as_deref().unwrap_or_default()) {
            Some(k) => k,
            // A single configured public key has no kid to match.
            None => match keys.get("") {
                Some(k) => k,
                None => return Err(VerifyError::UnknownKey),
            },
        };
        match decode::<Claims>(token, key, &self.validation) {
            Ok(data) => {
                self.remember(token, &data.claims, now);
                Ok(data.claims)
            }
            Err(e) => match e.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => Err(VerifyError::Expired),
                _ => Err(VerifyError::Invalid),
            },
        }
    }

    /// Whether claims that passed verification have expired by `now` (the same rule as
    /// jsonwebtoken's: `exp` older than now minus the leeway).
    fn expired(&self, claims: &Claims, now: i64) -> bool {
        let leeway = i64::try_from(self.validation.leeway).unwrap_or(0);
        claims.exp < now.saturating_sub(leeway)
    }

    fn remembered(&self, token: &str, now: i64) -> Option<Claims> {
        let verified = self.shared.verified.read().ok()?;
        verified
            .get(token)
            .filter(|claims| !self.expired(claims, now))
            .cloned()
    }

    /// Called with the keys' read lock held (see `Shared::install`).
    fn remember(&self, token: &str, claims: &Claims, now: i64) {
        let Ok(mut verified) = self.shared.verified.write() else {
            return;
        };
        if verified.len() >= VERIFIED_CAPACITY {
            verified.retain(|_, c| !self.expired(c, now));
            if verified.len() >= VERIFIED_CAPACITY {
                verified.clear();
            }
        }
        verified.insert(token.into(), claims.clone());
    }

    /// Verifies, fetching the JWKS again (rate-limited) when the key id is unknown. An
    /// unknown key id is `Invalid` (401) only when the JWKS was fetched and lacks it; while
    /// the JWKS cannot be fetched it is `KeysUnavailable` (503) and a background retry runs.
    pub async fn verify_fetching(&self, token: &str) -> Result<Claims, VerifyError> {
        match self.verify(token) {
            Err(VerifyError::UnknownKey) => {
                // While auth is known to be unreachable the background loop does the
                // fetching: requests answer at once instead of each waiting on a timeout.
                if self.may_refetch()
                    && !self.shared.unreachable.load(Ordering::SeqCst)
                    && let Err(e) = self.shared.refresh().await
                {
                    tracing::warn!(error = %e, "JWKS refresh failed");
                }
                match self.verify(token) {
                    Err(VerifyError::UnknownKey) => {
                        if self.shared.unreachable.load(Ordering::SeqCst) {
                            self.shared.spawn_retry();
                            Err(VerifyError::KeysUnavailable)
                        } else {
                            Err(VerifyError::Invalid)
                        }
                    }
                    other => other,
                }
            }
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use zimmer_config::{Env, Settings};

    use super::*;
    use crate::Role;

    fn token(signer: &Signer, settings: &Settings, exp_in: i64) -> String {
        let now = chrono::Utc::now().timestamp();
        signer
            .sign(
                &serde_json::from_value::<Claims>(serde_json::json!({
                    "sub": "7", "role": Role::Customer, "sid": uuid::Uuid::new_v4(),
                    "jti": uuid::Uuid::new_v4(), "iat": now, "exp": now + exp_in,
                    "iss": settings.jwt.issuer, "aud": settings.jwt.audience,
                }))
                .unwrap(),
            )
            .unwrap()
    }

    /// A verified token is remembered by its exact text only, stops counting once expired,
    /// and is forgotten when the keys change.
    #[test]
    fn remembered_tokens_expire_and_are_forgotten_on_a_key_change() {
        let settings =
            Settings::load("test", Env::from_pairs::<[(&str, &str); 0], _, _>([])).unwrap();
        let signer = Signer::from_pem(&crate::generate_ed25519_pem().unwrap()).unwrap();
        let verifier = Verifier::from_signer(&signer, &settings.jwt).unwrap();
        let token = token(&signer, &settings, 60);
        let now = chrono::Utc::now().timestamp();
        assert!(verifier.remembered(&token, now).is_none());
        assert_eq!(verifier.verify(&token).unwrap().sub, "7");
        assert!(verifier.remembered(&token, now).is_some());
        // Past exp + leeway the memory does not answer (and full verification says Expired).
        assert!(verifier.remembered(&token, now + 60 + 6).is_none());
        // Another signature on the same claims is a different text: verified in full, refused.
        let (head, _) = token.rsplit_once('.').unwrap();
        let forged = format!("{head}.{}", "A".repeat(86));
        assert_eq!(verifier.verify(&forged).err(), Some(VerifyError::Invalid));
        // New keys: nothing verified with the old ones is remembered.
        let other = Signer::from_pem(&crate::generate_ed25519_pem().unwrap()).unwrap();
        verifier
            .shared
            .install(&Jwks {
                keys: vec![other.jwk().clone()],
            })
            .unwrap();
        assert!(verifier.remembered(&token, now).is_none());
        assert!(verifier.verify(&token).is_err());
    }

    #[tokio::test]
    async fn an_unknown_key_while_the_jwks_is_unreachable_is_unavailable_not_invalid() {
        let settings = Settings::load(
            "test",
            Env::from_pairs([("JWKS_URL", "http://127.0.0.1:9/.well-known/jwks.json")]),
        )
        .unwrap();
        let verifier = Verifier::from_jwks(&settings.jwt).await;
        assert!(!verifier.has_keys());
        let signer = Signer::from_pem(&crate::generate_ed25519_pem().unwrap()).unwrap();
        let now = chrono::Utc::now().timestamp();
        let token = signer
            .sign(
                &serde_json::from_value::<Claims>(serde_json::json!({
                    "sub": "1", "role": Role::Customer, "sid": uuid::Uuid::new_v4(),
                    "jti": uuid::Uuid::new_v4(), "iat": now, "exp": now + 60,
                    "iss": settings.jwt.issuer, "aud": settings.jwt.audience,
                }))
                .unwrap(),
            )
            .unwrap();
        assert_eq!(
            verifier.verify_fetching(&token).await.err(),
            Some(VerifyError::KeysUnavailable)
        );
        // A garbage token is still plainly invalid.
        assert_eq!(
            verifier.verify_fetching("not.a.token").await.err(),
            Some(VerifyError::Invalid)
        );
    }
}
