//! The GraphQL schema: resolvers per domain (query/, mutation/), object types (types/),
//! per-request batching (loaders), and the mapping of errors to stable codes (errors).
//! Resolvers never build SQL; everything per-row goes through a loader.
pub mod context;
pub mod cost;
pub mod errors;
pub mod ids;
pub mod loaders;
mod mutation;
mod query;
mod schema;
pub mod types;

pub use schema::{AppSchema, build_schema, sdl};
