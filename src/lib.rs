//! rentgraph: a GraphQL API for a rental-property platform. See docs/ARCHITECTURE.md.
pub mod app;
pub mod auth;
pub mod cache;
pub mod config;
pub mod datagen;
pub mod evaluation;
pub mod graphql;
pub mod http;
pub mod limits;
pub mod ml;
pub mod persisted;
pub mod recommend;
pub mod redis_store;
pub mod replay;
pub mod store;
pub mod telemetry;
pub mod training;
