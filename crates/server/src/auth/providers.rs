//! Identity providers (`[[auth.issuers]]`): tokens recognised by their `iss`, checked against
//! the provider's JWK Set with the provider's algorithms and audiences, and mapped to a
//! rentgraph caller: the role from a configured claim (directly or through a table of the
//! provider's roles or groups), the subject either a rentgraph user id or an external subject
//! that `Principals` resolves to a local user (created on first sight when enabled).
use super::jwks::Jwks;
use super::settings::{IssuerSettings, JwksSettings, SubjectMapping, parse_role};
use super::{AuthError, Claimed, External};
use entity::Role;
use jsonwebtoken::{Header, Validation};
use std::collections::BTreeMap;
use std::sync::Arc;
use uuid::Uuid;

pub(crate) struct Provider {
    issuer: String,
    jwks: Arc<Jwks>,
    validation: Validation,
    role_claim: String,
    /// Lower-cased provider role -> rentgraph role.
    roles: BTreeMap<String, Role>,
    default_role: Option<Role>,
    subject: SubjectMapping,
    create_users: bool,
    email_claim: String,
    name_claim: String,
}

impl Provider {
    pub(crate) fn new(
        s: &IssuerSettings,
        default_jwks_url: &str,
        jwks: &JwksSettings,
        leeway_secs: u64,
    ) -> Result<Self, AuthError> {
        let url = if s.jwks_url.trim().is_empty() {
            default_jwks_url
        } else {
            s.jwks_url.trim()
        };
        let algorithms: Vec<_> = s.algorithms.iter().map(|a| a.jwt()).collect();
        let mut validation = Validation::new(algorithms[0]);
        validation.algorithms = algorithms;
        validation.set_issuer(&[s.issuer.as_str()]);
        validation.set_audience(&s.audience);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.validate_nbf = true;
        validation.leeway = leeway_secs;
        Ok(Self {
            issuer: s.issuer.clone(),
            jwks: Jwks::new(url, jwks)?,
            validation,
            role_claim: s.role_claim.clone(),
            roles: s
                .roles
                .iter()
                .map(|(k, v)| (k.to_lowercase(), *v))
                .collect(),
            default_role: s.default_role,
            subject: s.subject,
            create_users: s.create_users,
            email_claim: s.email_claim.clone(),
            name_claim: s.name_claim.clone(),
        })
    }

    pub(crate) fn issuer(&self) -> &str {
        &self.issuer
    }

    pub(crate) fn jwks(&self) -> &Arc<Jwks> {
        &self.jwks
    }

    /// Verifies a token that claims to be this provider's and maps it to a caller.
    pub(crate) async fn verify(&self, token: &str, header: &Header) -> Result<Claimed, AuthError> {
        if !self.validation.algorithms.contains(&header.alg) {
            return Err(AuthError::InvalidToken(format!(
                "{:?} is not an algorithm this issuer's tokens may use",
                header.alg
            )));
        }
        let key = self.jwks.key(header.kid.as_deref(), header.alg).await?;
        let claims = jsonwebtoken::decode::<serde_json::Value>(token, &key, &self.validation)
            .map_err(|e| AuthError::InvalidToken(e.to_string()))?
            .claims;
        let sub = claims
            .get("sub")
            .and_then(serde_json::Value::as_str)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| AuthError::InvalidToken("`sub` is missing".into()))?;
        let role = self.role(&claims)?;
        match self.subject {
            SubjectMapping::UserId => {
                let id = Uuid::parse_str(sub)
                    .map_err(|_| AuthError::InvalidToken("`sub` is not a user id".into()))?;
                Ok(Claimed::User { id, role })
            }
            SubjectMapping::External => Ok(Claimed::External(External {
                create: self.create_users,
                subject: format!("{}#{sub}", self.issuer),
                role,
                email: text_claim(&claims, &self.email_claim),
                name: text_claim(&claims, &self.name_claim),
            })),
        }
    }

    /// The strongest rentgraph role the role claim maps to, else the default role.
    fn role(&self, claims: &serde_json::Value) -> Result<Role, AuthError> {
        let values: Vec<&str> = match claim(claims, &self.role_claim) {
            Some(serde_json::Value::String(s)) => vec![s.as_str()],
            Some(serde_json::Value::Array(items)) => {
                items.iter().filter_map(serde_json::Value::as_str).collect()
            }
            _ => Vec::new(),
        };
        let strongest = values
            .iter()
            .filter_map(|v| {
                self.roles
                    .get(&v.to_lowercase())
                    .copied()
                    .or_else(|| parse_role(v))
            })
            .max_by_key(|r| strength(*r));
        strongest.or(self.default_role).ok_or_else(|| {
            AuthError::InvalidToken(format!(
                "the token's `{}` claim names no rentgraph role",
                self.role_claim
            ))
        })
    }
}

