//! rentgraph's offline lab: what runs beside the server, never in it.
//!
//! - `datagen`: the market generators behind `rentgraph seed` (and the demo data set);
//! - `replay`: serving rebuilt at a past moment from the stored history;
//! - `training`: `rentgraph export-training-data`, rows made by that replay;
//! - `evaluation`: `rentgraph evaluate`, the served top 10 against the baselines.
//!
//! It depends on the serving crate's public API and on the model crate; the serving crate
//! cannot depend on it (Cargo refuses the cycle), so no offline code can be reached from a
//! request.
pub mod datagen;
pub mod evaluation;
pub mod replay;
pub mod training;
