//! The ONNX model behind the recommender. ONNX Runtime is loaded at run time from a shared
//! library (ort's `load-dynamic`), one `Environment` per process; each inference worker owns
//! its own `Session` because `Session::run` takes `&mut self`.
use super::features::{FEATURE_NAMES, N_FEATURES};
use ort::session::Session;
use ort::value::TensorRef;
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error(
        "cannot load the ONNX Runtime library at {path}: {reason}. Run scripts/fetch-ort (it puts \
         libonnxruntime.so.1.31.1 from the onnxruntime==1.31.1 wheel into .ort/), or point \
         ml.ort_library (RENTGRAPH__ML__ORT_LIBRARY) or ORT_DYLIB_PATH at that library"
    )]
    Runtime { path: String, reason: String },
    #[error("cannot load the model {path}: {reason}")]
    Load { path: String, reason: String },
    #[error(
        "the model {path} was trained on features {trained:?}, but this build computes {built:?}; \
         retrain with ml/train.sh"
    )]
    FeatureMismatch {
        path: String,
        trained: Vec<String>,
        built: Vec<String>,
    },
    #[error("inference failed: {0}")]
    Inference(String),
    #[error(
        "the model {path} is not the one models/recommender.json describes: {reason}. Ship the \
         two files together (ml/train.sh writes both; `rentgraph model seal` records a model's \
         hash and golden rows)"
    )]
    Integrity { path: String, reason: String },
}

/// A row of features and the score the model gave it when it was sealed: scored again at
/// start-up, it proves the file loaded is the model that was evaluated, on this ONNX Runtime.
#[derive(Debug, Clone, serde::Serialize, Deserialize)]
pub struct GoldenRow {
    pub features: Vec<f32>,
    pub score: f32,
}

/// Scores may differ this much between ONNX Runtime builds; a different model differs far more.
const GOLDEN_TOLERANCE: f32 = 1e-4;

/// models/recommender.json: what training recorded about the model.
#[derive(Debug, Clone, Deserialize)]
pub struct ModelInfo {
    pub version: String,
    pub features: Vec<String>,
    #[serde(default)]
    pub output: Option<String>,
    /// "sigmoid": the output is a ranking score, mapped to 0-1 by the logistic function so
    /// `score` and `matchScore` keep their range; absent: the output is already a probability.
    #[serde(default)]
    pub score_transform: Option<String>,
    #[serde(default)]
    pub metrics: serde_json::Value,
    /// The sealed replay evaluation's verdict against the best baseline (what the server's gate
    /// reads); absent in models sealed before it existed.
    #[serde(default)]
    pub gate: Option<SealedGate>,
    /// sha256 of the ONNX file (hex).
    #[serde(default)]
    pub sha256: Option<String>,
    #[serde(default)]
    pub golden: Vec<GoldenRow>,
}

/// The part of the sealed evaluation the server's gate reads (`evaluation::Gate` writes it).
#[derive(Debug, Clone, serde::Deserialize, serde::Serialize)]
pub struct SealedGate {
    pub passed: bool,
    pub model: f64,
    pub best_baseline: String,
    pub best_baseline_ndcg: f64,
    pub serve_baseline: String,
    pub vs_best_baseline: SealedRatio,
    #[serde(default)]
    pub users: usize,
}

#[derive(Debug, Clone, serde::Deserialize, serde::Serialize)]
pub struct SealedRatio {
    /// Null when the baseline scored nothing (JSON has no infinity).
    pub ratio: Option<f64>,
    pub ci95: [Option<f64>; 2],
}

