//! What both benchmarks share.
use rentgraph_model::model::ModelFiles;

/// The shipped model (`models/` at the workspace root) on the ONNX Runtime `scripts/fetch-ort`
/// installs, or the one `ORT_DYLIB_PATH` names; one intra-op thread, as config/default.toml.
pub(crate) fn files() -> ModelFiles {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
    let library = std::env::var("ORT_DYLIB_PATH")
        .unwrap_or_else(|_| format!("{root}/.ort/libonnxruntime.so.1.31.1"));
    let info = std::path::PathBuf::from(format!("{root}/models/recommender.json"));
    let model = std::path::PathBuf::from(format!("{root}/models/recommender.onnx"));
    ModelFiles::describe(&info, &model, &library, 1)
        .expect("the shipped model")
        .1
}
