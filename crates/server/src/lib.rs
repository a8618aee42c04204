//! rentgraph's serving library: everything `rentgraph serve` runs, layer by layer (see
//! docs/ARCHITECTURE.md, "Layers"). A module only uses modules below it:
//!
//! - `server`: start-up, the accept loop, state, the router, middleware and probes;
//! - `gateway`: a GraphQL request's stages (document, admission, charging, execution,
//!   response) and persisted documents;
//! - `graphql`: the schema, resolvers and dataloaders;
//! - `limits`: document, input and cost limits and the throttle's buckets;
//! - `auth`, `recommend`, `store`: identity, recommendations, data access;
//! - `infra`: Redis, the cache tiers and their invalidation bus, telemetry;
//! - `config` composes every module's own settings type and reads them in one place.
//!
//! The model (features, ONNX, batching) is the `rentgraph-model` crate; the offline lab
//! (generators, replay, training export, evaluation) is `rentgraph-lab`, which depends on this
//! crate and is unreachable from it.
pub mod auth;
pub mod config;
pub mod error_code;
pub mod gateway;
pub mod graphql;
pub mod infra;
pub mod limits;
pub mod recommend;
pub mod server;
pub mod store;
