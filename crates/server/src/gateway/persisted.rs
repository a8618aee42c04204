//! Persisted documents. Two kinds, one lookup:
//! - **APQ** (Apollo's automatic persisted queries): a client sends `extensions.persistedQuery
//!   { version: 1, sha256Hash }`; the server answers `PersistedQueryNotFound` until the client
//!   sends the query with its hash once, after which the hash alone runs it, on every instance
//!   (in-process LRU, then Redis). A query whose hash does not match is refused and not stored.
//! - **Trusted documents**: manifests in Apollo's persisted query manifest format under
//!   `persisted.manifest_dir`, loaded and validated against the schema at start-up (a document
//!   that no longer validates stops the start, naming it). Requests name them by `documentId`
//!   (`sha256:<hex>`, GraphQL over HTTP's persisted documents) or by APQ hash. PARTNER callers,
//!   and everyone when `persisted.only = true`, may run only these.
use crate::infra::redis::RedisStore;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum PersistedError {
    #[error("cannot read the persisted query manifests in {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path} is not an Apollo persisted query manifest: {reason}")]
    Format { path: String, reason: String },
    #[error("{path}: operation {name} has id {id}, but its body hashes to {actual}")]
    Hash {
        path: String,
        name: String,
        id: String,
        actual: String,
    },
    #[error("{path}: operation {name} ({id}) no longer validates against the schema: {errors}")]
    Invalid {
        path: String,
        name: String,
        id: String,
        errors: String,
    },
}

/// A document from a manifest.
#[derive(Debug, Clone)]
pub struct TrustedDocument {
    /// Lower-case hex sha256 of `body`.
    pub id: String,
    pub name: String,
    pub body: Arc<str>,
    /// The manifest's file stem: partners' budgets are per manifest.
    pub manifest: String,
    pub path: String,
}

#[derive(Deserialize)]
struct Manifest {
    format: String,
    version: u32,
    operations: Vec<ManifestOperation>,
}

#[derive(Deserialize)]
struct ManifestOperation {
    id: String,
    #[serde(default)]
    name: Option<String>,
    body: String,
}

