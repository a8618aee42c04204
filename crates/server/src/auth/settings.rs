//! `[auth]`: how bearer tokens are verified and minted.
use crate::infra::secret::Secret;
use serde::Deserialize;
use std::path::PathBuf;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthSettings {
    pub algorithm: JwtAlgorithm,
    pub jwt_secret: Secret,
    /// RS256: the PEM public key tokens are verified with.
    pub public_key_path: PathBuf,
    /// RS256: the PEM private key `rentgraph token` signs with (optional; an identity
    /// provider usually signs).
    pub private_key_path: PathBuf,
    pub issuer: String,
    pub audience: String,
    pub token_ttl_secs: u64,
    pub leeway_secs: u64,
    /// Tokens issued (`iat`) longer ago than this are refused whatever their `exp`.
    pub max_token_age_secs: u64,
    /// How long a token's user (existence and role) is remembered before it is read again.
    pub principal_cache_secs: u64,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
pub enum JwtAlgorithm {
    #[serde(rename = "HS256")]
    Hs256,
    #[serde(rename = "RS256")]
    Rs256,
}

/// The most clock skew a deployment may tolerate: beyond it an expired token stays usable.
pub const MAX_LEEWAY_SECS: u64 = 300;
