//! Typed settings, read in one place: the defaults compiled into the binary from
//! `config/default.toml`, then `config/{RENTGRAPH_ENV}.toml`, then `--config FILE`, then
//! `RENTGRAPH__SECTION__KEY` environment variables. Nothing else in the codebase reads the
//! environment, so every knob is visible in default.toml and in one struct.
//!
//! Each module owns its section's type (`store::DatabaseSettings`, `auth::AuthSettings`, ...);
//! this file composes them, and no module below imports it.
mod cors;
mod dev_secret;

pub(crate) use crate::infra::list_or_csv;
pub use cors::{CorsSettings, OriginRule};

use crate::auth::{AuthSettings, JwtAlgorithm, MAX_LEEWAY_SECS};
use crate::gateway::persisted::PersistedSettings;
use crate::graphql::GraphqlSettings;
use crate::infra::cache::CacheSettings;
use crate::infra::redis::RedisSettings;
use crate::infra::telemetry::TelemetrySettings;
use crate::limits::LimitsSettings;
use crate::recommend::{DEFAULT_ORT_LIBRARY, MlSettings};
use crate::store::DatabaseSettings;
use serde::Deserialize;
use std::path::PathBuf;
use std::time::Duration;

const DEFAULTS: &str = include_str!("../../../../config/default.toml");

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("invalid configuration: {0}")]
    Invalid(#[from] config::ConfigError),
    #[error("invalid configuration: {0}")]
    Check(String),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// The profile these settings were loaded for (`RENTGRAPH_ENV`).
    #[serde(skip)]
    pub environment: String,
    /// No environment was named: the development profile by default, which `serve` allows only
    /// on loopback with the embedded database (`check_implicit_development`).
    #[serde(skip)]
    pub environment_implicit: bool,
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

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSettings {
    pub host: String,
    pub port: u16,
    pub body_limit_bytes: usize,
    pub request_timeout_ms: u64,
    pub header_read_timeout_ms: u64,
    /// A connection that sends nothing this long is closed (0: never); longer than
    /// `request_timeout_ms`, which bounds the time a client waits without sending.
    pub idle_timeout_ms: u64,
    /// A connection whose client reads nothing of its answer this long is closed (0: never).
    pub write_timeout_ms: u64,
    /// Client connections open at once at most; more are closed as they arrive.
    pub max_connections: usize,
    /// A connection older than this (±10%) is closed gracefully once its request in flight is
    /// answered (HTTP/2: GOAWAY), so clients reconnect and a balancer can spread them over new
    /// instances (0: never).
    pub max_connection_age_secs: u64,
    pub shutdown_timeout_ms: u64,
    /// On SIGTERM, how long `/ready` fails while requests are still served, before the server
    /// stops accepting connections (balancers' probe interval times their failure threshold).
    pub drain_secs: u64,
    pub graphiql: bool,
    /// Operations one batched POST (a JSON array) may hold.
    pub max_batch_operations: usize,
    pub cors: CorsSettings,
    pub http_cache: HttpCacheSettings,
}

/// `[server.http_cache]`: `Cache-Control`, `ETag` and 304s for GraphQL answers
/// (`gateway::http_cache`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpCacheSettings {
    /// Off: every answer is `no-store`.
    pub enabled: bool,
    /// No answer is cacheable for longer than this, whatever its fields' hints say; 0 is `no-store`.
    pub max_age_cap_secs: u32,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DemoSettings {
    pub properties: usize,
    pub users: usize,
    pub interactions: usize,
    pub seed: u64,
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
    (
        "development",
        include_str!("../../../../config/development.toml"),
    ),
    ("test", include_str!("../../../../config/test.toml")),
    (
        "production",
        include_str!("../../../../config/production.toml"),
    ),
];

/// The secret earlier development and test profiles signed with. It is public (it is in this
/// repository's history), so every environment refuses it; no profile carries a secret now
/// (`dev_secret`).
pub const DEVELOPMENT_JWT_SECRET: &str = "rentgraph-development-secret-change-me-in-production";

/// Environments whose profile may use the development secret and other conveniences.
fn is_development(env: &str) -> bool {
    matches!(env, "development" | "test")
}

impl Settings {
    pub fn load(sources: Sources) -> Result<Self, ConfigError> {
        let named = sources
            .env
            .or_else(|| std::env::var("RENTGRAPH_ENV").ok())
            .filter(|e| !e.trim().is_empty());
        let implicit = named.is_none();
        let env = named.unwrap_or_else(|| "development".to_owned());
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
        settings.environment_implicit = implicit;
        settings.development_secret()?;
        if settings.ml.ort_library.trim().is_empty() {
            settings.ml.ort_library =
                std::env::var("ORT_DYLIB_PATH").unwrap_or_else(|_| DEFAULT_ORT_LIBRARY.to_owned());
        }
        settings.check()?;
        Ok(settings)
    }

    /// `development` or `test`: the environments where a generated secret is used.
    pub fn is_development(&self) -> bool {
        is_development(&self.environment)
    }

    /// Development and test without `auth.jwt_secret`: a generated one (`dev_secret`).
    fn development_secret(&mut self) -> Result<(), ConfigError> {
        let a = &self.auth;
        if !self.is_development()
            || a.algorithm != JwtAlgorithm::Hs256
            || !a.jwt_secret.expose().is_empty()
        {
            return Ok(());
        }
        let secret = if self.environment == "test" {
            dev_secret::per_process()
        } else {
            dev_secret::load_or_create(&dev_secret::path_for(&self.database.url))
                .map_err(ConfigError::Check)?
        };
        self.auth.jwt_secret = crate::infra::secret::Secret::new(secret);
        Ok(())
    }

    /// `serve` without `RENTGRAPH_ENV` runs the development profile (GraphiQL, introspection,
    /// demo data with an ADMIN whose id the banner prints). That is what the quickstart wants on
    /// a laptop, and never what a container given a PostgreSQL URL and `0.0.0.0` wants: there
    /// it refuses, and says what to set.
    pub fn check_implicit_development(&self) -> Result<(), String> {
        if !self.environment_implicit {
            return Ok(());
        }
        let host = self.server.host.trim();
        let loopback = host == "localhost"
            || host
                .trim_matches(['[', ']'])
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback());
        let embedded = self.database.url.starts_with("sqlite:");
        if loopback && embedded {
            return Ok(());
        }
        Err(format!(
            "RENTGRAPH_ENV is not set, so this would be the development profile (GraphiQL, \
             introspection, demo data and a demo ADMIN) on {} with {}. It runs without \
             RENTGRAPH_ENV only on a loopback address with the embedded SQLite database. Set \
             RENTGRAPH_ENV=production (or RENTGRAPH_ENV=development to mean it).",
            if loopback {
                "loopback"
            } else {
                "a public address"
            },
            if embedded {
                "SQLite"
            } else {
                "an external database"
            },
        ))
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
        let s = &self.server;
        if s.idle_timeout_ms != 0 && s.idle_timeout_ms <= s.request_timeout_ms {
            return Err(ConfigError::Check(
                "server.idle_timeout_ms must be longer than server.request_timeout_ms (a client \
                 waiting for its answer sends nothing), or 0"
                    .into(),
            ));
        }
        if s.max_connections == 0 {
            return Err(ConfigError::Check(
                "server.max_connections must be at least 1".into(),
            ));
        }
        self.check_cors()?;
        self.check_proxies()?;
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

    fn check_cors(&self) -> Result<(), ConfigError> {
        let c = &self.server.cors;
        for origin in &c.allowed_origins {
            cors::OriginRule::parse(origin).map_err(ConfigError::Check)?;
        }
        for h in &c.allowed_headers {
            if axum::http::HeaderName::try_from(h.as_str()).is_err() {
                return Err(ConfigError::Check(format!(
                    "server.cors.allowed_headers: {h:?} is not a header name"
                )));
            }
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
        self.check_issuers()?;
        let jwks = !a.jwks_url.trim().is_empty();
        match a.algorithm {
            JwtAlgorithm::Rs256 | JwtAlgorithm::Es256 | JwtAlgorithm::EdDsa => {
                if a.public_key_path.as_os_str().is_empty() && !jwks {
                    return Err(ConfigError::Check(format!(
                        "auth.algorithm = {:?} needs auth.public_key_path (a PEM file) or \
                         auth.jwks_url",
                        a.algorithm
                    )));
                }
            }
            JwtAlgorithm::Hs256 if jwks => {
                return Err(ConfigError::Check(
                    "auth.jwks_url holds public keys: set auth.algorithm to RS256, ES256 or EdDSA"
                        .into(),
                ));
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
                if secret == DEVELOPMENT_JWT_SECRET {
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

impl Settings {
    /// A proxy header needs the proxies it is believed from, and they must parse.
    fn check_proxies(&self) -> Result<(), ConfigError> {
        let l = &self.limits;
        for p in &l.trusted_proxies {
            crate::limits::client::parse_net(p).map_err(ConfigError::Check)?;
        }
        if !l.trusted_proxy_header.trim().is_empty() && l.trusted_proxies.is_empty() {
            return Err(ConfigError::Check(
                "limits.trusted_proxy_header is set but limits.trusted_proxies is empty: list \
                 the proxies (CIDRs) whose header is believed, or any client could pick its \
                 own address"
                    .into(),
            ));
        }
        if l.trusted_proxy_hops == 0 {
            return Err(ConfigError::Check(
                "limits.trusted_proxy_hops must be at least 1".into(),
            ));
        }
        Ok(())
    }

    /// Every `[[auth.issuers]]` entry names its issuer, audiences, a key set and asymmetric
    /// algorithms, and no two (nor rentgraph's own issuer) share an `iss`.
    fn check_issuers(&self) -> Result<(), ConfigError> {
        let a = &self.auth;
        let mut seen = vec![a.issuer.as_str()];
        for (i, p) in a.issuers.iter().enumerate() {
            let bad = |why: &str| {
                Err(ConfigError::Check(format!(
                    "auth.issuers[{i}] ({:?}): {why}",
                    p.issuer
                )))
            };
            if p.issuer.trim().is_empty() {
                return bad("`issuer` is empty");
            }
            if seen.contains(&p.issuer.as_str()) {
                return bad("another issuer (or auth.issuer) has the same `iss`");
            }
            seen.push(&p.issuer);
            if p.audience.is_empty() {
                return bad("`audience` is empty");
            }
            if p.jwks_url.trim().is_empty() && a.jwks_url.trim().is_empty() {
                return bad("no `jwks_url`, and auth.jwks_url is empty");
            }
            if p.algorithms.is_empty() || p.algorithms.contains(&JwtAlgorithm::Hs256) {
                return bad("`algorithms` must list RS256, ES256 or EdDSA (and not HS256)");
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