pub fn file_sha256(path: &Path) -> Result<String, ModelError> {
    use sha2::{Digest, Sha256};
    let bytes = std::fs::read(path).map_err(|e| ModelError::Load {
        path: path.display().to_string(),
        reason: e.to_string(),
    })?;
    Ok(Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

/// Deterministic, varied rows for golden scores (within the features' usual ranges).
pub fn golden_inputs() -> Vec<Vec<f32>> {
    (0..8u32)
        .map(|r| {
            (0..N_FEATURES as u32)
                .map(|f| {
                    ((r * 37 + f * 11) % 23) as f32 / 23.0 * if f % 4 == 0 { 3.0 } else { 1.0 }
                })
                .collect()
        })
        .collect()
}

impl ModelInfo {
    /// The ONNX file must be the one this description was written for: its sha256 as recorded,
    /// and the version (`lgbm-<first 12 hex of the hash>`) naming the same bytes.
    pub fn verify_file(&self, model: &Path) -> Result<(), ModelError> {
        let fail = |reason: String| ModelError::Integrity {
            path: model.display().to_string(),
            reason,
        };
        let actual = file_sha256(model)?;
        match &self.sha256 {
            Some(expected) if *expected != actual => {
                return Err(fail(format!(
                    "its sha256 is {actual}, recommender.json records {expected}"
                )));
            }
            None => return Err(fail("recommender.json records no sha256".into())),
            _ => {}
        }
        if let Some(short) = self.version.strip_prefix("lgbm-")
            && !actual.starts_with(short)
        {
            return Err(fail(format!(
                "version {} does not name this file (sha256 {actual})",
                self.version
            )));
        }
        Ok(())
    }

    /// Scores the golden rows and compares them with the recorded scores.
    pub fn verify_golden(&self, model: &Path, scorer: &mut dyn Scorer) -> Result<(), ModelError> {
        let fail = |reason: String| ModelError::Integrity {
            path: model.display().to_string(),
            reason,
        };
        if self.golden.is_empty() {
            return Err(fail("recommender.json records no golden rows".into()));
        }
        let rows: Vec<f32> = self
            .golden
            .iter()
            .flat_map(|g| g.features.iter().copied())
            .collect();
        if rows.len() != self.golden.len() * N_FEATURES {
            return Err(fail(format!(
                "golden rows must have {N_FEATURES} features each"
            )));
        }
        let scores = scorer.score(&rows, self.golden.len())?;
        for (i, (got, g)) in scores.iter().zip(&self.golden).enumerate() {
            if (got - g.score).abs() > GOLDEN_TOLERANCE {
                return Err(fail(format!(
                    "golden row {i} scores {got}, recorded {}",
                    g.score
                )));
            }
        }
        Ok(())
    }

    pub fn load(path: &Path) -> Result<Self, ModelError> {
        let err = |reason: String| ModelError::Load {
            path: path.display().to_string(),
            reason,
        };
        let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
        let info: ModelInfo = serde_json::from_str(&text).map_err(|e| err(e.to_string()))?;
        let built: Vec<String> = FEATURE_NAMES.iter().map(|s| s.to_string()).collect();
        if info.features != built {
            return Err(ModelError::FeatureMismatch {
                path: path.display().to_string(),
                trained: info.features,
                built,
            });
        }
        Ok(info)
    }
}

static ENVIRONMENT: OnceLock<(PathBuf, ort::environment::Environment)> = OnceLock::new();
static INIT: Mutex<()> = Mutex::new(());

/// Loads the ONNX Runtime library once per process; a process cannot switch libraries later.
pub fn runtime(library: &Path) -> Result<&'static ort::environment::Environment, ModelError> {
    let fail = |reason: String| ModelError::Runtime {
        path: library.display().to_string(),
        reason,
    };
    let loaded = |(path, env): &'static (PathBuf, ort::environment::Environment)| {
        if path == library {
            Ok(env)
        } else {
            Err(fail(format!(
                "this process already loaded ONNX Runtime from {}",
                path.display()
            )))
        }
    };
    if let Some(entry) = ENVIRONMENT.get() {
        return loaded(entry);
    }
    let _guard = INIT
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(entry) = ENVIRONMENT.get() {
        return loaded(entry);
    }
    if !library.is_file() {
        return Err(fail("no such file".into()));
    }
    let env = ort::init_from(library)
        .map_err(|e| fail(e.to_string()))?
        .with_name("rentgraph")
        .build()
        .map_err(|e| fail(e.to_string()))?;
    loaded(ENVIRONMENT.get_or_init(|| (library.to_path_buf(), env)))
}

/// Something that scores rows of features; one per inference worker.
pub trait Scorer: Send {
    /// Scores `n` rows of `N_FEATURES` floats each (row-major); returns `n` scores.
    fn score(&mut self, rows: &[f32], n: usize) -> Result<Vec<f32>, ModelError>;
}

