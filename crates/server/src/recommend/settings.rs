//! `[ml]`: the model files, retrieval and the batching executor.
use rentgraph_model::batcher::BatcherSettings;
use serde::Deserialize;
use std::path::PathBuf;

/// Where scripts/fetch-ort puts the library.
pub const DEFAULT_ORT_LIBRARY: &str = ".ort/libonnxruntime.so.1.31.1";

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MlSettings {
    /// Off: recommendations rank by popularity and matchScore is null, without loading ONNX
    /// Runtime.
    pub enabled: bool,
    pub model_path: PathBuf,
    pub info_path: PathBuf,
    /// The ONNX Runtime shared library; resolved by `Settings::load` (see default.toml).
    pub ort_library: String,
    pub intra_threads: usize,
    pub deadline_ms: u64,
    pub candidates: usize,
    /// Of the candidates, this many at most from co-engagement (item-kNN); 0 turns the source
    /// off.
    pub co_engagement_candidates: usize,
    /// Serve the model even when its sealed evaluation does not beat the best baseline.
    pub serve_unproven: bool,
    pub history_limit: usize,
    /// Dismissed and contacted listings kept per user (never recommended again), newest
    /// first; older ones may come back.
    pub max_exclusions: usize,
    pub max_per_neighbourhood: usize,
    /// The listing index is reloaded whole this often (changes on the bus apply sooner).
    pub index_refresh_secs: u64,
    /// Interactions held in process over all users' recommendation state.
    pub user_state_capacity: u64,
    pub user_state_ttl_secs: u64,
    /// How long a user's recommendations are reused (0: never); their next interaction or
    /// preference change, or a listing change, drops them sooner.
    pub results_ttl_secs: u64,
    pub batcher: BatcherSettings,
}

impl MlSettings {
    /// The configured model's description and the files to load it from.
    pub fn model_files(
        &self,
    ) -> Result<
        (
            rentgraph_model::model::ModelInfo,
            rentgraph_model::model::ModelFiles,
        ),
        rentgraph_model::model::ModelError,
    > {
        rentgraph_model::model::ModelFiles::describe(
            &self.info_path,
            &self.model_path,
            &self.ort_library,
            self.intra_threads,
        )
    }

    /// How much of each user's state recommendations keep.
    pub fn state_limits(&self) -> crate::recommend::user_state::StateLimits {
        crate::recommend::user_state::StateLimits {
            history: self.history_limit,
            exclusions: self.max_exclusions,
        }
    }

    /// What retrieval is asked for: candidates in all, and at most how many of them from
    /// co-engagement.
    pub fn retrieval(&self) -> (usize, usize) {
        (self.candidates, self.co_engagement_candidates)
    }
}
