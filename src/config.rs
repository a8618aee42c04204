//! Typed settings, read in one place: the defaults compiled into the binary from
//! `config/default.toml`, then `config/{RENTGRAPH_ENV}.toml`, then `--config FILE`, then
//! `RENTGRAPH__SECTION__KEY` environment variables. Nothing else in the codebase reads the
//! environment, so every knob is visible in default.toml and in one struct.
use serde::Deserialize;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

const DEFAULTS: &str = include_str!("../config/default.toml");
/// Where scripts/fetch-ort puts the library.
pub const DEFAULT_ORT_LIBRARY: &str = ".ort/libonnxruntime.so.1.31.1";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("invalid configuration: {0}")]
    Invalid(#[from] config::ConfigError),
    #[error("invalid configuration: {0}")]
    Check(String),
}

/// A string that never prints, so a secret cannot leak through `Debug` in a log line.
#[derive(Clone, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(**redacted**)")
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// The profile these settings were loaded for (`RENTGRAPH_ENV`).
    #[serde(skip)]
    pub environment: String,
    pub server: ServerSettings,
    pub database: DatabaseSettings,
    pub demo: DemoSettings,
    pub redis: RedisSettings,
    pub auth: AuthSettings,
    pub graphql: GraphqlSettings,
    pub telemetry: TelemetrySettings,
    pub ml: MlSettings,
    pub limits: LimitsSettings,
    pub persisted: PersistedSettings,
    pub cache: CacheSettings,
}

/// `[cache]`: the two-level entity cache.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CacheSettings {
    /// Off: every read goes to the database.
    pub enabled: bool,
    /// Entries per kind (listings, images, amenities, users) kept in process.
    pub l1_max_entries: u64,
    /// How long an entry stays in process at most (bounds staleness if an invalidation is lost).
    pub l1_ttl_secs: u64,
    /// How long Redis keeps an entry.
    pub l2_ttl_secs: u64,
    /// The most popular listings (with images, amenities, owners) loaded at start, before the
    /// server accepts requests, and again every `warm_interval_secs` (0: no warming).
    pub warm_listings: usize,
    pub warm_interval_secs: u64,
}

/// `[limits]`: query cost and the per-client budgets it is charged to.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsSettings {
    /// The highest static cost of one operation.
    pub max_cost: u64,
    /// Charge clients' buckets (off: only max_cost applies).
    pub throttle: bool,
    /// A header carrying the client address, set by a proxy you trust (e.g. "x-forwarded-for");
    /// empty: the TCP peer address.
    pub trusted_proxy_header: String,
    pub budgets: Budgets,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Budgets {
    pub anonymous: crate::limits::throttle::Budget,
    pub user: crate::limits::throttle::Budget,
    pub owner: crate::limits::throttle::Budget,
    pub partner: crate::limits::throttle::Budget,
    pub admin: crate::limits::throttle::Budget,
}

/// `[persisted]`: automatic persisted queries and trusted documents.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PersistedSettings {
    /// Accept Apollo's automatic persisted queries (APQ).
    pub apq: bool,
    /// APQ documents kept in process at most (Redis holds them for all instances).
    pub apq_cache_entries: u64,
    /// How long Redis keeps an APQ document after its last registration.
    pub apq_ttl_secs: u64,
    /// The folder of trusted-document manifests (Apollo's persisted query manifest format).
    pub manifest_dir: PathBuf,
    /// Every client, not only partners, may run manifest documents only.
    pub only: bool,
    /// A budget per manifest (file stem) for partners running its documents.
    #[serde(default)]
    pub budgets: std::collections::HashMap<String, crate::limits::throttle::Budget>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MlSettings {
    /// Off: recommendations rank by popularity and matchScore is null, without loading ONNX
    /// Runtime.
    pub enabled: bool,
    pub model_path: PathBuf,
    pub info_path: PathBuf,
    /// The ONNX Runtime shared library; resolved by `Settings::load` (see default.toml).
    pub ort_library: String,
    pub intra_threads: usize,
    pub deadline_ms: u64,
    pub candidates: usize,
    /// Of the candidates, this many at most from co-engagement (item-kNN); 0 turns the source
    /// off.
    pub co_engagement_candidates: usize,
    /// Serve the model even when its sealed evaluation does not beat the best baseline.
    pub serve_unproven: bool,
    pub history_limit: usize,
    pub max_per_neighbourhood: usize,
    /// The listing index is reloaded whole this often (changes on the bus apply sooner).
    pub index_refresh_secs: u64,
    /// Interactions held in process over all users' recommendation state.
    pub user_state_capacity: u64,
    pub user_state_ttl_secs: u64,
    /// How long a user's recommendations are reused (0: never); their next interaction or
    /// preference change, or a listing change, drops them sooner.
    pub results_ttl_secs: u64,
    pub batcher: crate::ml::batcher::BatcherSettings,
}

