//! Who is calling. Bearer JWTs carry the user id and role, signed with HS256 (a shared secret)
//! or RS256 (an identity provider's key; the server holds only the public key). `iss`, `aud`,
//! `sub`, `exp` and `iat` are required, `nbf` is honoured, the leeway is bounded by config and
//! a token older than `max_token_age_secs` is refused whatever its `exp`.
//!
//! A valid signature is not enough: the token's user must exist and still have the token's
//! role (`Principals`), so deleting a user or changing a role takes effect within
//! `principal_cache_secs` instead of when the token expires. A request without a token is
//! anonymous; a request with a bad token is refused outright rather than downgraded to
//! anonymous, so a client with an expired token learns about it instead of silently seeing less.
mod settings;
use crate::store::Store;
use entity::Role;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
pub use settings::{AuthSettings, JwtAlgorithm, MAX_LEEWAY_SECS};
use std::time::Duration;
use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Principal {
    Anonymous,
    User { id: Uuid, role: Role },
}

impl Principal {
    pub fn user_id(&self) -> Option<Uuid> {
        match self {
            Self::User { id, .. } => Some(*id),
            Self::Anonymous => None,
        }
    }
    pub fn is_admin(&self) -> bool {
        matches!(
            self,
            Self::User {
                role: Role::Admin,
                ..
            }
        )
    }
    /// The user themself or an admin.
    pub fn may_see_user(&self, user: Uuid) -> bool {
        self.is_admin() || self.user_id() == Some(user)
    }

    /// The one listing visibility rule: active listings are public, inactive ones belong to
    /// their owner and admins. (Its SQL twin for interaction lists is
    /// `store::interactions::visible_listing`.)
    pub fn may_see_listing(&self, listing: &entity::property::Model) -> bool {
        listing.is_active || self.may_see_user(listing.owner_id)
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: String,
    role: Role,
    iss: String,
    aud: String,
    exp: u64,
    iat: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    nbf: Option<u64>,
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("the bearer token is invalid: {0}")]
    InvalidToken(String),
    #[error("the Authorization header must be `Bearer <token>`")]
    MalformedHeader,
    #[error("the token's user does not exist or no longer has the token's role")]
    UnknownUser,
    #[error("cannot check the token's user: {0}")]
    Lookup(String),
    #[error("cannot use the signing key: {0}")]
    Sign(String),
    #[error("cannot read {path}: {source}")]
    KeyFile {
        path: String,
        source: std::io::Error,
    },
}

/// Verifies tokens (and mints them for `rentgraph token` and tests).
#[derive(Clone)]
pub struct Authenticator {
    algorithm: Algorithm,
    /// Absent for RS256 without a private key: this server then only verifies.
    encoding: Option<EncodingKey>,
    decoding: DecodingKey,
    validation: Validation,
    issuer: String,
    audience: String,
    ttl_secs: u64,
    max_age_secs: u64,
    leeway_secs: u64,
}

fn read_key(path: &std::path::Path) -> Result<Vec<u8>, AuthError> {
    std::fs::read(path).map_err(|source| AuthError::KeyFile {
        path: path.display().to_string(),
        source,
    })
}