pub struct OrtScorer {
    session: Session,
    output: String,
    /// Classifiers export probabilities as [n, 2]; the score is column 1.
    columns: usize,
    sigmoid: bool,
}

#[derive(Debug, Clone)]
pub struct ModelFiles {
    pub library: PathBuf,
    pub model: PathBuf,
    pub intra_threads: usize,
    pub output: Option<String>,
    pub sigmoid: bool,
}

impl ModelFiles {
    /// The model described by `info_path` (checked against this build's features) and the
    /// files to load it from: the ONNX file and the ONNX Runtime library.
    pub fn describe(
        info_path: &Path,
        model: &Path,
        library: &str,
        intra_threads: usize,
    ) -> Result<(ModelInfo, Self), ModelError> {
        let info = ModelInfo::load(info_path)?;
        let files = Self {
            library: library.into(),
            model: model.to_path_buf(),
            intra_threads,
            output: info.output.clone(),
            sigmoid: info.score_transform.as_deref() == Some("sigmoid"),
        };
        Ok((info, files))
    }
}

impl OrtScorer {
    pub fn load(files: &ModelFiles) -> Result<Self, ModelError> {
        let env = runtime(&files.library)?;
        let err = |reason: String| ModelError::Load {
            path: files.model.display().to_string(),
            reason,
        };
        let session = Session::builder(env)
            .map_err(|e| err(e.to_string()))?
            .with_intra_threads(files.intra_threads.max(1))
            .map_err(|e| err(e.to_string()))?
            .with_inter_threads(1)
            .map_err(|e| err(e.to_string()))?
            .commit_from_file(&files.model)
            .map_err(|e| err(e.to_string()))?;
        let output = match &files.output {
            Some(name) => name.clone(),
            None => session
                .outputs()
                .iter()
                .map(|o| o.name().to_owned())
                .find(|n| n.contains("prob"))
                .or_else(|| session.outputs().last().map(|o| o.name().to_owned()))
                .ok_or_else(|| err("the model has no outputs".into()))?,
        };
        let mut scorer = Self {
            session,
            output,
            columns: 1,
            sigmoid: files.sigmoid,
        };
        // One probe run tells the output's layout and proves the model runs at all.
        let probe = vec![0.0f32; N_FEATURES * 2];
        let (width, _) = scorer.run(&probe, 2)?;
        scorer.columns = width;
        Ok(scorer)
    }

    fn run(&mut self, rows: &[f32], n: usize) -> Result<(usize, Vec<f32>), ModelError> {
        let fail = |e: ort::Error| ModelError::Inference(e.to_string());
        let input = TensorRef::from_array_view(([n, N_FEATURES], rows)).map_err(fail)?;
        let outputs = self.session.run(ort::inputs![input]).map_err(fail)?;
        let value = outputs
            .get(&self.output)
            .ok_or_else(|| ModelError::Inference(format!("no output named {}", self.output)))?;
        let (shape, data) = value.try_extract_tensor::<f32>().map_err(fail)?;
        let width = if shape.len() >= 2 {
            shape[1].max(1) as usize
        } else {
            1
        };
        if data.len() != n * width {
            return Err(ModelError::Inference(format!(
                "expected {n} rows of output, got shape {shape:?}"
            )));
        }
        Ok((width, data.to_vec()))
    }
}

impl Scorer for OrtScorer {
    fn score(&mut self, rows: &[f32], n: usize) -> Result<Vec<f32>, ModelError> {
        if rows.len() != n * N_FEATURES {
            return Err(ModelError::Inference(format!(
                "{} values do not make {n} rows of {N_FEATURES}",
                rows.len()
            )));
        }
        let (width, data) = self.run(rows, n)?;
        let scores: Vec<f32> = if width == self.columns && width > 1 {
            data.chunks(width).map(|r| r[width - 1]).collect()
        } else {
            data
        };
        if self.sigmoid {
            Ok(scores
                .into_iter()
                .map(|x| 1.0 / (1.0 + (-x).exp()))
                .collect())
        } else {
            Ok(scores)
        }
    }
}
