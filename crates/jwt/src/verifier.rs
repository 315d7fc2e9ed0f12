use std::{
    collections::HashMap,
    sync::{Mutex, RwLock},
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
}

/// Verifies access tokens. The algorithm is pinned to EdDSA and `iss`, `aud`, `exp` are
/// checked explicitly, so `alg: none`, HS256-with-the-public-key and tokens minted for
/// another audience all fail.
pub struct Verifier {
    keys: RwLock<HashMap<String, DecodingKey>>,
    validation: Validation,
    jwks_url: Option<String>,
    http: reqwest::Client,
    last_fetch: Mutex<Option<Instant>>,
}

/// Unknown key ids trigger at most one JWKS fetch per this interval (key rotation support
/// without letting forged `kid`s hammer auth).
const REFETCH_INTERVAL: Duration = Duration::from_secs(30);

impl Verifier {
    fn with_validation(settings: &JwtSettings, jwks_url: Option<String>) -> Self {
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_issuer(&[settings.issuer.as_str()]);
        validation.set_audience(&[settings.audience.as_str()]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = 5;
        validation.validate_exp = true;
        Self {
            keys: RwLock::new(HashMap::new()),
            validation,
            jwks_url,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(5))
                .build()
                .unwrap_or_default(),
            last_fetch: Mutex::new(None),
        }
    }

    /// Auth verifies with its own signing key: no network.
    pub fn from_signer(signer: &Signer, settings: &JwtSettings) -> anyhow::Result<Self> {
        let v = Self::with_validation(settings, None);
        v.install(&Jwks {
            keys: vec![signer.jwk().clone()],
        })?;
        Ok(v)
    }

    /// A configured public key (PEM, SubjectPublicKeyInfo).
    pub fn from_public_pem(pem: &str, settings: &JwtSettings) -> anyhow::Result<Self> {
        let v = Self::with_validation(settings, None);
        let key = DecodingKey::from_ed_pem(pem.as_bytes())?;
        if let Ok(mut keys) = v.keys.write() {
            keys.insert(String::new(), key);
        }
        Ok(v)
    }

    /// Keys from auth's JWKS. The first fetch is tried now; if auth is not up yet the verifier
    /// starts empty and fetches on the first token it sees.
    pub async fn from_jwks(settings: &JwtSettings) -> Self {
        let v = Self::with_validation(settings, Some(settings.jwks_url.clone()));
        if let Err(e) = v.refresh().await {
            tracing::warn!(error = %e, url = %settings.jwks_url, "JWKS not available yet; will retry on demand");
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
        }
        Ok(())
    }

    /// Fetches the JWKS now.
    pub async fn refresh(&self) -> anyhow::Result<()> {
        let Some(url) = &self.jwks_url else {
            return Ok(());
        };
        if let Ok(mut last) = self.last_fetch.lock() {
            *last = Some(Instant::now());
        }
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

    fn may_refetch(&self) -> bool {
        self.jwks_url.is_some()
            && self
                .last_fetch
                .lock()
                .map(|last| last.is_none_or(|t| t.elapsed() >= REFETCH_INTERVAL))
                .unwrap_or(false)
    }

    /// Verifies with the keys at hand.
    pub fn verify(&self, token: &str) -> Result<Claims, VerifyError> {
        let header = decode_header(token).map_err(|_| VerifyError::Invalid)?;
        if header.alg != Algorithm::EdDSA {
            return Err(VerifyError::Invalid);
        }
        let keys = self.keys.read().map_err(|_| VerifyError::Invalid)?;
        let key = match keys.get(header.kid.as_deref().unwrap_or_default()) {
            Some(k) => k,
            // A single configured public key has no kid to match.
            None => match keys.get("") {
                Some(k) => k,
                None => return Err(VerifyError::UnknownKey),
            },
        };
        match decode::<Claims>(token, key, &self.validation) {
            Ok(data) => Ok(data.claims),
            Err(e) => match e.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => Err(VerifyError::Expired),
                _ => Err(VerifyError::Invalid),
            },
        }
    }

    /// Verifies, fetching the JWKS again (rate-limited) when the key id is unknown.
    pub async fn verify_fetching(&self, token: &str) -> Result<Claims, VerifyError> {
        match self.verify(token) {
            Err(VerifyError::UnknownKey) if self.may_refetch() => {
                if let Err(e) = self.refresh().await {
                    tracing::warn!(error = %e, "JWKS refresh failed");
                }
                self.verify(token).map_err(|e| {
                    if e == VerifyError::UnknownKey {
                        VerifyError::Invalid
                    } else {
                        e
                    }
                })
            }
            Err(VerifyError::UnknownKey) => Err(VerifyError::Invalid),
            other => other,
        }
    }
}
