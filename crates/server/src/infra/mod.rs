//! Infrastructure the layers above share: the Redis client (`redis`), the two-level entity
//! cache and its invalidation bus (`cache`), metrics, logs and traces (`telemetry`), and a
//! string type for secrets (`secret`), and settings helpers. Nothing here knows GraphQL or the
//! store.
pub mod cache;
pub(crate) mod redis;
pub mod secret;
pub mod telemetry;

/// Makes ring rustls's process-wide crypto provider, before any HTTPS client (JWK Sets, OTLP
/// export) is built. reqwest is built without its own default provider, which would add
/// aws-lc-rs to the build beside the ring the database driver already uses; reqwest panics
/// when it builds a client without one. Installing twice is harmless.
pub(crate) fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// A list, or a comma-separated string of its items.
pub(crate) fn list_or_csv<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    use serde::Deserialize;
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum ListOrCsv {
        List(Vec<String>),
        Csv(String),
    }
    Ok(match ListOrCsv::deserialize(d)? {
        ListOrCsv::List(items) => items,
        ListOrCsv::Csv(text) => text
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect(),
    })
}
