//! Who is calling. Bearer JWTs (HS256) carry the user id and role; `iss`, `aud` and `exp` are
//! required and checked. A request without a token is anonymous and may read public listings
//! only; a request with a bad token is refused outright rather than downgraded to anonymous,
//! so a client with an expired token learns about it instead of silently seeing less.
use crate::config::AuthSettings;
use entity::Role;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
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
}

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: String,
    role: Role,
    iss: String,
    aud: String,
    exp: u64,
    iat: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("the bearer token is invalid: {0}")]
    InvalidToken(String),
    #[error("the Authorization header must be `Bearer <token>`")]
    MalformedHeader,
    #[error("cannot use the signing key: {0}")]
    Sign(String),
}

#[derive(Clone)]
pub struct Authenticator {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    issuer: String,
    audience: String,
    ttl_secs: u64,
}

impl Authenticator {
    pub fn new(settings: &AuthSettings) -> Result<Self, AuthError> {
        let secret = settings.jwt_secret.expose().as_bytes();
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[settings.issuer.as_str()]);
        validation.set_audience(&[settings.audience.as_str()]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = settings.leeway_secs;
        let key_err = |e: jsonwebtoken::errors::Error| AuthError::Sign(e.to_string());
        Ok(Self {
            encoding: EncodingKey::from_secret(secret).map_err(key_err)?,
            decoding: DecodingKey::from_secret(secret).map_err(key_err)?,
            validation,
            issuer: settings.issuer.clone(),
            audience: settings.audience.clone(),
            ttl_secs: settings.token_ttl_secs,
        })
    }

    /// Reads an `Authorization` header value (or its absence) into a principal.
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
        let claims = Claims {
            sub: user.to_string(),
            role,
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            exp: u64::try_from(now + ttl_secs).unwrap_or(0),
            iat: u64::try_from(now).unwrap_or(0),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|e| AuthError::Sign(e.to_string()))
    }
}
