//! The GraphQL schema: resolvers per domain (query/, mutation/), object types (types/),
//! per-request batching (loaders), and the mapping of errors to stable codes (errors).
//! Resolvers never build SQL; everything per-row goes through a loader.
pub(crate) mod context;
pub(crate) mod errors;
pub mod ids;
pub(crate) mod loaders;
mod mutation;
mod query;
mod schema;
mod settings;
pub(crate) mod types;
pub mod weights;
pub use settings::GraphqlSettings;

pub use schema::{AppSchema, build_schema, sdl};
