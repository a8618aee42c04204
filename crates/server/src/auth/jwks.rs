//! An identity provider's JWK Set, kept fresh: fetched at start, again after its
//! `Cache-Control: max-age` (bounded by `auth.jwks.refresh_secs`), and at once when a token
//! names a key id the set does not hold (the provider rotated its key), at most once per
//! `auth.jwks.min_refetch_secs`. A failed fetch keeps the keys already known, so a provider's
//! outage does not sign everyone out. jsonwebtoken parses the set and makes the keys.
use super::AuthError;
use super::settings::JwksSettings;
use jsonwebtoken::jwk::{AlgorithmParameters, JwkSet, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};
use std::sync::{Arc, RwLock, Weak};
use std::time::{Duration, Instant};

/// One usable key of the set.
struct Key {
    kid: Option<String>,
    /// The algorithm the set binds the key to, if it says.
    alg: Option<Algorithm>,
    key: DecodingKey,
}

pub(crate) struct Jwks {
    url: String,
    client: reqwest::Client,
    settings: JwksSettings,
    keys: RwLock<Arc<Vec<Key>>>,
    /// When an unknown key id last made the set be fetched; held while fetching, so concurrent
    /// misses fetch once. Scheduled refreshes do not count: a rotation just after one is still
    /// picked up at once.
    last_refetch: tokio::sync::Mutex<Option<Instant>>,
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum FetchError {
    #[error("cannot fetch {url}: {cause}")]
    Http { url: String, cause: String },
    #[error("{url} is not a JWK Set: {cause}")]
    Parse { url: String, cause: String },
}

impl Jwks {
    pub(crate) fn new(url: &str, settings: &JwksSettings) -> Result<Arc<Self>, AuthError> {
        crate::infra::install_crypto_provider();
        let client = reqwest::Client::builder()
            .timeout(Duration::from_millis(settings.timeout_ms))
            .build()
            .map_err(|e| AuthError::Sign(format!("cannot make the JWKS client: {e}")))?;
        if !url.starts_with("https://") {
            tracing::warn!(url, "a JWK Set over plain HTTP can be replaced in transit");
        }
        Ok(Arc::new(Self {
            url: url.to_owned(),
            client,
            settings: settings.clone(),
            keys: RwLock::new(Arc::new(Vec::new())),
            last_refetch: tokio::sync::Mutex::new(None),
        }))
    }

    pub(crate) fn url(&self) -> &str {
        &self.url
    }

    /// Fetches the set now and keeps refreshing it in the background for as long as anything
    /// holds it. A failed first fetch is logged; tokens of this provider are refused until a
    /// later one succeeds.
    pub(crate) async fn start(self: &Arc<Self>) {
        let ttl = self.refresh().await;
        let weak = Arc::downgrade(self);
        tokio::spawn(refresh_loop(weak, ttl));
    }

    /// The key for a token's header: by `kid`, or the only key for the algorithm when the
    /// token names none. An unknown `kid` fetches the set again (rate-limited) and looks once
    /// more.
    pub(crate) async fn key(
        &self,
        kid: Option<&str>,
        alg: Algorithm,
    ) -> Result<DecodingKey, AuthError> {
        if let Some(key) = self.find(kid, alg) {
            return Ok(key);
        }
        if kid.is_some() {
            let mut last = self.last_refetch.lock().await;
            let recent = last
                .is_some_and(|t| t.elapsed() < Duration::from_secs(self.settings.min_refetch_secs));
            if !recent {
                *last = Some(Instant::now());
                if let Err(e) = self.fetch().await {
                    tracing::warn!(error = %e, "refetching a JWK Set for an unknown key id failed");
                }
            }
        }
        self.find(kid, alg).ok_or_else(|| {
            AuthError::InvalidToken(match kid {
                Some(kid) => format!("no key {kid:?} in the issuer's key set"),
                None => {
                    "the token names no key (kid) and the key set has no single key for it".into()
                }
            })
        })
    }

    fn find(&self, kid: Option<&str>, alg: Algorithm) -> Option<DecodingKey> {
        let keys = self
            .keys
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        let fits = |k: &&Key| k.alg.is_none_or(|a| a == alg);
        match kid {
            Some(kid) => keys
                .iter()
                .filter(fits)
                .find(|k| k.kid.as_deref() == Some(kid))
                .map(|k| k.key.clone()),
            None => {
                let mut usable = keys.iter().filter(fits);
                match (usable.next(), usable.next()) {
                    (Some(only), None) => Some(only.key.clone()),
                    _ => None,
                }
            }
        }
    }

    /// Fetches and swaps in the set; returns how long it may be kept.
    async fn refresh(&self) -> Duration {
        match self.fetch().await {
            Ok(ttl) => ttl,
            Err(e) => {
                tracing::error!(error = %e, "fetching a JWK Set failed; its tokens are refused until it succeeds");
                Duration::from_secs(self.settings.min_refetch_secs.max(1))
            }
        }
    }

