//! Infrastructure the layers above share: the Redis client (`redis`), the two-level entity
//! cache and its invalidation bus (`cache`), metrics, logs and traces (`telemetry`), and a
//! string type for secrets (`secret`). Nothing here knows GraphQL or the store.
pub mod cache;
pub(crate) mod redis;
pub mod secret;
pub mod telemetry;
