//! Integration tests: one binary (one link step), each test with its own server on port 0 and
//! its own PostgreSQL database or SQLite file, so they run in parallel without sharing rows.
mod fuzz;
mod helpers;

mod attacks;
mod auth;
mod bad_input;
mod batching;
mod cache;
mod config;
mod cost;
mod http;
mod indexes;
mod mutations;
mod observability;
mod persisted;
mod properties;
mod recommendations;
mod schema;
mod search;
mod users;