impl MlSettings {
    /// What retrieval is asked for: candidates in all, and at most how many of them from
    /// co-engagement.
    pub fn retrieval(&self) -> (usize, usize) {
        (self.candidates, self.co_engagement_candidates)
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSettings {
    pub host: String,
    pub port: u16,
    pub body_limit_bytes: usize,
    pub request_timeout_ms: u64,
    pub header_read_timeout_ms: u64,
    pub shutdown_timeout_ms: u64,
    pub graphiql: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSettings {
    pub url: String,
    pub max_connections: u32,
    pub min_connections: u32,
    pub acquire_timeout_ms: u64,
    pub statement_timeout_ms: u64,
    pub idle_timeout_ms: u64,
    pub max_lifetime_ms: u64,
    pub slow_statement_ms: u64,
    pub migrate_on_start: bool,
    pub seed_if_empty: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DemoSettings {
    pub properties: usize,
    pub users: usize,
    pub interactions: usize,
    pub seed: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedisSettings {
    pub url: String,
    /// `url` lists Redis Cluster nodes, comma-separated.
    pub cluster: bool,
    pub connect_timeout_ms: u64,
    /// Each call's deadline; past it the caller uses its in-process state.
    pub timeout_ms: u64,
    /// After a failed call, how long Redis is not tried (requests use in-process state).
    pub retry_after_ms: u64,
    /// Put before every key, so deployments (and tests) can share one Redis.
    pub prefix: String,
}

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

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GraphqlSettings {
    /// Parsed documents kept by their text, so a repeated operation is not parsed or checked
    /// again (0: none).
    pub document_cache_entries: u64,
    pub max_page_size: usize,
    pub default_page_size: usize,
    pub max_depth: usize,
    pub max_document_bytes: usize,
    pub max_tokens: usize,
    pub max_aliases: usize,
    pub max_root_fields: usize,
    pub max_directives_per_field: usize,
    pub max_duplicate_fields: usize,
    pub max_selected_fields: usize,
    /// Bounds on argument values: items in one list argument, characters in one string.
    pub max_list_items: usize,
    pub max_string_chars: usize,
    /// How deep search results may be paged.
    pub max_search_offset: u64,
    /// recordInteraction of the same user, listing and kind within this window is recorded once.
    pub dedupe_interactions_secs: u64,
    pub introspection: bool,
    /// "Did you mean ...?" in validation errors (they reveal the schema).
    pub suggestions: bool,
    pub dataloader_delay_us: u64,
    pub dataloader_max_batch_size: usize,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TelemetrySettings {
    pub log_format: LogFormat,
    pub log_filter: String,
    /// Operations slower than this are logged with name, type and duration (0: never).
    pub slow_operation_ms: u64,
    /// Serve /metrics on this address instead of the public port (empty: the public port).
    pub metrics_address: String,
    /// An OTLP/HTTP collector's base URL for trace export (empty: off; needs the `otlp` build
    /// feature).
    pub otlp_endpoint: String,
    /// `service.name` of exported traces.
    pub service_name: String,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Pretty,
    Json,
}

/// Where settings come from besides the built-in defaults.
#[derive(Debug, Default, Clone)]
pub struct Sources {
    /// The environment profile; `RENTGRAPH_ENV` or `development` when `None`.
    pub env: Option<String>,
    /// An explicit file (`--config FILE`); it must exist.
    pub file: Option<PathBuf>,
    /// Dotted keys set last, above the environment (tests use this).
    pub overrides: Vec<(String, String)>,
}

/// The profiles compiled into the binary, so a server started from any working directory gets
/// the settings of the environment it was told, never silently those of development.
const PROFILES: &[(&str, &str)] = &[
    ("development", include_str!("../config/development.toml")),
    ("test", include_str!("../config/test.toml")),
    ("production", include_str!("../config/production.toml")),
];

/// The secret development and test sign with. It is public (it is in this file), so any other
/// environment refuses it.
pub const DEVELOPMENT_JWT_SECRET: &str = "rentgraph-development-secret-change-me-in-production";

/// Environments whose profile may use the development secret and other conveniences.
fn is_development(env: &str) -> bool {
    matches!(env, "development" | "test")
}

/// The most clock skew a deployment may tolerate: beyond it an expired token stays usable.
pub const MAX_LEEWAY_SECS: u64 = 300;

impl Settings {
    pub fn load(sources: Sources) -> Result<Self, ConfigError> {
        let env = sources
            .env
            .or_else(|| std::env::var("RENTGRAPH_ENV").ok())
            .unwrap_or_else(|| "development".to_owned());
        let dir = std::env::var("RENTGRAPH_CONFIG_DIR").unwrap_or_else(|_| "config".to_owned());
        let mut builder = config::Config::builder()
            .add_source(config::File::from_str(DEFAULTS, config::FileFormat::Toml));
        builder = builder.add_source(profile(&env, &dir)?);
        if let Some(file) = &sources.file {
            builder = builder.add_source(config::File::from(file.as_path()).required(true));
        }
        builder = builder.add_source(
            config::Environment::with_prefix("RENTGRAPH")
                .prefix_separator("__")
                .separator("__")
                .try_parsing(true),
        );
        for (key, value) in sources.overrides {
            builder = builder.set_override(key, value)?;
        }
        let mut settings: Settings = builder.build()?.try_deserialize()?;
        settings.environment = env;
        if settings.ml.ort_library.trim().is_empty() {
            settings.ml.ort_library =
                std::env::var("ORT_DYLIB_PATH").unwrap_or_else(|_| DEFAULT_ORT_LIBRARY.to_owned());
        }
        settings.check()?;
        Ok(settings)
    }

    /// `development` or `test`: the environments where the development secret is allowed.
    pub fn is_development(&self) -> bool {
        is_development(&self.environment)
    }

    fn check(&self) -> Result<(), ConfigError> {
        let g = &self.graphql;
        if g.max_page_size == 0 || g.default_page_size == 0 || g.default_page_size > g.max_page_size
        {
            return Err(ConfigError::Check(
                "graphql.default_page_size must be between 1 and graphql.max_page_size".into(),
            ));
        }
        self.check_auth()?;
        let b = &self.ml.batcher;
        if b.max_batch_size == 0 || b.queue_capacity == 0 || b.workers == 0 {
            return Err(ConfigError::Check(
                "ml.batcher.max_batch_size, queue_capacity and workers must be at least 1".into(),
            ));
        }
        if !cfg!(feature = "otlp") && !self.telemetry.otlp_endpoint.trim().is_empty() {
            return Err(ConfigError::Check(
                "telemetry.otlp_endpoint is set, but this binary was built without trace export \
                 (cargo build --release --features otlp)"
                    .into(),
            ));
        }
        if self.database.max_connections == 0 {
            return Err(ConfigError::Check(
                "database.max_connections must be at least 1".into(),
            ));
        }
        Ok(())
    }

    fn check_auth(&self) -> Result<(), ConfigError> {
        let a = &self.auth;
        if a.leeway_secs > MAX_LEEWAY_SECS {
            return Err(ConfigError::Check(format!(
                "auth.leeway_secs is {}; at most {MAX_LEEWAY_SECS} is allowed",
                a.leeway_secs
            )));
        }
        if a.max_token_age_secs == 0 || a.token_ttl_secs > a.max_token_age_secs {
            return Err(ConfigError::Check(
                "auth.max_token_age_secs must be at least 1 and at least auth.token_ttl_secs"
                    .into(),
            ));
        }
        match a.algorithm {
            JwtAlgorithm::Rs256 => {
                if a.public_key_path.as_os_str().is_empty() {
                    return Err(ConfigError::Check(
                        "auth.algorithm = \"RS256\" needs auth.public_key_path (a PEM file)".into(),
                    ));
                }
            }
            JwtAlgorithm::Hs256 => {
                let secret = a.jwt_secret.expose();
                if secret.is_empty() {
                    return Err(ConfigError::Check(format!(
                        "auth.jwt_secret is not set for the {} environment: set \
                         RENTGRAPH__AUTH__JWT_SECRET to a random secret of at least 32 bytes \
                         (openssl rand -base64 48)",
                        self.environment
                    )));
                }
                if secret.len() < 32 {
                    return Err(ConfigError::Check(
                        "auth.jwt_secret must be at least 32 bytes".into(),
                    ));
                }
                if secret == DEVELOPMENT_JWT_SECRET && !self.is_development() {
                    return Err(ConfigError::Check(format!(
                        "auth.jwt_secret is the public development secret, which the {} \
                         environment refuses: set RENTGRAPH__AUTH__JWT_SECRET to a random secret \
                         of at least 32 bytes (openssl rand -base64 48)",
                        self.environment
                    )));
                }
            }
        }
        Ok(())
    }
}

/// The environment's profile: `{dir}/{env}.toml` when it exists, else the built-in copy of a
/// known profile; any other name is a mistake (a typo would otherwise run with defaults).
fn profile(
    env: &str,
    dir: &str,
) -> Result<config::File<config::FileSourceString, config::FileFormat>, ConfigError> {
    let path = std::path::Path::new(dir).join(format!("{env}.toml"));
    if path.is_file() {
        let text = std::fs::read_to_string(&path)
            .map_err(|e| ConfigError::Check(format!("cannot read {}: {e}", path.display())))?;
        return Ok(config::File::from_str(&text, config::FileFormat::Toml));
    }
    match PROFILES.iter().find(|(name, _)| *name == env) {
        Some((_, text)) => Ok(config::File::from_str(text, config::FileFormat::Toml)),
        None => Err(ConfigError::Check(format!(
            "unknown environment {env:?} (RENTGRAPH_ENV): the built-in ones are development, \
             test and production, and there is no {}",
            path.display()
        ))),
    }
}

impl ServerSettings {
    pub fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms)
    }
}

impl GraphqlSettings {
    pub fn dedupe_interactions(&self) -> Duration {
        Duration::from_secs(self.dedupe_interactions_secs)
    }

    pub fn input_limits(&self) -> crate::limits::InputLimits {
        crate::limits::InputLimits {
            max_list_items: self.max_list_items,
            max_string_chars: self.max_string_chars,
        }
    }

    pub fn document_limits(&self) -> crate::limits::DocumentLimits {
        crate::limits::DocumentLimits {
            max_document_bytes: self.max_document_bytes,
            max_tokens: self.max_tokens,
            max_depth: self.max_depth,
            max_aliases: self.max_aliases,
            max_root_fields: self.max_root_fields,
            max_directives_per_field: self.max_directives_per_field,
            max_duplicate_fields: self.max_duplicate_fields,
            max_selected_fields: self.max_selected_fields,
        }
    }

    pub fn dataloader_delay(&self) -> Duration {
        Duration::from_micros(self.dataloader_delay_us)
    }
}
