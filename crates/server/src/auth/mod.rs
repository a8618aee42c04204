//! Who is calling. rentgraph's own bearer JWTs carry the user id and role, signed with HS256
//! (a shared secret) or RS256, ES256 or EdDSA (a key pair; the server holds only the public
//! key, from a PEM file or, with `auth.jwks_url`, a JWK Set that may rotate). `iss`, `aud`,
//! `sub`, `exp` and `iat` are required, `nbf` is honoured, the leeway is bounded by config and
//! a token older than `max_token_age_secs` is refused whatever its `exp`. Tokens of identity
//! providers (`auth.issuers`, `providers`) are told apart by their `iss` and mapped to a
//! rentgraph caller there.
//!
//! A valid signature is not enough: the token's user must exist and still have the token's
//! role (`Principals`), so deleting a user or changing a role takes effect within
//! `principal_cache_secs` instead of when the token expires. A request without a token is
//! anonymous; a request with a bad token is refused outright rather than downgraded to
//! anonymous, so a client with an expired token learns about it instead of silently seeing less.
mod jwks;
mod providers;
mod settings;
use crate::store::Store;
use entity::Role;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
pub use settings::{
    AuthSettings, IssuerSettings, JwksSettings, JwtAlgorithm, MAX_LEEWAY_SECS, SubjectMapping,
};
use std::sync::Arc;
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
    /// One audience or a list (RFC 7519 allows both; jsonwebtoken checks it either way).
    aud: Audience,
    exp: u64,
    iat: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    nbf: Option<u64>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(untagged)]
enum Audience {
    One(String),
    Many(Vec<String>),
}