fn strength(role: Role) -> u8 {
    match role {
        Role::User => 0,
        Role::Partner => 1,
        Role::Owner => 2,
        Role::Admin => 3,
    }
}

/// A claim by its literal name (Auth0's `https://…/roles`, Cognito's `cognito:groups`), else
/// by a dotted path into nested objects (Keycloak's `realm_access.roles`).
fn claim<'a>(claims: &'a serde_json::Value, name: &str) -> Option<&'a serde_json::Value> {
    if name.is_empty() {
        return None;
    }
    claims.get(name).or_else(|| {
        name.split('.')
            .try_fold(claims, |value, part| value.get(part))
    })
}

fn text_claim(claims: &serde_json::Value, name: &str) -> Option<String> {
    claim(claims, name)
        .and_then(serde_json::Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::settings::JwtAlgorithm;
    use serde_json::json;

    fn provider(role_claim: &str, roles: &[(&str, Role)], default_role: Option<Role>) -> Provider {
        let settings = IssuerSettings {
            issuer: "https://idp.example/".into(),
            audience: vec!["api".into()],
            jwks_url: "http://127.0.0.1:9/jwks".into(),
            algorithms: vec![JwtAlgorithm::Rs256],
            role_claim: role_claim.into(),
            roles: roles.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect(),
            default_role,
            subject: SubjectMapping::External,
            create_users: false,
            email_claim: "email".into(),
            name_claim: "name".into(),
        };
        let jwks = JwksSettings {
            refresh_secs: 60,
            min_refetch_secs: 1,
            timeout_ms: 100,
            max_bytes: 1000,
        };
        Provider::new(&settings, "", &jwks, 0).expect("provider")
    }

    #[test]
    fn roles_come_from_a_mapped_claim_the_strongest_winning() {
        let p = provider(
            "https://rentgraph.example/roles",
            &[("Landlords", Role::Owner)],
            Some(Role::User),
        );
        let claims = json!({ "https://rentgraph.example/roles": ["renters", "landlords"] });
        assert_eq!(p.role(&claims).ok(), Some(Role::Owner));
        let claims = json!({ "https://rentgraph.example/roles": ["landlords", "admin"] });
        assert_eq!(
            p.role(&claims).ok(),
            Some(Role::Admin),
            "a role name counts as itself"
        );
        assert_eq!(
            p.role(&json!({})).ok(),
            Some(Role::User),
            "the default role"
        );
    }

    #[test]
    fn nested_claims_are_walked_and_no_role_without_a_default_is_refused() {
        let p = provider("realm_access.roles", &[("rg-partner", Role::Partner)], None);
        let claims = json!({ "realm_access": { "roles": ["offline_access", "rg-partner"] } });
        assert_eq!(p.role(&claims).ok(), Some(Role::Partner));
        let claims = json!({ "realm_access": { "roles": ["offline_access"] } });
        assert!(matches!(p.role(&claims), Err(AuthError::InvalidToken(_))));
    }
}