    async fn fetch(&self) -> Result<Duration, FetchError> {
        let http = |cause: String| FetchError::Http {
            url: self.url.clone(),
            cause,
        };
        let resp = self
            .client
            .get(&self.url)
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| http(e.to_string()))?;
        if !resp.status().is_success() {
            return Err(http(format!("status {}", resp.status())));
        }
        let max_age = resp
            .headers()
            .get(reqwest::header::CACHE_CONTROL)
            .and_then(|v| v.to_str().ok())
            .and_then(max_age);
        if resp
            .content_length()
            .is_some_and(|n| n > self.settings.max_bytes as u64)
        {
            return Err(http(
                "the key set is larger than auth.jwks.max_bytes".into(),
            ));
        }
        let body = resp.bytes().await.map_err(|e| http(e.to_string()))?;
        if body.len() > self.settings.max_bytes {
            return Err(http(
                "the key set is larger than auth.jwks.max_bytes".into(),
            ));
        }
        let set: JwkSet = serde_json::from_slice(&body).map_err(|e| FetchError::Parse {
            url: self.url.clone(),
            cause: e.to_string(),
        })?;
        let keys = usable_keys(&set);
        tracing::info!(url = %self.url, keys = keys.len(), "JWK Set loaded");
        *self
            .keys
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(keys);
        let ceiling = self.settings.refresh_secs.max(1);
        let floor = self.settings.min_refetch_secs.min(ceiling);
        Ok(Duration::from_secs(
            max_age.unwrap_or(ceiling).clamp(floor, ceiling),
        ))
    }
}

async fn refresh_loop(jwks: Weak<Jwks>, mut ttl: Duration) {
    loop {
        tokio::time::sleep(ttl).await;
        let Some(jwks) = jwks.upgrade() else {
            return;
        };
        ttl = jwks.refresh().await;
    }
}

/// The set's signature keys: public keys only (a symmetric `oct` key in a published set would
/// let anyone who reads the set sign), not those marked for encryption, and only those
/// jsonwebtoken can use.
fn usable_keys(set: &JwkSet) -> Vec<Key> {
    set.keys
        .iter()
        .filter(|jwk| !matches!(jwk.algorithm, AlgorithmParameters::OctetKey(_)))
        .filter(|jwk| !matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption)))
        .filter_map(|jwk| {
            let key = DecodingKey::from_jwk(jwk).ok()?;
            let alg = match jwk.common.key_algorithm {
                None => None,
                Some(a) => Some(signature_algorithm(a)?),
            };
            Some(Key {
                kid: jwk.common.key_id.clone(),
                alg,
                key,
            })
        })
        .collect()
}

fn signature_algorithm(a: KeyAlgorithm) -> Option<Algorithm> {
    Some(match a {
        KeyAlgorithm::RS256 => Algorithm::RS256,
        KeyAlgorithm::RS384 => Algorithm::RS384,
        KeyAlgorithm::RS512 => Algorithm::RS512,
        KeyAlgorithm::PS256 => Algorithm::PS256,
        KeyAlgorithm::PS384 => Algorithm::PS384,
        KeyAlgorithm::PS512 => Algorithm::PS512,
        KeyAlgorithm::ES256 => Algorithm::ES256,
        KeyAlgorithm::ES384 => Algorithm::ES384,
        KeyAlgorithm::EdDSA => Algorithm::EdDSA,
        _ => return None,
    })
}

/// `max-age=N` of a Cache-Control value (`no-store`/`no-cache` count as 0).
fn max_age(value: &str) -> Option<u64> {
    let mut result = None;
    for directive in value.split(',').map(str::trim) {
        let lower = directive.to_ascii_lowercase();
        if lower == "no-store" || lower == "no-cache" {
            return Some(0);
        }
        if let Some(n) = lower.strip_prefix("max-age=") {
            result = n.trim_matches('"').parse().ok();
        }
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_control_max_age_is_read() {
        assert_eq!(max_age("public, max-age=600"), Some(600));
        assert_eq!(max_age("max-age=\"60\", must-revalidate"), Some(60));
        assert_eq!(max_age("no-store"), Some(0));
        assert_eq!(max_age("public"), None);
    }

    #[test]
    fn symmetric_and_encryption_keys_are_never_used_to_verify() {
        let set: JwkSet = serde_json::from_value(serde_json::json!({ "keys": [
            { "kty": "oct", "kid": "shared", "k": "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0" },
            { "kty": "OKP", "crv": "Ed25519", "kid": "enc", "use": "enc",
              "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo" },
            { "kty": "OKP", "crv": "Ed25519", "kid": "sig", "alg": "EdDSA",
              "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo" }
        ]}))
        .expect("a set");
        let keys = usable_keys(&set);
        let kids: Vec<_> = keys.iter().map(|k| k.kid.clone()).collect();
        assert_eq!(kids, vec![Some("sig".to_owned())]);
        assert_eq!(keys[0].alg, Some(Algorithm::EdDSA));
    }
}
