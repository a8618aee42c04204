//! Integration tests: one binary (one link step), each test with its own server on port 0 and
//! its own PostgreSQL database or SQLite file, so they run in parallel without sharing rows.
// A scenario test reads best as one story from start to end; the line limit is for the
// code under test.
#![allow(clippy::too_many_lines)]
mod fuzz;
mod helpers;

mod attacks;
mod auth;
mod bad_input;
mod batching;
mod browser;
mod budgets;
mod cache;
mod config;
mod cors;
mod cost;
mod facets;
mod geo;
mod http;
mod http_cache;
mod identity_providers;
mod indexes;
mod interactions;
mod mutations;
mod observability;
mod operation_batches;
mod persisted;
mod properties;
mod recommendations;
mod replicas;
mod schema;
mod search;
mod users;
