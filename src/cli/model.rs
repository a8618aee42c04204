//! `rentgraph model seal`: records the ONNX file's sha256 and golden scores in ml.info_path, so
//! the server can refuse a model file that is not the one trained (ml/train.sh runs it).
use anyhow::{Context, Result};
use rentgraph::config::Settings;
use rentgraph_model::model::{GoldenRow, OrtScorer, Scorer, file_sha256, golden_inputs};

pub(super) fn seal(settings: &Settings) -> Result<()> {
    let ml = &settings.ml;
    let text = std::fs::read_to_string(&ml.info_path)
        .with_context(|| format!("cannot read {}", ml.info_path.display()))?;
    let mut info: serde_json::Value = serde_json::from_str(&text)?;
    let (_, files) = ml.model_files()?;
    let mut scorer = OrtScorer::load(&files)?;
    let inputs = golden_inputs();
    let flat: Vec<f32> = inputs.iter().flatten().copied().collect();
    let scores = scorer.score(&flat, inputs.len())?;
    let golden: Vec<GoldenRow> = inputs
        .into_iter()
        .zip(scores)
        .map(|(features, score)| GoldenRow { features, score })
        .collect();
    info["sha256"] = serde_json::Value::String(file_sha256(&ml.model_path)?);
    info["golden"] = serde_json::to_value(golden)?;
    std::fs::write(&ml.info_path, serde_json::to_string_pretty(&info)? + "\n")
        .with_context(|| format!("cannot write {}", ml.info_path.display()))?;
    eprintln!(
        "sealed {} in {}",
        ml.model_path.display(),
        ml.info_path.display()
    );
    Ok(())
}
