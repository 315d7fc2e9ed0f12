//! Identity across services: access-token claims, Ed25519 keys, the verifier every service
//! uses (a configured public key or auth's JWKS), the in-memory revocation set fed by
//! `session.revoked` / `user.deactivated`, and the actix extractor for the current user with
//! the one role check.

mod check;
mod claims;
mod extractor;
mod keys;
mod revocation;
mod verifier;

pub use check::{TOKEN_CHECK_PATH, token_check};
pub use claims::{Claims, Role};
pub use extractor::{AuthState, CurrentUser, MaybeUser, bearer_token};
pub use keys::{
    Jwk, Jwks, Signer, generate_ed25519_pem, public_jwk_from_pem, public_pem_from_private_pem,
};
pub use revocation::Revocations;
pub use verifier::{Verifier, VerifyError};