impl Authenticator {
    pub fn new(settings: &AuthSettings) -> Result<Self, AuthError> {
        let key_err = |e: jsonwebtoken::errors::Error| AuthError::Sign(e.to_string());
        let (algorithm, encoding, decoding) = match settings.algorithm {
            JwtAlgorithm::Hs256 => {
                let secret = settings.jwt_secret.expose().as_bytes();
                (
                    Algorithm::HS256,
                    Some(EncodingKey::from_secret(secret).map_err(key_err)?),
                    DecodingKey::from_secret(secret).map_err(key_err)?,
                )
            }
            JwtAlgorithm::Rs256 => {
                let public = read_key(&settings.public_key_path)?;
                let encoding = if settings.private_key_path.as_os_str().is_empty() {
                    None
                } else {
                    let private = read_key(&settings.private_key_path)?;
                    Some(EncodingKey::from_rsa_pem(&private).map_err(key_err)?)
                };
                (
                    Algorithm::RS256,
                    encoding,
                    DecodingKey::from_rsa_pem(&public).map_err(key_err)?,
                )
            }
        };
        // Exactly one algorithm is accepted, so a token cannot choose how it is checked
        // (`none`, or HS256 keyed with the RS256 public key).
        let mut validation = Validation::new(algorithm);
        validation.set_issuer(&[settings.issuer.as_str()]);
        validation.set_audience(&[settings.audience.as_str()]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub", "iat"]);
        validation.validate_nbf = true;
        validation.leeway = settings.leeway_secs;
        Ok(Self {
            algorithm,
            encoding,
            decoding,
            validation,
            issuer: settings.issuer.clone(),
            audience: settings.audience.clone(),
            ttl_secs: settings.token_ttl_secs,
            max_age_secs: settings.max_token_age_secs,
            leeway_secs: settings.leeway_secs,
        })
    }

    /// Reads an `Authorization` header value (or its absence) into the claimed principal; its
    /// user is not looked up yet (see `Principals`).
    pub fn authenticate(&self, header: Option<&str>) -> Result<Principal, AuthError> {
        let Some(value) = header else {
            return Ok(Principal::Anonymous);
        };
        let token = value
            .strip_prefix("Bearer ")
            .or_else(|| value.strip_prefix("bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or(AuthError::MalformedHeader)?;
        self.verify(token)
    }

    pub fn verify(&self, token: &str) -> Result<Principal, AuthError> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|e| AuthError::InvalidToken(e.to_string()))?;
        let now = u64::try_from(chrono::Utc::now().timestamp()).unwrap_or(0);
        let iat = data.claims.iat;
        if iat > now.saturating_add(self.leeway_secs) {
            return Err(AuthError::InvalidToken("`iat` is in the future".into()));
        }
        if now.saturating_sub(iat) > self.max_age_secs.saturating_add(self.leeway_secs) {
            return Err(AuthError::InvalidToken(
                "the token is older than the maximum token age".into(),
            ));
        }
        let id = Uuid::parse_str(&data.claims.sub)
            .map_err(|_| AuthError::InvalidToken("`sub` is not a user id".into()))?;
        Ok(Principal::User {
            id,
            role: data.claims.role,
        })
    }

    pub fn mint(&self, user: Uuid, role: Role) -> Result<String, AuthError> {
        self.mint_with_ttl(user, role, self.ttl_secs as i64)
    }

    /// A negative ttl makes an already expired token (tests use it).
    pub fn mint_with_ttl(
        &self,
        user: Uuid,
        role: Role,
        ttl_secs: i64,
    ) -> Result<String, AuthError> {
        let now = chrono::Utc::now().timestamp();
        self.mint_at(user, role, now, now.saturating_add(ttl_secs), None)
    }

    /// A token with explicit `iat`, `exp` and `nbf` (Unix seconds), for tests of the time rules.
    pub fn mint_at(
        &self,
        user: Uuid,
        role: Role,
        iat: i64,
        exp: i64,
        nbf: Option<i64>,
    ) -> Result<String, AuthError> {
        let encoding = self.encoding.as_ref().ok_or_else(|| {
            AuthError::Sign("no private key is configured (auth.private_key_path)".into())
        })?;
        let claims = Claims {
            sub: user.to_string(),
            role,
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            exp: u64::try_from(exp).unwrap_or(0),
            iat: u64::try_from(iat).unwrap_or(0),
            nbf: nbf.map(|n| u64::try_from(n).unwrap_or(0)),
        };
        jsonwebtoken::encode(&Header::new(self.algorithm), &claims, encoding)
            .map_err(|e| AuthError::Sign(e.to_string()))
    }
}

/// Checks a verified token's principal against the user it names: the user must exist and
/// have the role the token claims. Answers are cached for `principal_cache_secs` (negative ones
/// too, so a flood of tokens for a deleted user costs one lookup per interval).
#[derive(Clone)]
pub struct Principals {
    store: Store,
    cache: moka::future::Cache<Uuid, Option<Role>>,
}

impl Principals {
    pub fn new(store: Store, settings: &AuthSettings) -> Self {
        let cache = moka::future::Cache::builder()
            .max_capacity(100_000)
            .time_to_live(Duration::from_secs(settings.principal_cache_secs))
            .build();
        Self { store, cache }
    }

    pub async fn check(&self, claimed: Principal) -> Result<Principal, AuthError> {
        let Principal::User { id, role } = claimed else {
            return Ok(claimed);
        };
        let store = self.store.clone();
        let current = self
            .cache
            .try_get_with(id, async move { store.user_role(id).await })
            .await
            .map_err(|e| AuthError::Lookup(e.to_string()))?;
        match current {
            Some(current) if current == role => Ok(claimed),
            _ => Err(AuthError::UnknownUser),
        }
    }
}