pub fn sha256_hex(text: &str) -> String {
    let digest = Sha256::digest(text.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// `sha256:<64 hex>` (GraphQL over HTTP) or a bare APQ hash: the lower-case hex, or `None`.
pub fn parse_hash(id: &str) -> Option<String> {
    let hex = id.strip_prefix("sha256:").unwrap_or(id);
    (hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| hex.to_ascii_lowercase())
}

/// The trusted documents of every manifest.
#[derive(Debug, Clone, Default)]
pub struct Registry {
    by_id: HashMap<String, TrustedDocument>,
}

impl Registry {
    /// Reads every `*.json` in `dir` (a missing folder is an empty registry).
    pub fn load(dir: &Path) -> Result<Self, PersistedError> {
        let read_err = |source| PersistedError::Read {
            path: dir.display().to_string(),
            source,
        };
        let mut by_id = HashMap::new();
        let entries = match std::fs::read_dir(dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Self::default()),
            Err(e) => return Err(read_err(e)),
        };
        let mut files: Vec<_> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        files.sort();
        for path in files {
            let shown = path.display().to_string();
            let text = std::fs::read_to_string(&path).map_err(|source| PersistedError::Read {
                path: shown.clone(),
                source,
            })?;
            let manifest: Manifest =
                serde_json::from_str(&text).map_err(|e| PersistedError::Format {
                    path: shown.clone(),
                    reason: e.to_string(),
                })?;
            if manifest.format != "apollo-persisted-query-manifest" || manifest.version != 1 {
                return Err(PersistedError::Format {
                    path: shown,
                    reason: "`format` must be \"apollo-persisted-query-manifest\" and `version` 1"
                        .into(),
                });
            }
            let stem = path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            for op in manifest.operations {
                let name = op.name.unwrap_or_else(|| "(unnamed)".into());
                let actual = sha256_hex(&op.body);
                if parse_hash(&op.id).as_deref() != Some(actual.as_str()) {
                    return Err(PersistedError::Hash {
                        path: shown,
                        name,
                        id: op.id,
                        actual,
                    });
                }
                by_id.insert(
                    actual.clone(),
                    TrustedDocument {
                        id: actual,
                        name,
                        body: op.body.into(),
                        manifest: stem.clone(),
                        path: shown.clone(),
                    },
                );
            }
        }
        Ok(Self { by_id })
    }

    pub fn get(&self, hash: &str) -> Option<&TrustedDocument> {
        self.by_id.get(hash)
    }

    /// The manifests documents came from (file stems), sorted.
    pub fn manifests(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.by_id.values().map(|d| d.manifest.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        names
    }

    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    /// Validates every document against the schema without running anything: in
    /// introspection-only mode async-graphql validates the whole document and then resolves
    /// no data field, so request errors (no path) are exactly the validation errors.
    pub async fn validate(&self, schema: &crate::graphql::AppSchema) -> Result<(), PersistedError> {
        let mut docs: Vec<&TrustedDocument> = self.by_id.values().collect();
        docs.sort_by(|a, b| (&a.path, &a.name).cmp(&(&b.path, &b.name)));
        for doc in docs {
            let request = async_graphql::Request::new(doc.body.to_string()).only_introspection();
            let response = schema.execute(request).await;
            let errors: Vec<String> = response
                .errors
                .iter()
                .filter(|e| e.path.is_empty())
                .map(|e| e.message.clone())
                .collect();
            if !errors.is_empty() {
                return Err(PersistedError::Invalid {
                    path: doc.path.clone(),
                    name: doc.name.clone(),
                    id: doc.id.clone(),
                    errors: errors.join("; "),
                });
            }
        }
        Ok(())
    }
}

/// APQ documents: a bounded in-process LRU in front of Redis.
pub struct ApqStore {
    local: moka::sync::Cache<String, Arc<str>>,
    redis: Option<RedisStore>,
    ttl: Duration,
    metrics: Arc<crate::infra::telemetry::Metrics>,
}

impl ApqStore {
    pub fn new(
        settings: &PersistedSettings,
        redis: Option<RedisStore>,
        metrics: Arc<crate::infra::telemetry::Metrics>,
    ) -> Self {
        Self {
            // Weighed by bytes: a count of entries would let 32 KiB documents take
            // count x 32 KiB.
            local: moka::sync::Cache::builder()
                .weigher(|hash: &String, text: &Arc<str>| {
                    u32::try_from(hash.len() + text.len()).unwrap_or(u32::MAX)
                })
                .max_capacity(settings.apq_cache_bytes)
                .build(),
            redis,
            ttl: Duration::from_secs(settings.apq_ttl_secs),
            metrics,
        }
    }

    #[tracing::instrument(level = "debug", name = "cache", skip(self), fields(kind = "apq"))]
    pub async fn get(&self, hash: &str) -> Option<Arc<str>> {
        if let Some(q) = self.local.get(hash) {
            self.metrics.record_cache("l1", "apq", "hit", 1);
            return Some(q);
        }
        self.metrics.record_cache("l1", "apq", "miss", 1);
        let redis = self.redis.as_ref()?;
        let mut conn = redis.connection();
        let key = redis.key(&format!("apq:{hash}"));
        let found: Option<Option<String>> = redis
            .run(
                "apq_get",
                redis::cmd("GET").arg(&key).query_async(&mut conn),
            )
            .await;
        let result = match &found {
            None => "error",
            Some(None) => "miss",
            Some(Some(_)) => "hit",
        };
        self.metrics.record_cache("l2", "apq", result, 1);
        let q: Arc<str> = found.flatten()?.into();
        self.local.insert(hash.to_owned(), q.clone());
        Some(q)
    }

    /// Stores a query under its (already verified) hash.
    pub async fn put(&self, hash: &str, query: &str) {
        self.local.insert(hash.to_owned(), query.into());
        if let Some(redis) = &self.redis {
            let mut conn = redis.connection();
            let key = redis.key(&format!("apq:{hash}"));
            let _: Option<()> = redis
                .run(
                    "apq_put",
                    redis::cmd("SET")
                        .arg(&key)
                        .arg(query)
                        .arg("EX")
                        .arg(self.ttl.as_secs().max(1))
                        .query_async(&mut conn),
                )
                .await;
        }
    }
}

/// Which manifest each partner is bound to (`persisted.partners`).
#[derive(Clone, Debug, Default)]
pub struct PartnerManifests {
    by_user: HashMap<uuid::Uuid, String>,
    /// The manifest of partners not listed: the only one, when exactly one is loaded.
    sole: Option<String>,
}

impl PartnerManifests {
    pub fn new(settings: &PersistedSettings, registry: &Registry) -> Self {
        let manifests = registry.manifests();
        Self {
            by_user: settings
                .partners
                .iter()
                .filter_map(|(id, m)| Some((uuid::Uuid::parse_str(id.trim()).ok()?, m.clone())))
                .collect(),
            sole: (manifests.len() == 1).then(|| manifests[0].to_owned()),
        }
    }

    /// The manifest a partner may run, if any.
    pub fn of(&self, partner: uuid::Uuid) -> Option<&str> {
        self.by_user
            .get(&partner)
            .or(self.sole.as_ref())
            .map(String::as_str)
    }
}

/// `[persisted]`: automatic persisted queries and trusted documents.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PersistedSettings {
    /// Accept Apollo's automatic persisted queries (APQ).
    pub apq: bool,
    /// Bytes of APQ document text kept in process at most (Redis holds them for all instances).
    pub apq_cache_bytes: u64,
    /// Cost points a registration (an APQ hash sent with its text for the first time) adds to
    /// the operation's, for the Redis memory it takes for `apq_ttl_secs`.
    pub apq_registration_cost: u64,
    /// How long Redis keeps an APQ document after its last registration.
    pub apq_ttl_secs: u64,
    /// The folder of trusted-document manifests (Apollo's persisted query manifest format).
    pub manifest_dir: std::path::PathBuf,
    /// Every client, not only partners, may run manifest documents only.
    pub only: bool,
    /// A budget per manifest (file stem) for partners running its documents.
    #[serde(default)]
    pub budgets: std::collections::HashMap<String, crate::limits::throttle::Budget>,
    /// Each PARTNER user's manifest (user id -> file stem): a partner may run that manifest's
    /// documents only, on its budget. A partner not listed gets the only manifest when exactly
    /// one is loaded, and nothing otherwise.
    #[serde(default)]
    pub partners: std::collections::HashMap<String, String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_and_ids() {
        assert_eq!(
            sha256_hex("{ __typename }"),
            "7f56e67dd21ab3f30d1ff8b7bed08893f0a0db86449836189b361dd1e56ddb4b"
        );
        let h = "7F56E67DD21AB3F30D1FF8B7BED08893F0A0DB86449836189B361DD1E56DDB4B";
        assert_eq!(
            parse_hash(&format!("sha256:{h}")).as_deref(),
            Some(&*h.to_ascii_lowercase())
        );
        assert_eq!(parse_hash("sha256:xyz"), None);
        assert_eq!(parse_hash(&"a".repeat(65)), None);
    }
}