/// Who a verified token says the caller is, before its user is looked up (`Principals`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claimed {
    Anonymous,
    /// A rentgraph user id and role (rentgraph's own tokens, and providers with
    /// `subject = "user_id"`).
    User {
        id: Uuid,
        role: Role,
    },
    /// A provider's subject, mapped to a local user by `users.external_subject`.
    External(External),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct External {
    /// The provider creates a local user for a subject it has not seen (`create_users`).
    pub create: bool,
    /// `ISSUER#SUB`, what `users.external_subject` holds.
    pub subject: String,
    pub role: Role,
    pub email: Option<String>,
    pub name: Option<String>,
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

/// Where the keys of rentgraph's own tokens come from.
#[derive(Clone)]
enum Keys {
    Static(DecodingKey),
    Jwks(Arc<jwks::Jwks>),
}

/// Verifies tokens (and mints them for `rentgraph token` and tests).
#[derive(Clone)]
pub struct Authenticator {
    algorithm: Algorithm,
    /// Absent without a private key: this server then only verifies.
    encoding: Option<EncodingKey>,
    keys: Keys,
    validation: Validation,
    issuer: String,
    audience: String,
    ttl_secs: u64,
    max_age_secs: u64,
    leeway_secs: u64,
    providers: Arc<Vec<providers::Provider>>,
}

fn read_key(path: &std::path::Path) -> Result<Vec<u8>, AuthError> {
    std::fs::read(path).map_err(|source| AuthError::KeyFile {
        path: path.display().to_string(),
        source,
    })
}

/// The key pair of an asymmetric algorithm from PEM files: the public one unless a JWK Set
/// supplies it, the private one when configured.
fn pem_keys(
    settings: &AuthSettings,
) -> Result<(Option<EncodingKey>, Option<DecodingKey>), AuthError> {
    let key_err = |e: jsonwebtoken::errors::Error| AuthError::Sign(e.to_string());
    type Pem<K> = fn(&[u8]) -> jsonwebtoken::errors::Result<K>;
    let (enc, dec): (Pem<EncodingKey>, Pem<DecodingKey>) = match settings.algorithm {
        JwtAlgorithm::Rs256 => (EncodingKey::from_rsa_pem, DecodingKey::from_rsa_pem),
        JwtAlgorithm::Es256 => (EncodingKey::from_ec_pem, DecodingKey::from_ec_pem),
        JwtAlgorithm::EdDsa | JwtAlgorithm::Hs256 => {
            (EncodingKey::from_ed_pem, DecodingKey::from_ed_pem)
        }
    };
    let encoding = if settings.private_key_path.as_os_str().is_empty() {
        None
    } else {
        Some(enc(&read_key(&settings.private_key_path)?).map_err(key_err)?)
    };
    let decoding = if settings.jwks_url.trim().is_empty() {
        Some(dec(&read_key(&settings.public_key_path)?).map_err(key_err)?)
    } else {
        None
    };
    Ok((encoding, decoding))
}

impl Authenticator {
    pub fn new(settings: &AuthSettings) -> Result<Self, AuthError> {
        let key_err = |e: jsonwebtoken::errors::Error| AuthError::Sign(e.to_string());
        let algorithm = settings.algorithm.jwt();
        let (encoding, decoding) = if settings.algorithm == JwtAlgorithm::Hs256 {
            let secret = settings.jwt_secret.expose().as_bytes();
            (
                Some(EncodingKey::from_secret(secret).map_err(key_err)?),
                Some(DecodingKey::from_secret(secret).map_err(key_err)?),
            )
        } else {
            pem_keys(settings)?
        };
        let keys = match decoding {
            Some(key) => Keys::Static(key),
            None => Keys::Jwks(jwks::Jwks::new(settings.jwks_url.trim(), &settings.jwks)?),
        };
        // Exactly one algorithm is accepted, so a token cannot choose how it is checked
        // (`none`, or HS256 keyed with the RS256 public key).
        let mut validation = Validation::new(algorithm);
        validation.set_issuer(&[settings.issuer.as_str()]);
        validation.set_audience(&[settings.audience.as_str()]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub", "iat"]);
        validation.validate_nbf = true;
        validation.leeway = settings.leeway_secs;
        let providers = settings
            .issuers
            .iter()
            .map(|p| {
                providers::Provider::new(
                    p,
                    settings.jwks_url.trim(),
                    &settings.jwks,
                    settings.leeway_secs,
                )
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            algorithm,
            encoding,
            keys,
            validation,
            issuer: settings.issuer.clone(),
            audience: settings.audience.clone(),
            ttl_secs: settings.token_ttl_secs,
            max_age_secs: settings.max_token_age_secs,
            leeway_secs: settings.leeway_secs,
            providers: Arc::new(providers),
        })
    }

    /// Fetches every JWK Set now and keeps them fresh in the background (`jwks`).
    pub async fn start(&self) {
        if let Keys::Jwks(set) = &self.keys {
            set.start().await;
        }
        for p in self.providers.iter() {
            tracing::info!(
                issuer = p.issuer(),
                jwks = p.jwks().url(),
                "identity provider"
            );
            p.jwks().start().await;
        }
    }

    /// Reads an `Authorization` header value (or its absence) into the claimed caller; its
    /// user is not looked up yet (see `Principals`).
    pub async fn authenticate(&self, header: Option<&str>) -> Result<Claimed, AuthError> {
        let Some(value) = header else {
            return Ok(Claimed::Anonymous);
        };
        let token = value
            .strip_prefix("Bearer ")
            .or_else(|| value.strip_prefix("bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or(AuthError::MalformedHeader)?;
        self.verify_any(token).await
    }

    /// Any accepted token: rentgraph's own, or a provider's, told apart by `iss` (read before
    /// the signature is checked only to pick the keys; the check then requires that same
    /// `iss`).
    pub async fn verify_any(&self, token: &str) -> Result<Claimed, AuthError> {
        let invalid = |e: jsonwebtoken::errors::Error| AuthError::InvalidToken(e.to_string());
        let header = jsonwebtoken::decode_header(token).map_err(invalid)?;
        #[derive(Deserialize)]
        struct Issuer {
            #[serde(default)]
            iss: String,
        }
        let iss = jsonwebtoken::dangerous::insecure_decode::<Issuer>(token)
            .map_err(invalid)?
            .claims
            .iss;
        if let Some(provider) = self.providers.iter().find(|p| p.issuer() == iss) {
            return provider.verify(token, &header).await;
        }
        let key = match &self.keys {
            Keys::Static(key) => key.clone(),
            Keys::Jwks(set) => {
                if header.alg != self.algorithm {
                    return Err(AuthError::InvalidToken(format!(
                        "{:?} is not the algorithm of this server's tokens",
                        header.alg
                    )));
                }
                set.key(header.kid.as_deref(), header.alg).await?
            }
        };
        let principal = self.verify_with(token, &key)?;
        Ok(match principal {
            Principal::User { id, role } => Claimed::User { id, role },
            Principal::Anonymous => Claimed::Anonymous,
        })
    }

    /// A rentgraph token checked with the configured static key (tests and tools; the server
    /// uses `authenticate`, which also knows JWK Sets and providers).
    pub fn verify(&self, token: &str) -> Result<Principal, AuthError> {
        match &self.keys {
            Keys::Static(key) => self.verify_with(token, key),
            Keys::Jwks(_) => Err(AuthError::Sign(
                "keys come from a JWK Set here: use authenticate".into(),
            )),
        }
    }

    fn verify_with(&self, token: &str, key: &DecodingKey) -> Result<Principal, AuthError> {
        let data = jsonwebtoken::decode::<Claims>(token, key, &self.validation)
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
            aud: Audience::One(self.audience.clone()),
            exp: u64::try_from(exp).unwrap_or(0),
            iat: u64::try_from(iat).unwrap_or(0),
            nbf: nbf.map(|n| u64::try_from(n).unwrap_or(0)),
        };
        jsonwebtoken::encode(&Header::new(self.algorithm), &claims, encoding)
            .map_err(|e| AuthError::Sign(e.to_string()))
    }
}

/// Checks a verified token's caller against the user it names: the user must exist and have
/// the role the token claims. Answers are cached for `principal_cache_secs` (negative ones
/// too, so a flood of tokens for a deleted user costs one lookup per interval).
///
/// A provider's external subject is resolved to its local user (`users.external_subject`):
/// created on first sight when the provider has `create_users`, and given the token's role when
/// it differs, since the provider is where roles are managed for its users.
#[derive(Clone)]
pub struct Principals {
    store: Store,
    /// A role change is published like any other change to the user's row.
    caches: Arc<crate::infra::cache::Caches>,
    cache: moka::future::Cache<Uuid, Option<Role>>,
    external: moka::future::Cache<String, (Uuid, Role)>,
}

impl Principals {
    pub fn new(
        store: Store,
        caches: Arc<crate::infra::cache::Caches>,
        settings: &AuthSettings,
    ) -> Self {
        let ttl = Duration::from_secs(settings.principal_cache_secs);
        let cache = moka::future::Cache::builder()
            .max_capacity(100_000)
            .time_to_live(ttl)
            .build();
        let external = moka::future::Cache::builder()
            .max_capacity(100_000)
            .time_to_live(ttl)
            .build();
        Self {
            store,
            caches,
            cache,
            external,
        }
    }

    pub async fn check(&self, claimed: Claimed) -> Result<Principal, AuthError> {
        match claimed {
            Claimed::Anonymous => Ok(Principal::Anonymous),
            Claimed::User { id, role } => self.check_user(id, role).await,
            Claimed::External(ext) => self.resolve_external(ext).await,
        }
    }

    async fn check_user(&self, id: Uuid, role: Role) -> Result<Principal, AuthError> {
        let store = self.store.clone();
        let current = self
            .cache
            .try_get_with(id, async move { store.user_role(id).await })
            .await
            .map_err(|e| AuthError::Lookup(e.to_string()))?;
        match current {
            Some(current) if current == role => Ok(Principal::User { id, role }),
            _ => Err(AuthError::UnknownUser),
        }
    }

    async fn resolve_external(&self, ext: External) -> Result<Principal, AuthError> {
        let lookup = |e: crate::store::StoreError| AuthError::Lookup(e.to_string());
        if let Some((id, role)) = self.external.get(&ext.subject).await
            && role == ext.role
        {
            return Ok(Principal::User { id, role });
        }
        let (id, role) = match self
            .store
            .user_by_external_subject(&ext.subject)
            .await
            .map_err(lookup)?
        {
            Some((id, role)) if role == ext.role => (id, role),
            Some((id, _)) => {
                self.store
                    .set_user_role(id, ext.role)
                    .await
                    .map_err(lookup)?;
                tracing::info!(user = %id, role = ?ext.role, "a provider changed a user's role");
                self.cache.invalidate(&id).await;
                self.caches
                    .invalidate(crate::infra::cache::Changed::User(id))
                    .await;
                (id, ext.role)
            }
            None if ext.create => {
                let id = self
                    .store
                    .create_external_user(
                        &ext.subject,
                        ext.email.as_deref(),
                        ext.name.as_deref(),
                        ext.role,
                    )
                    .await
                    .map_err(lookup)?;
                tracing::info!(user = %id, role = ?ext.role, "user created on first sign-in");
                (id, ext.role)
            }
            None => return Err(AuthError::UnknownUser),
        };
        self.external.insert(ext.subject, (id, role)).await;
        Ok(Principal::User { id, role })
    }
}
