//! Infrastructure the layers above share: the Redis client (`redis`), the two-level entity
//! cache and its invalidation bus (`cache`), metrics, logs and traces (`telemetry`), and a
//! string type for secrets (`secret`). Nothing here knows GraphQL or the store.
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
