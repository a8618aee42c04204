//! `[auth]`: how bearer tokens are verified and minted, and `[[auth.issuers]]`, the identity
//! providers whose tokens are accepted beside rentgraph's own.
use crate::infra::secret::Secret;
use entity::Role;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::PathBuf;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthSettings {
    pub algorithm: JwtAlgorithm,
    pub jwt_secret: Secret,
    /// RS256, ES256, EdDSA: the PEM public key tokens are verified with (unless `jwks_url`).
    pub public_key_path: PathBuf,
    /// The PEM private key `rentgraph token` signs with (optional; an identity provider
    /// usually signs).
    pub private_key_path: PathBuf,
    pub issuer: String,
    pub audience: String,
    pub token_ttl_secs: u64,
    pub leeway_secs: u64,
    /// Tokens issued (`iat`) longer ago than this are refused whatever their `exp`.
    pub max_token_age_secs: u64,
    /// How long a token's user (existence and role) is remembered before it is read again.
    pub principal_cache_secs: u64,
    /// A JWK Set URL the keys of `issuer`'s tokens come from, in place of `public_key_path`;
    /// also the key set of every `issuers` entry that names none of its own. Empty: none.
    pub jwks_url: String,
    pub jwks: JwksSettings,
    /// Identity providers (Auth0, Okta, Keycloak, Cognito, ...) whose tokens are accepted too.
    pub issuers: Vec<IssuerSettings>,
}

/// `[auth.jwks]`: how key sets are kept fresh.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JwksSettings {
    /// A key set is fetched again after its `Cache-Control: max-age`, but at least this often.
    pub refresh_secs: u64,
    /// A token with an unknown `kid` makes the set be fetched again at once (a provider rotated
    /// its key), but not more often than this, so unknown ids cannot make us hammer it.
    pub min_refetch_secs: u64,
    pub timeout_ms: u64,
    /// Largest key set document accepted.
    pub max_bytes: usize,
}

/// One `[[auth.issuers]]` entry: an identity provider, recognised by the `iss` of its tokens.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IssuerSettings {
    /// The exact `iss` of its tokens (Auth0: `https://TENANT.auth0.com/`, with the slash).
    pub issuer: String,
    /// Accepted `aud` values (one string or a list); a token must name one of them.
    #[serde(deserialize_with = "crate::config::list_or_csv")]
    pub audience: Vec<String>,
    /// Its JWK Set (`https://TENANT.auth0.com/.well-known/jwks.json`); empty: `auth.jwks_url`.
    #[serde(default)]
    pub jwks_url: String,
    /// Signature algorithms accepted from it: RS256, ES256, EdDSA (a list, or one
    /// comma-separated string).
    #[serde(default = "rs256", deserialize_with = "algorithms")]
    pub algorithms: Vec<JwtAlgorithm>,
    /// The claim holding the caller's role or roles (a string or a list), e.g. `role`,
    /// `groups` (Okta), `cognito:groups`, `realm_access.roles` (Keycloak; dots walk into
    /// objects when no claim has the literal name) or `https://rentgraph.example/roles`
    /// (Auth0's namespaced claims). Empty: every caller gets `default_role`.
    #[serde(default = "role_claim")]
    pub role_claim: String,
    /// Provider roles or groups (compared case-insensitively) to rentgraph roles; a value not
    /// listed counts when it is itself a role name (USER, OWNER, PARTNER, ADMIN). When several
    /// match, the strongest wins (ADMIN, OWNER, PARTNER, USER).
    #[serde(default)]
    pub roles: BTreeMap<String, Role>,
    /// The role of a caller whose claim maps to none. Empty (`""`): such tokens are refused.
    #[serde(default = "user_role", deserialize_with = "optional_role")]
    pub default_role: Option<Role>,
    /// How `sub` names a local user: `external` (looked up by `users.external_subject`, which
    /// holds `ISSUER#SUB`) or `user_id` (`sub` is a rentgraph user id).
    #[serde(default)]
    pub subject: SubjectMapping,
    /// `external`: create a local user the first time a valid token names an unknown subject
    /// (with the token's role, email and name). Off: such tokens are refused.
    #[serde(default)]
    pub create_users: bool,
    #[serde(default = "email_claim")]
    pub email_claim: String,
    #[serde(default = "name_claim")]
    pub name_claim: String,
}

#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum SubjectMapping {
    #[default]
    External,
    UserId,
}

fn rs256() -> Vec<JwtAlgorithm> {
    vec![JwtAlgorithm::Rs256]
}
fn role_claim() -> String {
    "role".into()
}
fn user_role() -> Option<Role> {
    Some(Role::User)
}
fn email_claim() -> String {
    "email".into()
}
fn name_claim() -> String {
    "name".into()
}

/// A list of algorithms, or their names in one comma-separated string.
fn algorithms<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<JwtAlgorithm>, D::Error> {
    use serde::de::IntoDeserializer;
    crate::config::list_or_csv(d)?
        .into_iter()
        .map(|name| {
            JwtAlgorithm::deserialize(name.as_str().into_deserializer()).map_err(
                |e: serde::de::value::Error| serde::de::Error::custom(format!("{name:?}: {e}")),
            )
        })
        .collect()
}

/// A role name, or `""` for none.
fn optional_role<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Role>, D::Error> {
    let text = String::deserialize(d)?;
    if text.trim().is_empty() {
        return Ok(None);
    }
    parse_role(&text).map(Some).ok_or_else(|| {
        serde::de::Error::custom(format!("{text:?} is not USER, OWNER, PARTNER or ADMIN"))
    })
}

/// A rentgraph role by its name, in any case.
pub(crate) fn parse_role(text: &str) -> Option<Role> {
    match text.trim().to_ascii_uppercase().as_str() {
        "USER" => Some(Role::User),
        "OWNER" => Some(Role::Owner),
        "PARTNER" => Some(Role::Partner),
        "ADMIN" => Some(Role::Admin),
        _ => None,
    }
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
pub enum JwtAlgorithm {
    #[serde(rename = "HS256")]
    Hs256,
    #[serde(rename = "RS256")]
    Rs256,
    #[serde(rename = "ES256")]
    Es256,
    #[serde(rename = "EdDSA")]
    EdDsa,
}

impl JwtAlgorithm {
    pub(crate) fn jwt(self) -> jsonwebtoken::Algorithm {
        match self {
            Self::Hs256 => jsonwebtoken::Algorithm::HS256,
            Self::Rs256 => jsonwebtoken::Algorithm::RS256,
            Self::Es256 => jsonwebtoken::Algorithm::ES256,
            Self::EdDsa => jsonwebtoken::Algorithm::EdDSA,
        }
    }
}

/// The most clock skew a deployment may tolerate: beyond it an expired token stays usable.
pub const MAX_LEEWAY_SECS: u64 = 300;
