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
pub struct Settings {
    pub server: ServerSettings,
    pub database: DatabaseSettings,
    pub demo: DemoSettings,
    pub redis: RedisSettings,
    pub auth: AuthSettings,
    pub graphql: GraphqlSettings,
    pub telemetry: TelemetrySettings,
    pub ml: MlSettings,
}

#[derive(Debug, Clone, Deserialize)]
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
    pub history_limit: usize,
    pub max_per_neighbourhood: usize,
    pub popular_ttl_secs: u64,
    pub batcher: crate::ml::batcher::BatcherSettings,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ServerSettings {
    pub host: String,
    pub port: u16,
    pub body_limit_bytes: usize,
    pub request_timeout_ms: u64,
    pub shutdown_timeout_ms: u64,
    pub graphiql: bool,
}

#[derive(Debug, Clone, Deserialize)]
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
pub struct DemoSettings {
    pub properties: usize,
    pub users: usize,
    pub interactions: usize,
    pub seed: u64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct RedisSettings {
    pub url: String,
    pub connect_timeout_ms: u64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct AuthSettings {
    pub jwt_secret: Secret,
    pub issuer: String,
    pub audience: String,
    pub token_ttl_secs: u64,
    pub leeway_secs: u64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct GraphqlSettings {
    pub max_page_size: usize,
    pub default_page_size: usize,
    pub max_depth: usize,
    pub max_complexity: usize,
    pub introspection: bool,
    pub dataloader_delay_us: u64,
    pub dataloader_max_batch_size: usize,
}

#[derive(Debug, Clone, Deserialize)]
pub struct TelemetrySettings {
    pub log_format: LogFormat,
    pub log_filter: String,
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
    /// `config/{env}.toml`; `RENTGRAPH_ENV` or `development` when `None`.
    pub env: Option<String>,
    /// An explicit file (`--config FILE`); it must exist.
    pub file: Option<PathBuf>,
    /// Dotted keys set last, above the environment (tests use this).
    pub overrides: Vec<(String, String)>,
}

impl Settings {
    pub fn load(sources: Sources) -> Result<Self, ConfigError> {
        let env = sources
            .env
            .or_else(|| std::env::var("RENTGRAPH_ENV").ok())
            .unwrap_or_else(|| "development".to_owned());
        let mut builder = config::Config::builder()
            .add_source(config::File::from_str(DEFAULTS, config::FileFormat::Toml))
            .add_source(config::File::with_name(&format!("config/{env}")).required(false));
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
        if settings.ml.ort_library.trim().is_empty() {
            settings.ml.ort_library =
                std::env::var("ORT_DYLIB_PATH").unwrap_or_else(|_| DEFAULT_ORT_LIBRARY.to_owned());
        }
        settings.check()?;
        Ok(settings)
    }

    fn check(&self) -> Result<(), ConfigError> {
        let g = &self.graphql;
        if g.max_page_size == 0 || g.default_page_size == 0 || g.default_page_size > g.max_page_size
        {
            return Err(ConfigError::Check(
                "graphql.default_page_size must be between 1 and graphql.max_page_size".into(),
            ));
        }
        if self.auth.jwt_secret.expose().len() < 32 {
            return Err(ConfigError::Check(
                "auth.jwt_secret must be at least 32 bytes".into(),
            ));
        }
        let b = &self.ml.batcher;
        if b.max_batch_size == 0 || b.queue_capacity == 0 || b.workers == 0 {
            return Err(ConfigError::Check(
                "ml.batcher.max_batch_size, queue_capacity and workers must be at least 1".into(),
            ));
        }
        if self.database.max_connections == 0 {
            return Err(ConfigError::Check(
                "database.max_connections must be at least 1".into(),
            ));
        }
        Ok(())
    }
}

impl ServerSettings {
    pub fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms)
    }
}

impl GraphqlSettings {
    pub fn dataloader_delay(&self) -> Duration {
        Duration::from_micros(self.dataloader_delay_us)
    }
}
