use aws_lc_rs::{
    digest,
    signature::{Ed25519KeyPair, KeyPair},
};
use base64::{Engine, engine::general_purpose::STANDARD, engine::general_purpose::URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::{Deserialize, Serialize};

use crate::Claims;

/// One public key as published in the JWKS (RFC 8037 OKP).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Jwk {
    pub kty: String,
    pub crv: String,
    pub x: String,
    pub kid: String,
    pub alg: String,
    #[serde(rename = "use")]
    pub use_: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct Jwks {
    pub keys: Vec<Jwk>,
}

fn pem_to_der(pem: &str) -> anyhow::Result<Vec<u8>> {
    let body: String = pem
        .lines()
        .map(str::trim)
        .filter(|l| !l.starts_with("-----") && !l.is_empty())
        .collect();
    Ok(STANDARD.decode(body)?)
}

fn der_to_pem(der: &[u8]) -> String {
    pem_block("PRIVATE KEY", der)
}

fn pem_block(label: &str, der: &[u8]) -> String {
    let b64 = STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// The public half of a private key PEM, as an SPKI `PUBLIC KEY` PEM (for `JWT_PUBLIC_KEY`).
pub fn public_pem_from_private_pem(pem: &str) -> anyhow::Result<String> {
    let (_, pair) = key_pair(pem)?;
    // SubjectPublicKeyInfo for Ed25519 (RFC 8410): a fixed 12-byte prefix and the 32-byte key.
    let mut der = vec![
        0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
    ];
    der.extend_from_slice(pair.public_key().as_ref());
    Ok(pem_block("PUBLIC KEY", &der))
}

/// A new Ed25519 private key as PKCS#8 PEM.
pub fn generate_ed25519_pem() -> anyhow::Result<String> {
    let pair =
        Ed25519KeyPair::generate().map_err(|e| anyhow::anyhow!("key generation failed: {e}"))?;
    let der = pair
        .to_pkcs8()
        .map_err(|e| anyhow::anyhow!("key encoding failed: {e}"))?;
    Ok(der_to_pem(der.as_ref()))
}

fn key_pair(pem: &str) -> anyhow::Result<(Vec<u8>, Ed25519KeyPair)> {
    let der = pem_to_der(pem)?;
    let pair = Ed25519KeyPair::from_pkcs8(&der)
        .map_err(|e| anyhow::anyhow!("not an Ed25519 PKCS#8 private key: {e}"))?;
    Ok((der, pair))
}

/// The public JWK of a private key PEM; the key id is derived from the public key, so every
/// replica of auth with the same key publishes the same `kid`.
pub fn public_jwk_from_pem(pem: &str) -> anyhow::Result<Jwk> {
    let (_, pair) = key_pair(pem)?;
    Ok(jwk_for(pair.public_key().as_ref()))
}

fn jwk_for(public: &[u8]) -> Jwk {
    let thumb = digest::digest(&digest::SHA256, public);
    Jwk {
        kty: "OKP".into(),
        crv: "Ed25519".into(),
        x: URL_SAFE_NO_PAD.encode(public),
        kid: URL_SAFE_NO_PAD.encode(&thumb.as_ref()[..12]),
        alg: "EdDSA".into(),
        use_: "sig".into(),
    }
}

/// Signs access tokens (auth only: only auth has the private key).
#[derive(Clone)]
pub struct Signer {
    key: EncodingKey,
    jwk: Jwk,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("kid", &self.jwk.kid)
            .finish()
    }
}

impl Signer {
    pub fn from_pem(pem: &str) -> anyhow::Result<Self> {
        let (_, pair) = key_pair(pem)?;
        // Re-encode as PKCS#8 v2 so a v1 key (as OpenSSL writes them) signs the same way.
        let der = pair
            .to_pkcs8()
            .map_err(|e| anyhow::anyhow!("key encoding failed: {e}"))?;
        Ok(Self {
            key: EncodingKey::from_ed_der(der.as_ref()),
            jwk: jwk_for(pair.public_key().as_ref()),
        })
    }

    pub fn jwk(&self) -> &Jwk {
        &self.jwk
    }

    pub fn jwks(&self) -> Jwks {
        Jwks {
            keys: vec![self.jwk.clone()],
        }
    }

    pub fn sign(&self, claims: &Claims) -> anyhow::Result<String> {
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(self.jwk.kid.clone());
        Ok(jsonwebtoken::encode(&header, claims, &self.key)?)
    }
}
